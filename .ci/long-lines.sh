#!/usr/bin/env bash
# Lists every tracked C# line longer than the .editorconfig's max_line_length (160 characters, counted as
# Unicode characters of the UTF-8 text, not bytes) as "path:line: N chars". Exits 1 when there is any, 0 otherwise.
# Usage: .ci/long-lines.sh [max]   (run from anywhere inside the repository)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
max="${1:-160}"
git ls-files -z '*.cs' | python3 -c '
import sys
limit = int(sys.argv[1])
found = 0
for path in sys.stdin.buffer.read().split(b"\0"):
    if not path:
        continue
    name = path.decode("utf-8", "surrogateescape")
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for number, line in enumerate(f.read().split("\n"), 1):
            n = len(line.rstrip("\r"))
            if n > limit:
                print(f"{name}:{number}: {n} chars")
                found += 1
if found:
    print(f"{found} line(s) over {limit} characters", file=sys.stderr)
sys.exit(1 if found else 0)
' "$max"
