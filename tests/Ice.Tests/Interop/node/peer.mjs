// An independent ICE peer for IceAgentNodeDataChannelTests: node-datachannel (libdatachannel, whose ICE is
// libjuice), bound to 127.0.0.1, as the offerer (argument "offerer", default) or the answerer ("answerer").
// It prints JSON lines (description, candidate, ice, state) on stdout and reads JSON lines (offer, answer,
// candidate) on stdin. It exits by itself after 60 s.
import nodeDataChannel from 'node-datachannel';
import readline from 'node:readline';

nodeDataChannel.initLogger('Warning', (level, message) => process.stderr.write(`${level} ${message}\n`));
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const role = process.argv[2] === 'answerer' ? 'answerer' : 'offerer';
const pc = new nodeDataChannel.PeerConnection(role, { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false });
pc.onLocalDescription((sdp, type) => out({ kind: 'description', type, sdp }));
pc.onLocalCandidate((candidate, mid) => out({ kind: 'candidate', candidate, mid }));
pc.onStateChange((state) => out({ kind: 'state', state }));
pc.onIceStateChange((state) => out({ kind: 'ice', state }));
pc.onGatheringStateChange((state) => out({ kind: 'gathering', state }));
if (role === 'offerer') pc.createDataChannel('probe');

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const m = JSON.parse(line);
  if (m.kind === 'answer') pc.setRemoteDescription(m.sdp, 'answer');
  if (m.kind === 'offer') pc.setRemoteDescription(m.sdp, 'offer');
  if (m.kind === 'candidate') pc.addRemoteCandidate(m.candidate, m.mid);
});
setTimeout(() => process.exit(2), 60000);
