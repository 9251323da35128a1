// An independent ICE peer for IceAgentNodeDataChannelTests: node-datachannel (libdatachannel, whose ICE is
// libjuice) as the offerer, bound to 127.0.0.1. It prints JSON lines (description, candidate, ice, state) on
// stdout and reads JSON lines (answer, candidate) on stdin. It exits by itself after 60 s.
import nodeDataChannel from 'node-datachannel';
import readline from 'node:readline';

nodeDataChannel.initLogger('Warning', (level, message) => process.stderr.write(`${level} ${message}\n`));
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const pc = new nodeDataChannel.PeerConnection('offerer', { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false });
pc.onLocalDescription((sdp, type) => out({ kind: 'description', type, sdp }));
pc.onLocalCandidate((candidate, mid) => out({ kind: 'candidate', candidate, mid }));
pc.onStateChange((state) => out({ kind: 'state', state }));
pc.onIceStateChange((state) => out({ kind: 'ice', state }));
pc.onGatheringStateChange((state) => out({ kind: 'gathering', state }));
pc.createDataChannel('probe');

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const m = JSON.parse(line);
  if (m.kind === 'answer') pc.setRemoteDescription(m.sdp, 'answer');
  if (m.kind === 'candidate') pc.addRemoteCandidate(m.candidate, m.mid);
});
setTimeout(() => process.exit(2), 60000);
