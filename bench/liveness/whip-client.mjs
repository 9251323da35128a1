// A WHIP client for measure-kill.sh: node-datachannel (libdatachannel) bound to 127.0.0.1 posts its offer to the
// echo server, opens a "data" channel and sends a message every 50 ms until it is killed (or 60 s pass).
// Prints "open" once the channel is open.
import nodeDataChannel from 'node-datachannel';

const endpoint = process.argv[2];
const pc = new nodeDataChannel.PeerConnection('client', { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false });
let posted = false;
async function post() {
  if (posted) return;
  posted = true;
  const response = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription().sdp });
  if (response.status !== 201) { process.stderr.write(`WHIP POST: ${response.status}\n`); process.exit(1); }
  pc.setRemoteDescription(await response.text(), 'answer');
}
// Registered before the channel starts gathering, and checked once more after: the event may come early.
pc.onGatheringStateChange((state) => { if (state === 'complete') post(); });
const dc = pc.createDataChannel('data');
let sent = 0;
dc.onOpen(() => {
  process.stdout.write('open\n');
  setInterval(() => { if (dc.isOpen()) dc.sendMessage(`m${sent++}`); }, 50);
});
setTimeout(() => { if (pc.gatheringState() === 'complete') post(); }, 500);
setTimeout(() => process.exit(2), 60000);
