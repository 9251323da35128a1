// The node-datachannel (libdatachannel) reference of `dotnet run -c Release --project bench -- setup-time`: one
// process per network namespace, signaling relayed by the bench through stdin/stdout (one JSON object a line).
// Usage: node dc-setup.mjs offer <bind-address> <runs>   (prints {kind:'result', ms:[...]} at the end)
//        node dc-setup.mjs answer <bind-address>         (echoes every message; runs until stdin closes)
// Measured by the offerer: data channel created (which makes libdatachannel create the offer) -> "ping" echoed.
import ndc from 'node-datachannel';
import readline from 'node:readline';

ndc.initLogger('Error', () => {});
const [role, bindAddress, runsText] = process.argv.slice(2);
const config = { iceServers: [], bindAddress, enableIceTcp: false };
const send = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let pc = null;
let described = false;
let pending = [];
let onRemote = null;

function fresh() {
  if (pc) pc.close();
  pc = new ndc.PeerConnection(role, config);
  described = false;
  pending = [];
  pc.onLocalDescription((sdp, type) => send({ kind: 'sdp', sdp, type }));
  pc.onLocalCandidate((candidate, mid) => send({ kind: 'candidate', candidate, mid }));
  return pc;
}

const keep = [];   // node-datachannel closes a channel whose object is garbage-collected
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.kind === 'sdp') {
    if (role === 'answer' && m.type === 'offer') {
      fresh().onDataChannel((dc) => { keep.push(dc); dc.onMessage((msg) => dc.sendMessage(String(msg))); });
    }
    pc.setRemoteDescription(m.sdp, m.type);
    described = true;
    for (const [c, mid] of pending.splice(0)) pc.addRemoteCandidate(c, mid);
  } else if (m.kind === 'candidate') {
    if (described) pc.addRemoteCandidate(m.candidate, m.mid); else pending.push([m.candidate, m.mid]);
  }
});
lines.on('close', () => process.exit(0));

if (role === 'offer') {
  const runs = Number(runsText ?? 10);
  const ms = [];
  for (let i = 0; i < runs + 1; i++) {   // the first is a warm-up, not counted
    const t = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), 15000);
      fresh();
      const start = process.hrtime.bigint();
      const dc = pc.createDataChannel('setup');
      dc.onOpen(() => dc.sendMessage('ping'));
      dc.onMessage(() => { clearTimeout(timer); resolve(Number(process.hrtime.bigint() - start) / 1e6); });
      keep.push(dc);
    });
    if (i > 0) ms.push(t);
    await new Promise((r) => setTimeout(r, 200));
  }
  send({ kind: 'result', ms });
  pc.close();
  process.exit(0);
}
