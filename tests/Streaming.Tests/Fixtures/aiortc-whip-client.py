"""A WHIP client made of aiortc 1.4 (Debian python3-aiortc), for AiortcInteropTests.

Usage: python3 aiortc-whip-client.py WHIP_URL MESSAGE
Offers one data channel ("data") in aiortc's own form (m=application PORT DTLS/SCTP 5000 with a=sctpmap), POSTs the
offer, applies the answer, waits for the channel to open, sends MESSAGE, waits for its echo, DELETEs the resource and
prints one JSON line with what it saw. Every wait is bounded. Run it inside a network namespace with only `lo`: aioice
is limited to 127.0.0.1 (it leaves loopback out on its own) and given no STUN server (aiortc's default is a public one).
"""
import asyncio
import json
import sys
import time
import urllib.request

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def http(method, url, body=None):
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/sdp"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


async def main(url, message):
    out = {}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("data")
    opened, echoed = asyncio.Event(), asyncio.get_running_loop().create_future()
    channel.on("open", opened.set)
    channel.on("message", lambda m: echoed.done() or echoed.set_result(m))
    try:
        started = time.monotonic()
        await pc.setLocalDescription(await pc.createOffer())
        out["offer_form"] = "sctpmap" if "a=sctpmap:" in pc.localDescription.sdp else "rfc8841"
        status, headers, answer = await asyncio.get_running_loop().run_in_executor(
            None, http, "POST", url, pc.localDescription.sdp.encode())
        out["post_status"] = status
        if status != 201:
            out["error"] = answer
            return out
        out["answer_m_line"] = next((l for l in answer.splitlines() if l.startswith("m=application")), None)
        out["answer_sctpmap"] = next((l for l in answer.splitlines() if l.startswith("a=sctpmap:")), None)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(opened.wait(), 20)
        out["open_ms"] = round((time.monotonic() - started) * 1000, 1)
        channel.send(message)
        out["echo"] = await asyncio.wait_for(echoed, 10)
        location = urllib.parse.urljoin(url, headers.get("Location", ""))
        out["delete_status"] = (await asyncio.get_running_loop().run_in_executor(None, http, "DELETE", location))[0]
    except Exception as e:  # reported to the test, which fails with it
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        out["ice_state"] = pc.iceConnectionState
        await asyncio.wait_for(pc.close(), 10)
    return out


if __name__ == "__main__":
    import urllib.parse
    result = asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 60))
    print(json.dumps(result), flush=True)
