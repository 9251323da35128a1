#!/usr/bin/env bash
# Kill -> session released, with every default of the echo server (issue 14 item 6): a client streams a message every
# 50 ms, is killed with SIGKILL after 4 s of streaming, and the script polls GET /sessions until the session is gone.
# Client: node-datachannel (libdatachannel, npm node-datachannel 0.33.4, installed by the ICE interop tests into
# /tmp/transport-ice-node-datachannel-0.33.4; run `dotnet test tests/Ice.Tests --filter IceAgentNodeDataChannelTests`
# once if it is missing). Loopback only. Usage: bench/liveness/measure-kill.sh [runs]   (after dotnet build Transport.sln -c Release)
set -uo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
http=18087; udp=48087
packages=/tmp/transport-ice-node-datachannel-0.33.4
[ -d "$packages/node_modules/node-datachannel" ] || { echo "node-datachannel is not installed in $packages"; exit 1; }
cp bench/liveness/whip-client.mjs "$packages/"   # ES modules resolve packages next to the script
dotnet samples/EchoServer/bin/Release/net10.0/EchoServer.dll --urls "http://127.0.0.1:$http" --udp-port $udp --admin-token measure-kill >/tmp/measure-kill-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf -H "Authorization: Bearer measure-kill" "http://127.0.0.1:$http/sessions" >/dev/null && break; sleep 0.1; done

sessions() { curl -sf -H "Authorization: Bearer measure-kill" "http://127.0.0.1:$http/sessions"; }   # /sessions needs the admin token

for run in $(seq "$runs"); do
  node "$packages/whip-client.mjs" "http://127.0.0.1:$http/whip" >/tmp/measure-kill-client.out 2>&1 &
  client=$!
  for _ in $(seq 200); do grep -q open /tmp/measure-kill-client.out && break; sleep 0.05; done
  sleep 4
  if [ "$(sessions)" = "[]" ]; then echo "run $run: the client did not connect: $(head -c 300 /tmp/measure-kill-client.out)"; kill -9 $client; wait $client 2>/dev/null; continue; fi
  kill -9 $client; wait $client 2>/dev/null
  start=$(date +%s.%N)
  for _ in $(seq 400); do [ "$(sessions)" = "[]" ] && break; sleep 0.05; done
  end=$(date +%s.%N)
  echo "node-datachannel run $run: kill -> session released $(echo "$end - $start" | bc) s"
done
