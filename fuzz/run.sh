#!/usr/bin/env bash
# Coverage-guided fuzzing of one target with SharpFuzz and AFL++:
#   fuzz/run.sh TARGET [SECONDS | --inputs N]      (default 60 seconds)
#   fuzz/run.sh list
# Builds fuzz/Transport.Fuzz into fuzz/out/bin, instruments our assemblies there (sharpfuzz), runs afl-fuzz on the
# seed corpus fuzz/corpus/TARGET, prints inputs, inputs/s, paths, edges and crashes, and copies every crash and hang
# into fuzz/crashes/TARGET/ (replayed by tests/Fuzz.Tests from then on). Run one at a time: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PATH="$PATH:$HOME/.dotnet/tools"
out=fuzz/out
bin=$out/bin
target=${1:?usage: fuzz/run.sh TARGET [SECONDS | --inputs N] | list}

command -v afl-fuzz >/dev/null || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null; }
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0 >/dev/null

# Build once per source state (FUZZ_NO_BUILD=1 keeps the build there is, e.g. while sources change): the stamp is the newest source file under src/ and fuzz/ that the build uses.
stamp=$(find src fuzz/Transport.Fuzz fuzz/Transport.Fuzz.Targets tests/TestKit -name '*.cs' -o -name '*.csproj' | grep -v '/obj/\|/bin/' | xargs stat -c %Y | sort -n | tail -1)
if [ -z "${FUZZ_NO_BUILD:-}" ] && { [ ! -f "$bin/.stamp" ] || [ "$(cat "$bin/.stamp")" != "$stamp" ]; }; then
  rm -rf "$bin"
  dotnet build fuzz/Transport.Fuzz/Transport.Fuzz.csproj -c Release -o "$bin" -nologo -v q -clp:ErrorsOnly >/dev/null
  for a in Ice Dtls Sctp Rtp Streaming; do sharpfuzz "$bin/Transport.$a.dll" >/dev/null; done
  echo "$stamp" > "$bin/.stamp"
fi
if [ "$target" = list ]; then dotnet "$bin/Transport.Fuzz.dll" list; exit 0; fi
dotnet "$bin/Transport.Fuzz.dll" list | awk '{print $1}' | grep -qx "$target" || { echo "no target '$target' (fuzz/run.sh list)"; exit 2; }

limit=(-V "${2:-60}")
[ "${2:-}" = --inputs ] && limit=(-E "${3:?--inputs N}")
corpus=fuzz/corpus/$target
[ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ] || { mkdir -p "$out/seed-$target"; printf 'x' > "$out/seed-$target/x"; corpus=$out/seed-$target; }
findings=$out/findings-$target
rm -rf "$findings"
# Per-input timeout: 2 s (AFL's hang limit; the 100 ms bound is checked by the replay test), or FUZZ_TIMEOUT_MS: at
# nice 19 on a machine with a load of 60-80 the stateful targets' first inputs (JIT, the connected pair) take longer
# and AFL gives up in its dry run; no memory limit (the .NET runtime reserves address space).
AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
AFL_AUTORESUME=0 AFL_FAST_CAL=1 \
  afl-fuzz -i "$corpus" -o "$findings" -t "${FUZZ_TIMEOUT_MS:-2000}" -m none "${limit[@]}" -- dotnet "$bin/Transport.Fuzz.dll" afl "$target" \
  > "$out/afl-$target.log" 2>&1 || { echo "afl-fuzz failed, see $out/afl-$target.log"; tail -20 "$out/afl-$target.log"; exit 1; }

stats=$findings/default/fuzzer_stats
get() { sed -n "s/^$1 *: *//p" "$stats"; }
crashes=$(get saved_crashes); hangs=$(get saved_hangs)
mkdir -p "fuzz/crashes/$target"
for f in "$findings"/default/crashes/id:* "$findings"/default/hangs/id:*; do
  [ -f "$f" ] || continue
  kind=$(basename "$(dirname "$f")"); sum=$(sha1sum "$f" | cut -c1-12)
  case $kind in crashes) kind=crash;; hangs) kind=hang;; esac
  cp "$f" "fuzz/crashes/$target/$kind-$sum"
done
rmdir "fuzz/crashes/$target" 2>/dev/null || true
# Inputs that found new coverage join the seed corpus (up to 40 a run, none over 16 KiB; tests/Fuzz.Tests replays them).
n=0
for f in "$findings"/default/queue/id:*+cov*; do
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 16384 ] && [ $n -lt 40 ] || continue
  cp "$f" "fuzz/corpus/$target/afl-$(sha1sum "$f" | cut -c1-12)"; n=$((n + 1))
done
echo "$target: $(get execs_done) inputs in $(get run_time) s, $(get execs_per_sec) inputs/s, paths $(get corpus_count), edges $(get edges_found) (map coverage $(get bitmap_cvg)), crashes $crashes, hangs $hangs"
