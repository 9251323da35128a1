#!/usr/bin/env bash
# The project's one test command (README): installs what the tests need, builds the solution once,
# runs every test project, and prints the totals as its very last line: "N passed, N failed, N skipped".
# Exits non-zero on any failure, and also when no test ran.
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Debian packages used by the interop tests (real peers on loopback): installed only when missing.
need=()
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/bin/certutil ] || need+=(libnss3-tools)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
[ -x /usr/sbin/nft ] || need+=(nftables)
ldconfig -p 2>/dev/null | grep -q 'libsrtp2\.so\.1' || need+=(libsrtp2-1)
ldconfig -p 2>/dev/null | grep -q 'libvpx\.so\.7' || need+=(libvpx7)
[ -x /usr/lib/usrsctp/tsctp ] || need+=(libusrsctp-examples)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
/usr/bin/python3 -c 'import aiortc' >/dev/null 2>&1 || need+=(python3-aiortc)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "test.sh: apt-get install ${need[*]} failed"; echo "0 passed, 1 failed"; exit 1; }
fi

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

if ! dotnet build Transport.sln -c Release -nologo -v q -clp:ErrorsOnly; then
  echo "test.sh: build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

status=0
# The style (.editorconfig): whitespace as `dotnet format whitespace` writes it. Run it to fix what this reports.
echo "== format"
if ! dotnet format whitespace Transport.sln --verify-no-changes -v q; then
  echo "test.sh: formatting differs from .editorconfig (fix: dotnet format whitespace Transport.sln)"
  status=1
  failed_format=1
fi
# Lines at most 160 characters (.editorconfig max_line_length, which dotnet format does not enforce).
if ! bash .ci/long-lines.sh; then
  echo "test.sh: C# lines over 160 characters (listed above)"
  status=1
  failed_format=1
fi

for proj in tests/*.Tests/*.csproj; do
  name=$(basename "$proj" .csproj)
  echo "== $name"
  dotnet test "$proj" -c Release --no-build --nologo -v q \
    --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" --results-directory "$results" \
    --blame-hang-timeout 10m || status=1
done

# Totals across all projects, read from the TRX files' <Counters> elements.
passed=0; failed=0; skipped=0
attr() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$2"; }
while IFS= read -r counters; do
  for a in passed; do v=$(attr $a "$counters"); passed=$((passed + ${v:-0})); done
  for a in failed error timeout aborted; do v=$(attr $a "$counters"); failed=$((failed + ${v:-0})); done
  v=$(attr notExecuted "$counters"); skipped=$((skipped + ${v:-0}))
done < <(cat "$results"/*.trx 2>/dev/null | grep -o '<Counters [^>]*>')
# A project whose test host crashed writes no TRX: count it as a failure.
ntrx=$(ls "$results"/*.trx 2>/dev/null | wc -l); nproj=$(ls tests/*.Tests/*.csproj | wc -l)
[ "$ntrx" -lt "$nproj" ] && { echo "test.sh: $((nproj - ntrx)) test project(s) wrote no results"; failed=$((failed + nproj - ntrx)); }
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then status=1; failed=1; echo "test.sh: no test ran"; fi
[ -n "${failed_format:-}" ] && failed=$((failed + 1))
[ "$failed" -gt 0 ] && status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
