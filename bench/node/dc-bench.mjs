// The reference side of `dotnet run -c Release --project bench -- peer-connection`: two node-datachannel
// (libdatachannel) peer connections in this process on 127.0.0.1, measured the way bench/PeerConnectionRun.cs
// measures ours. Usage: node dc-bench.mjs <setup-runs> <megabytes>. Prints one JSON line per figure.
import ndc from 'node-datachannel';

ndc.initLogger('Error', () => {});
const runs = Number(process.argv[2] ?? 200);
const megabytes = Number(process.argv[3] ?? 64);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const config = { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false };

// Offer created -> data channel open on the offerer's side, candidates exchanged as they come (trickle).
function connect(label, onRemoteChannel) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no open within 10 s')), 10000);
    const a = new ndc.PeerConnection('a', config);
    const b = new ndc.PeerConnection('b', config);
    // Callbacks may come in any order: a candidate waits until its peer has the description.
    const link = (from, to) => {
      let described = false;
      const pending = [];
      from.onLocalDescription((sdp, type) => {
        to.setRemoteDescription(sdp, type);
        described = true;
        for (const [c, mid] of pending.splice(0)) to.addRemoteCandidate(c, mid);
      });
      from.onLocalCandidate((c, mid) => { if (described) to.addRemoteCandidate(c, mid); else pending.push([c, mid]); });
    };
    link(a, b);
    link(b, a);
    if (onRemoteChannel) b.onDataChannel(onRemoteChannel);
    const start = process.hrtime.bigint();
    const dc = a.createDataChannel(label);
    dc.onOpen(() => {
      clearTimeout(timer);
      resolve({ a, b, dc, ms: Number(process.hrtime.bigint() - start) / 1e6 });
    });
  });
}

function percentile(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]; }

const times = [];
for (let i = 0; i < runs; i++) {
  const { a, b, dc, ms } = await connect('setup');
  times.push(ms);
  dc.close(); a.close(); b.close();
}
times.sort((x, y) => x - y);
out({ kind: 'setup', runs, medianMs: percentile(times, 0.5), p99Ms: percentile(times, 0.99) });

for (const size of [1024, 65536]) {
  const total = Math.floor(megabytes * 1024 * 1024 / size);
  let received = 0, bytes = 0, done;
  const finished = new Promise((r) => { done = r; });
  const keep = [];   // node-datachannel closes a channel whose object is garbage-collected
  const { a, b, dc } = await connect('bulk', (remote) => {
    keep.push(remote);
    remote.onMessage((m) => {
      received++; bytes += m.length;
      if (received === total) done();
    });
  });
  const payload = Buffer.alloc(size, 7);
  const start = process.hrtime.bigint();
  let sent = 0;
  // Keep at most 4 MiB buffered, like our side's window; poll the buffered amount between event-loop turns.
  const pump = () => {
    while (sent < total && dc.bufferedAmount() < (4 << 20)) { dc.sendMessageBinary(payload); sent++; }
    if (sent < total) setImmediate(pump);
  };
  pump();
  const guard = setTimeout(() => { out({ kind: 'throughput', size, error: `stalled at ${received}/${total}` }); process.exit(1); }, 120000);
  await finished;
  clearTimeout(guard);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  out({ kind: 'throughput', size, messages: total, seconds, megabytesPerSecond: bytes / seconds / 1e6 });
  keep.forEach((c) => c.close()); dc.close(); a.close(); b.close();
}

process.exit(0);
