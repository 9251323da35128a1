#!/usr/bin/env python3
# Diff two `dotnet-gcdump report` outputs by type: python3 gcdiff.py BEFORE.txt AFTER.txt [N]
import re, sys
def read(p):
    d = {}
    for line in open(p):
        m = re.match(r'\s*([\d,]+)\s+([\d,]+)\s+(.+?)\s*$', line)
        if not m: continue
        size, count, name = int(m[1].replace(',', '')), int(m[2].replace(',', '')), m[3]
        name = re.sub(r'\s*\(Bytes > .*\)$', '', name)
        s, c = d.get(name, (0, 0)); d[name] = (s + size, c + count)
    return d
a, b = read(sys.argv[1]), read(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
rows = [(b.get(k, (0, 0))[0] - a.get(k, (0, 0))[0], b.get(k, (0, 0))[1] - a.get(k, (0, 0))[1], k, a.get(k, (0, 0)), b.get(k, (0, 0))) for k in set(a) | set(b)]
rows.sort(key=lambda r: -abs(r[0]))
ta, tb = sum(v[0] for v in a.values()), sum(v[0] for v in b.values())
print(f"total {ta:,} -> {tb:,} B ({tb - ta:+,} B)")
print("| type | bytes before | bytes after | diff | count before | count after |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for d, c, k, x, y in rows[:n]:
    print(f"| `{k}` | {x[0]:,} | {y[0]:,} | {d:+,} | {x[1]:,} | {y[1]:,} |")
