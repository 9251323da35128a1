"""aiortc 1.4 as the offerer (ICE controlling) against our peer connection, on 127.0.0.1 only.

Prints its offer (one JSON line: {"sdp": ...}), reads our answer the same way from stdin, then prints
{"state": ...} lines as its connection state changes, and keeps running until it is killed (or 120 s pass).
With the argument "no-use-candidate" its checks carry no USE-CANDIDATE (aioice nominates aggressively otherwise, and
still considers its pair nominated): a controlling peer that never nominates, so our side never selects a pair and
data goes on the first valid pair (RFC 8445 section 12.1), as seen in the field (issue 14).
Only an audio transceiver (recvonly) is offered: aiortc 1.4 would offer the old "DTLS/SCTP 5000" data form.
"""
import asyncio
import json
import sys

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

# Gather on loopback only: the test may send nowhere else (shared/INTEROP.md).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

if "no-use-candidate" in sys.argv[1:]:
    _build_request = aioice.ice.Connection.build_request
    aioice.ice.Connection.build_request = lambda self, pair, nominate: _build_request(self, pair, nominate=False)


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))   # no STUN or TURN server: nothing leaves loopback

    @pc.on("connectionstatechange")
    async def on_state():
        say({"state": pc.connectionState})

    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    say({"sdp": pc.localDescription.sdp})
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=json.loads(line)["sdp"], type="answer"))
    # Bounded: the test kills the process long before this.
    await asyncio.sleep(120)
    await pc.close()


asyncio.run(main())
