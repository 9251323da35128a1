using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Transport.Samples.EchoServer;

/// <summary>
/// The page at <c>/</c>: plain HTML and JavaScript (no build step). It sends the camera and microphone and shows
/// their echo, connects with WHIP (trickle ICE by PATCH),
/// sends a message every second and shows the echoes, answers the server's RTT pings on the control channel, draws
/// the session's live health (state, RTT, bitrate, consent age) from <c>GET</c> on its own WHIP resource on small canvases, closes
/// its connection on <c>pagehide</c> (DELETE with keepalive, then pc.close()), and reconnects with capped
/// exponential backoff with jitter when the connection fails or the server is full. When the server has a WHIP token
/// (<c>--whip-token</c>), open the page as <c>/#token=TOKEN</c>: the page sends it as <c>Authorization: Bearer</c> on
/// every WHIP request. The fragment never leaves the browser (no request line, no log, no Referer), and the page is
/// never served with the token in it; the page keeps it in sessionStorage and removes it from the address bar.
/// </summary>
public static class EchoPage
{
    public static IEndpointRouteBuilder MapEchoPage(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", () => Results.Text(Html, "text/html; charset=utf-8"));
        return app;
    }

    public const string Html = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Echo server</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; margin: 0 0 .5em; }
  #status { font-weight: bold; } .connected { color: #070; } .failed, .closed { color: #b00; }
  #health { font-weight: bold; } .healthy { color: #070; } .degraded { color: #b80; } .unhealthy { color: #d40; } .dead { color: #b00; }
  .charts { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
  .chart { border: 1px solid #ccc; padding: .4em; } .chart b { display: block; font-size: .9em; }
  canvas { display: block; background: #fafafa; }
  .videos { display: flex; gap: 1em; } .videos figure { margin: 0; } video { background: #000; }
  #echoes { font-family: monospace; max-height: 12em; overflow: auto; border: 1px solid #ddd; padding: .3em; margin: 0; list-style: none; }
</style>
</head>
<body>
<h1>Echo server: WebRTC echo of camera, microphone and data channel</h1>
<p>State: <span id="state">new</span> · session <code id="session">-</code> · attempt <span id="attempt">0</span> · <span id="note"></span></p>
<p>Health: <span id="health" class="healthy">-</span> <span id="health-reasons"></span> <span id="health-advice"></span></p>
<p><input id="text" placeholder="type a message" size="40"> <button id="send">Send</button> <button id="hangup">Hang up</button></p>
<div class="videos">
  <figure><video id="local" autoplay muted playsinline width="240" height="180"></video><figcaption>camera (sent)</figcaption></figure>
  <figure><video id="remote" autoplay playsinline
    width="240" height="180"></video><figcaption>echo (received) · <span id="decoded">0</span> frames decoded</figcaption></figure>
</div>
<div class="charts">
  <div class="chart"><b>RTT <span id="rtt">-</span> ms</b><canvas id="chart-rtt" width="220" height="70"></canvas></div>
  <div class="chart"><b>Bitrate in+out <span id="bitrate">-</span> kbit/s</b><canvas id="chart-bitrate" width="220" height="70"></canvas></div>
  <div class="chart"><b>Consent age <span id="consent">-</span> s</b><canvas id="chart-consent" width="220" height="70"></canvas></div>
</div>
<p>Echoed (<span id="count">0</span>):</p>
<ul id="echoes"></ul>
<script>
'use strict';
const app = window.app = {
  pc: null, resource: null, sessionId: null, echoes: [], health: [], attempt: 0, stopped: false, timers: [], media: undefined, framesDecoded: 0 };
const $ = id => document.getElementById(id);
const BACKOFF_BASE_MS = 500, BACKOFF_CAP_MS = 15000;
// The WHIP bearer token, from the fragment (#token=...) or from earlier in this tab; sent only to our own origin.
const TOKEN = (() => {
  const t = new URLSearchParams(location.hash.slice(1)).get('token');
  if (t) { sessionStorage.setItem('whipToken', t); history.replaceState(null, '', location.pathname + location.search); }
  return t || sessionStorage.getItem('whipToken') || '';
})();
const auth = (headers = {}) => TOKEN ? { ...headers, Authorization: 'Bearer ' + TOKEN } : headers;

function setState(s, note) {
  $('state').textContent = s; $('state').className = s;
  if (note !== undefined) $('note').textContent = note;
}

function backoffDelay(attempt) {
  // Capped exponential backoff with full jitter in [50 %, 100 %] of the step.
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(step * (0.5 + Math.random() / 2));
}

function scheduleReconnect(why) {
  if (app.stopped) return;
  teardown(false);
  const delay = backoffDelay(app.attempt++);
  $('attempt').textContent = app.attempt;
  setState('reconnecting', `${why}; retry in ${delay} ms`);
  app.timers.push(setTimeout(connect, delay));
}

function teardown(sendDelete) {
  app.timers.forEach(clearTimeout); app.timers = [];
  clearInterval(app.ticker); clearInterval(app.poller);
  if (sendDelete && app.resource) fetch(app.resource, { method: 'DELETE', keepalive: true, headers: auth() }).catch(() => {});
  if (app.pc) { app.pc.onconnectionstatechange = null; app.pc.close(); }
  app.pc = null; app.resource = null;
}

async function connect() {
  setState('connecting', '');
  if (app.media === undefined) {
    // Camera and microphone once per page; without them (no device, refused) the page still echoes data.
    try { app.media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } }); $('local').srcObject = app.media; }
    catch (err) { app.media = null; $('note').textContent = 'no camera/microphone: ' + err.message; }
  }
  const pc = app.pc = new RTCPeerConnection({ iceServers: [] });
  if (app.media) for (const track of app.media.getTracks()) pc.addTrack(track, app.media);
  const echoed = new MediaStream();
  pc.ontrack = e => { echoed.addTrack(e.track); $('remote').srcObject = echoed; };
  const control = pc.createDataChannel('control');
  const data = app.data = pc.createDataChannel('data');
  const pending = []; let resource = null;
  const patch = lines => fetch(resource, {
    method: 'PATCH', headers: auth({ 'Content-Type': 'application/trickle-ice-sdpfrag' }), body: lines.join('\r\n') + '\r\n' });
  pc.onicecandidate = e => {
    const line = e.candidate && e.candidate.candidate ? 'a=' + e.candidate.candidate : 'a=end-of-candidates';
    if (resource) patch([line]).catch(() => {}); else pending.push(line);
  };
  control.onmessage = e => {
    const m = JSON.parse(e.data);
    if (m.type === 'ping') control.send(JSON.stringify({ type: 'pong', id: m.id }));
    else if (m.type === 'end_stream') { setState('ended', 'end_stream: ' + m.reason); app.stopped = true; }
    else if (m.type === 'error') setState('failed', 'error: ' + m.message);
    // Graded health: the server tells us when our session changes level, and may ask us to send less or restart ICE.
    else if (m.type === 'health') showHealth(m.level, m.reasons);
    else if (m.type === 'lower_rate') $('health-advice').textContent = '(the server asks for a lower rate)';
    else if (m.type === 'restart_ice') $('health-advice').textContent = '(the server asks for an ICE restart)';
  };
  // The server closing its side (SCTP ABORT, close_notify) closes the channels before any connection state change.
  control.onclose = () => { if (app.pc === pc && !app.stopped) scheduleReconnect('the server closed the connection'); };
  data.onmessage = e => {
    const text = typeof e.data === 'string' ? e.data : `[${e.data.byteLength} bytes]`;
    app.echoes.push(text);
    const li = document.createElement('li'); li.textContent = text; $('echoes').prepend(li);
    $('count').textContent = app.echoes.length;
  };
  data.onopen = () => {
    let n = 0;
    app.ticker = setInterval(() => { if (data.readyState === 'open') data.send(`tick ${++n} at ${new Date().toISOString()}`); }, 1000);
    data.send('hello from the page');
  };
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState;
    if (s === 'connected') { app.attempt = 0; $('attempt').textContent = 0; setState('connected', ''); }
    else if (s === 'failed' || s === 'closed') { if (app.stopped) setState('closed'); else if (app.pc === pc) scheduleReconnect('connection ' + s); }
    else setState(s);
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    const r = await fetch('/whip', { method: 'POST', headers: auth({ 'Content-Type': 'application/sdp' }), body: pc.localDescription.sdp });
    if (r.status === 429) { const body = await r.json(); return scheduleReconnect(`server full (${body.meta.error}, limit ${body.meta.limit})`); }
    if (r.status === 401) { app.stopped = true; teardown(false);
      return setState('failed', TOKEN ? 'the token was refused' : 'this server needs a token: open the page as /#token=TOKEN'); }
    if (r.status !== 201) return scheduleReconnect('WHIP answered ' + r.status);
    resource = app.resource = new URL(r.headers.get('Location'), location.href).href;
    // The resource is /whip/{session}?secret=...: show the session, never the secret.
    app.sessionId = new URL(resource).pathname.split('/').pop(); $('session').textContent = app.sessionId;
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    if (pending.length) await patch(pending.splice(0));
    app.poller = setInterval(pollHealth, 1000);
  } catch (err) {
    scheduleReconnect('signaling failed: ' + err.message);
  }
}

function showHealth(level, reasons) {
  const el = $('health');
  el.textContent = level; el.className = level;
  $('health-reasons').textContent = (reasons || []).map(r => r.text).join('; ');
  if (level === 'healthy') $('health-advice').textContent = '';
}
async function pollHealth() {
  try {
    // Our own session's health, from our resource (GET /sessions needs the admin token).
    if (!app.resource) return;
    const r = await fetch(app.resource, { headers: auth() });
    if (!r.ok) return;
    const mine = await r.json();
    const c = mine.connection;
    if (app.pc) {
      const stats = await app.pc.getStats();
      stats.forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'video') { app.framesDecoded = s.framesDecoded || 0;
        $('decoded').textContent = app.framesDecoded; } });
    }
    if (mine.health) showHealth(mine.health.level, mine.health.reasons);
    const point = { rtt: c.rttMs ?? 0, bitrate: ((c.bitrateIn ?? 0) + (c.bitrateOut ?? 0)) / 1000, consent: c.consentAgeSeconds ?? 0, state: c.state };
    app.health.push(point); if (app.health.length > 60) app.health.shift();
    $('rtt').textContent = point.rtt.toFixed(2); $('bitrate').textContent = point.bitrate.toFixed(1); $('consent').textContent = point.consent.toFixed(1);
    draw('chart-rtt', app.health.map(p => p.rtt), '#06c');
    draw('chart-bitrate', app.health.map(p => p.bitrate), '#090');
    draw('chart-consent', app.health.map(p => p.consent), '#c60');
  } catch (err) { /* the next poll tries again */ }
}

function draw(id, values, color) {
  const canvas = $(id), g = canvas.getContext('2d'), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const max = Math.max(1e-9, ...values) * 1.2;
  g.strokeStyle = '#ddd'; g.beginPath(); g.moveTo(0, h - 0.5); g.lineTo(w, h - 0.5); g.stroke();
  g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
  values.forEach((v, i) => { const x = (i / 59) * (w - 2) + 1, y = h - 2 - (v / max) * (h - 6); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke();
  canvas.dataset.points = values.length;
}

$('send').onclick = () => { const t = $('text').value; if (t && app.data && app.data.readyState === 'open') app.data.send(t); $('text').value = ''; };
$('hangup').onclick = () => { app.stopped = true; teardown(true); setState('closed', 'hung up'); };
// Tell the server at once that the viewer left: DELETE (keepalive survives the unload), then close the connection.
addEventListener('pagehide', () => { app.stopped = true; teardown(true); });
connect();
</script>
</body>
</html>
""";
}
