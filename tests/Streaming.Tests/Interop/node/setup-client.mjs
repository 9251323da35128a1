// The node-datachannel (libdatachannel) client of SetupTimeTests: <runs> set-ups against the WHIP-like answerer
// at <url> (tests/Streaming.Tests/Interop/SetupTimingServer.cs), each: offer with one data channel, candidates
// gathered, POST /whip, answer applied, time until the channel opens and until one message comes back echoed.
// Usage: node setup-client.mjs <url> <runs>. Prints one JSON line: { runs: [{ openMs, echoMs } | { error }] }.
import ndc from 'node-datachannel';

ndc.initLogger(process.env.NDC_LOG ?? 'Error', (level, message) => process.stderr.write(`${level} ${message}\n`));
const url = process.argv[2];
const runs = Number(process.argv[3] ?? 20);
const keep = [];   // node-datachannel closes a connection or channel whose object is garbage-collected
const config = { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false };

function once(url) {
  return new Promise((resolve) => {
    const pc = new ndc.PeerConnection('client', config);
    const timer = setTimeout(() => { pc.close(); resolve({ error: 'not open and echoed within 10 s: ' + pc.state() }); }, 10000);
    const start = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
    const result = {};
    pc.onGatheringStateChange(async (state) => {
      if (state !== 'complete') return;
      try {
        const offer = pc.localDescription();
        const r = await fetch(url + '/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer.sdp });
        const answer = await r.text();
        result.answerMs = ms();
        // Candidates inside the description sometimes reach libdatachannel before its ICE transport exists ("Got a
        // remote candidate without ICE transport"): apply the description without them, then add each.
        const lines = answer.split('\r\n');
        const mid = (lines.find((l) => l.startsWith('a=mid:')) ?? 'a=mid:0').substring(6);
        pc.setRemoteDescription(lines.filter((l) => !l.startsWith('a=candidate:')).join('\r\n'), 'answer');
        for (const l of lines.filter((x) => x.startsWith('a=candidate:'))) pc.addRemoteCandidate(l.substring(2), mid);
      } catch (e) {
        clearTimeout(timer);
        const states = `state ${pc.state()}, ice ${pc.iceState()}, gathering ${pc.gatheringState()}, signaling ${pc.signalingState()}`;
        pc.close();
        resolve({ error: `${e} (${states})` });
      }
    });
    const dc = pc.createDataChannel('echo');
    keep.push(pc, dc);
    dc.onOpen(() => { result.openMs = ms(); dc.sendMessage('ping'); });
    dc.onMessage(() => {
      result.echoMs = ms();
      clearTimeout(timer);
      setTimeout(() => { dc.close(); pc.close(); resolve(result); }, 0);
    });
  });
}

const out = { client: 'node-datachannel', runs: [] };
for (let i = 0; i < runs; i++) {
  out.runs.push(await once(url));
  await new Promise((ok) => setTimeout(ok, 50));
}
process.stdout.write(JSON.stringify(out) + '\n');
ndc.cleanup();
process.exit(0);
