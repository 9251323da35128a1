#!/usr/bin/env bash
# How the chromium-*.sdp fixtures were made: headless Chromium (Debian package `chromium`) in a network
# namespace that has only `lo` (../../../shared/INTEROP.md), running capture-chromium-sdp.html, which logs an
# offer (data channel + audio + video), a second peer's answer to it, and a data-channel-only offer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ns=rtc-cap-$$; profile=$(mktemp -d); log=$(mktemp)
trap 'kill $pid 2>/dev/null || true; ip netns del $ns 2>/dev/null || true; rm -rf "$profile" "$log"' EXIT
ip netns add $ns && ip -n $ns link set lo up
ip netns exec $ns chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
  --allow-loopback-in-peer-connection --use-fake-ui-for-media-stream \
  --disable-features=WebRtcHideLocalIpsWithMdns --enable-logging=stderr --v=0 \
  "file://$here/capture-chromium-sdp.html" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 25); do grep -q DONE "$log" && break; sleep 1; done
python3 - "$log" "$here" <<'PY'
import json, re, sys
log = open(sys.argv[1], encoding="utf-8", errors="replace").read()
for key, name in [("OFFER_JSON", "chromium-offer.sdp"), ("ANSWER_JSON", "chromium-answer.sdp"), ("DCOFFER_JSON", "chromium-datachannel-offer.sdp")]:
    m = re.search(key + r' (".*?[^\\]")', log)
    open(sys.argv[2] + "/" + name, "w", newline="").write(json.loads(m.group(1)))
PY
