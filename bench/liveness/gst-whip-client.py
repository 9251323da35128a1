#!/usr/bin/python3
"""A WHIP client for measure-kill-gstreamer.sh: GStreamer's webrtcbin (libnice ICE) posts its offer to the echo server,
opens a "data" channel and sends a message every 50 ms until it is killed (or 60 s pass). Prints "open" once the
channel is open. Usage: gst-whip-client.py URL

The script runs inside a network namespace that has only loopback (measure-kill-gstreamer.sh makes it), and it also
restricts libnice to 127.0.0.1 where webrtcbin allows it, so no candidate names any other address.
"""
import os
import sys
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

endpoint = sys.argv[1]
Gst.init(None)
loop = GLib.MainLoop()

pipeline = Gst.Pipeline.new("client")
webrtc = Gst.ElementFactory.make("webrtcbin", "w")
webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
pipeline.add(webrtc)


def fail(message, code=1):
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(code)  # from a GLib callback too, where SystemExit would only be printed


# Loopback only: with local addresses given, libnice gathers host candidates on those and nothing else (the
# namespace is the guarantee; this keeps the candidates to 127.0.0.1 even if the script were run outside it).
ice = webrtc.get_property("ice-agent")
try:
    ice.emit("add-local-ip-address", "127.0.0.1")
except TypeError:
    pass  # no such signal in this GStreamer: the namespace alone restricts ICE to loopback

state = {"attempts": 0, "posted": False, "sent": 0, "channel": None}


def post_offer():
    if state["posted"]:
        return
    state["posted"] = True
    offer = webrtc.get_property("local-description").sdp.as_text()
    request = urllib.request.Request(endpoint, data=offer.encode(), method="POST",
                                     headers={"Content-Type": "application/sdp"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer = response.status, response.read().decode()
    except Exception as e:  # an HTTP error or a refused connection ends the client: the script reports it
        fail(f"WHIP POST: {e}")
    if status != 201:
        fail(f"WHIP POST: {status}")
    _, sdp = GstSdp.SDPMessage.new_from_text(answer)
    description = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
    webrtc.emit("set-remote-description", description, Gst.Promise.new_with_change_func(on_remote_set, webrtc, None))


def on_gathering_state(element, _spec):
    # No trickle over this WHIP endpoint: the offer goes out once gathering is complete, with every candidate in it.
    if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
        GLib.idle_add(lambda: post_offer() and False)


def make_offer():
    webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer_created, webrtc, None))
    return False


def on_offer_created(promise, _element, _data):
    promise.wait()
    reply = promise.get_reply()
    offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
    if offer is None:
        fail(f"create-offer failed: {reply.to_string() if reply is not None else 'no reply'}")
    # webrtcbin adds the channel from a task of its own: an offer made before it is in has no m-line for it (seen: an
    # empty offer, nothing gathered). Such an offer is dropped and made again.
    if "m=application" not in offer.sdp.as_text():
        state["attempts"] += 1
        if state["attempts"] > 50:
            fail("no complete offer after 50 attempts")
        GLib.timeout_add(100, make_offer)
        return
    webrtc.emit("set-local-description", offer, Gst.Promise.new())


def on_remote_set(promise, _element, _data):
    promise.wait()
    reply = promise.get_reply()
    if reply is not None and reply.has_field("error"):
        fail(f"set-remote-description failed: {reply.to_string()}")


def send_message():
    channel = state["channel"]
    if channel.get_property("ready-state") == GstWebRTC.WebRTCDataChannelState.OPEN:
        channel.emit("send-string", f"m{state['sent']}")
        state["sent"] += 1
    return True


def on_open(_channel):
    print("open", flush=True)
    GLib.timeout_add(50, send_message)


def on_bus_message(_bus, message):
    if message.type == Gst.MessageType.ERROR:
        error, debug = message.parse_error()
        fail(f"pipeline error: {error.message} ({debug})")
    return True


webrtc.connect("notify::ice-gathering-state", on_gathering_state)
bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect("message", on_bus_message)
# The offer is made here, once the channel exists, and not on on-negotiation-needed: that fires from webrtcbin's
# own task as the pipeline starts too, and an offer made then can miss the channel.
pipeline.set_state(Gst.State.READY)
channel = webrtc.emit("create-data-channel", "data", None)
if channel is None:
    fail("create-data-channel returned nothing")
state["channel"] = channel
channel.connect("on-open", on_open)
channel.connect("on-error", lambda _c, e: fail(f"data channel error: {e}"))
pipeline.set_state(Gst.State.PLAYING)
GLib.idle_add(make_offer)
GLib.timeout_add(60000, lambda: fail("60 s passed", 2))
loop.run()
