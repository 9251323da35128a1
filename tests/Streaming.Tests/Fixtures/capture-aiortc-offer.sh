#!/usr/bin/env bash
# How aiortc-1.4-datachannel-offer.sdp was made: aiortc 1.4 (Debian python3-aiortc) offers one data channel in the
# form before RFC 8841 (m=application PORT DTLS/SCTP 5000 with a=sctpmap). Run in a network namespace that has only
# `lo`, with aioice's host addresses limited to 127.0.0.1 and no STUN server (../../../shared/INTEROP.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ns=rtc-aiortc-cap-$$
trap 'ip netns del $ns 2>/dev/null || true' EXIT
ip netns add $ns && ip -n $ns link set lo up
ip netns exec $ns timeout 30 /usr/bin/python3 - >"$here/aiortc-1.4-datachannel-offer.sdp" <<'PY'
import asyncio, sys
import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
async def main():
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("chat")
    await pc.setLocalDescription(await pc.createOffer())
    sys.stdout.write(pc.localDescription.sdp)
    await pc.close()
asyncio.run(main())
PY
