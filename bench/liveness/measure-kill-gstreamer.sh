#!/usr/bin/env bash
# Kill -> session released, with every default of the echo server (issue 14 item 6), GStreamer's webrtcbin as the
# client: like measure-kill.sh, the client streams a message every 50 ms, is killed with SIGKILL after 4 s of
# streaming, and the script polls GET /sessions until the session is gone.
# Client: bench/liveness/gst-whip-client.py (GStreamer 1.22 webrtcbin through python3 gi, a data channel only). libnice gathers on every interface, so the echo server, the client and
# curl all run inside a network namespace this script makes with only loopback up, and deletes on exit.
# Needs root (ip netns); installs its Debian packages if missing. Not part of the test suite (a measured run).
# Usage: bench/liveness/measure-kill-gstreamer.sh [runs]   (after dotnet build samples/EchoServer -c Release)
set -uo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
http=18088; udp=48088
server_dll=samples/EchoServer/bin/Release/net10.0/EchoServer.dll
[ -f "$server_dll" ] || { echo "build the echo server first: dotnet build samples/EchoServer -c Release"; exit 1; }

packages=(gstreamer1.0-plugins-bad gstreamer1.0-nice gstreamer1.0-plugins-base gstreamer1.0-plugins-good python3-gi
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 iproute2 curl bc)
need=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "apt-get install ${need[*]} failed"; exit 1; }
fi

ns="transport-gstkill-$$"
server=""; client=""
cleanup() {
  [ -n "$client" ] && kill -9 "$client" 2>/dev/null && wait "$client" 2>/dev/null
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  ip netns pids "$ns" 2>/dev/null | while read -r p; do kill -9 "$p" 2>/dev/null; done   # only what we started in it
  ip netns delete "$ns" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$ns" || { echo "ip netns add failed (needs root)"; exit 1; }
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

ip netns exec "$ns" dotnet "$server_dll" --urls "http://127.0.0.1:$http" --udp-port $udp --admin-token measure-kill >/tmp/measure-kill-gst-server.log 2>&1 &
server=$!
for _ in $(seq 100); do in_ns curl -sf -H "Authorization: Bearer measure-kill" "http://127.0.0.1:$http/sessions" >/dev/null && break; sleep 0.1; done

sessions() { in_ns curl -sf -H "Authorization: Bearer measure-kill" "http://127.0.0.1:$http/sessions"; }   # /sessions needs the admin token

for run in $(seq "$runs"); do
  # Not through in_ns: a backgrounded function runs in a subshell and $! would be that subshell; ip netns exec execs
  # the command, so $! is the python process itself and SIGKILL hits the client.
  ip netns exec "$ns" /usr/bin/python3 bench/liveness/gst-whip-client.py "http://127.0.0.1:$http/whip" >/tmp/measure-kill-gst-client.out 2>&1 &
  client=$!
  for _ in $(seq 200); do grep -q open /tmp/measure-kill-gst-client.out && break; sleep 0.05; done
  sleep 4
  if ! grep -q open /tmp/measure-kill-gst-client.out || [ "$(sessions)" = "[]" ]; then
    echo "run $run: the client did not connect: $(head -c 300 /tmp/measure-kill-gst-client.out)"
    kill -9 $client 2>/dev/null; wait $client 2>/dev/null; client=""
    for _ in $(seq 400); do [ "$(sessions)" = "[]" ] && break; sleep 0.05; done; continue   # the next run starts clean
  fi
  if ! kill -0 $client 2>/dev/null; then   # it ended by itself (an error): there is nothing to kill and time
    echo "run $run: the client exited before the kill: $(head -c 300 /tmp/measure-kill-gst-client.out)"; wait $client 2>/dev/null; client=""
    for _ in $(seq 400); do [ "$(sessions)" = "[]" ] && break; sleep 0.05; done; continue
  fi
  kill -9 $client; wait $client 2>/dev/null; client=""
  start=$(date +%s.%N)
  [ "$(ip netns pids "$ns" | grep -vcx "$server")" -eq 0 ] || echo "run $run: a process besides the server is left in the namespace"
  for _ in $(seq 400); do [ "$(sessions)" = "[]" ] && break; sleep 0.05; done
  end=$(date +%s.%N)
  echo "gstreamer run $run: kill -> session released $(echo "$end - $start" | bc) s"
done
