/**
 * The monitor page's script (plain ES2020 for the browser, kept as a string so
 * tsc ships it inside dist). It opens one EventSource and applies each `view`
 * (only what changed) to the page; user data only ever goes in as textContent.
 */
export const CLIENT_JS = String.raw`(function () {
'use strict';
var token = new URLSearchParams(location.search).get('token') || '';
function $(id) { return document.getElementById(id); }
function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
var kind = null, ended = null, started = 0, skew = 0;
var ranks = {}, workers = {}, tiles = {}, hostGroups = {};
var lines = [], maxSeq = 0, linesDirty = false, chart = null;
var MAX_LINES = 5000;

function bytes(n) {
  if (n < 1024) return n + ' B';
  var u = ['KiB', 'MiB', 'GiB', 'TiB'], i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return n.toFixed(n < 10 ? 1 : 0) + ' ' + u[i];
}
function num(n) { return n >= 100 || n === Math.round(n) ? String(Math.round(n)) : n.toFixed(1); }
function dur(s) {
  if (s == null || !isFinite(s)) return '?';
  if (s < 60) return Math.round(s) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(Math.round(s % 60)).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
}

function rankState(t) {
  if (t.phase === 'exited') {
    if (t.killed) return { cls: 'killed', text: 'ended by tsmpirun' + (t.signal ? ' (' + t.signal + ')' : '') };
    if (t.signal) return { cls: 'failed', text: 'killed by signal ' + t.signal };
    if (t.code === 0) return { cls: 'done', text: 'exited with code 0' };
    return { cls: 'failed', text: 'exited with code ' + t.code };
  }
  if (t.phase === 'starting') return { cls: 'starting', text: 'starting' };
  if (t.blocked) return { cls: 'blocked', text: 'blocked in ' + t.blocked };
  return { cls: 'running', text: 'running' };
}

function drawRank(t) {
  var e = tiles['r' + t.rank];
  if (!e) {
    e = el('div', 'tile');
    e.dataset.rank = String(t.rank);
    e.appendChild(el('b', null, 'rank ' + t.rank));
    e.appendChild(el('div', 'sub'));
    e.appendChild(el('div', 'st'));
    e.appendChild(el('div', 'sub tr'));
    tiles['r' + t.rank] = e;
    var box = $('tiles'), after = null;
    for (var i = 0; i < box.children.length; i++) if (Number(box.children[i].dataset.rank) > t.rank) { after = box.children[i]; break; }
    box.insertBefore(e, after);
    var opt = el('option', null, 'rank ' + t.rank); opt.value = String(t.rank);
    $('out-rank').appendChild(opt);
  }
  var s = rankState(t);
  e.className = 'tile s-' + s.cls;
  e.dataset.state = s.cls;
  e.children[1].textContent = (t.host || '?') + (t.pid ? ' · pid ' + t.pid : '');
  e.children[2].textContent = s.text;
  var tr = t.traffic;
  e.children[3].textContent = tr ? 'sent ' + tr.messagesSent + ' msgs / ' + bytes(tr.bytesSent) + ' · recv ' + tr.messagesReceived + ' msgs / ' + bytes(tr.bytesReceived) : 'traffic: not sampled yet';
}

function drawWorker(w) {
  var g = hostGroups[w.host || '?'];
  if (!g) {
    g = el('div', 'hostgroup');
    g.dataset.host = w.host || '?';
    g.appendChild(el('h3', null, w.host || '?'));
    g.appendChild(el('div', 'grid'));
    hostGroups[w.host || '?'] = g;
    $('tiles').appendChild(g);
  }
  var e = tiles['w' + w.id];
  if (!e) {
    e = el('div', 'tile');
    e.dataset.worker = w.id;
    e.appendChild(el('b', null, 'worker ' + w.id));
    e.appendChild(el('div', 'sub'));
    e.appendChild(el('div', 'st'));
    tiles['w' + w.id] = e;
    g.children[1].appendChild(e);
  }
  e.className = 'tile s-' + w.phase;
  e.dataset.state = w.phase;
  e.children[1].textContent = w.pid ? 'pid ' + w.pid : '';
  e.children[2].textContent = w.phase === 'busy' && w.task != null ? 'busy: task ' + w.task : w.phase;
  var counts = {};
  for (var id in workers) { var p = workers[id].phase; counts[p] = (counts[p] || 0) + 1; }
  $('tiles-label').textContent = 'Workers by host — ' + Object.keys(counts).map(function (k) { return counts[k] + ' ' + k; }).join(', ');
}

function legend(items) {
  var box = $('legend'); box.textContent = '';
  items.forEach(function (it) { var s = el('span'); var i = el('i'); i.style.background = 'var(--' + it + ')'; s.appendChild(i); s.appendChild(document.createTextNode(it)); box.appendChild(s); });
}

function drawTotals() {
  var sent = 0, sentB = 0, recv = 0, recvB = 0, n = 0;
  for (var r in ranks) { var tr = ranks[r].traffic; if (tr) { sent += tr.messagesSent; sentB += tr.bytesSent; recv += tr.messagesReceived; recvB += tr.bytesReceived; } n++; }
  var body = $('totals').tBodies[0]; body.textContent = '';
  [['ranks', String(n)], ['messages sent', String(sent)], ['bytes sent', bytes(sentB)], ['messages received', String(recv)], ['bytes received', bytes(recvB)]].forEach(function (row) {
    var tr = el('tr'); tr.appendChild(el('td', null, row[0])); tr.appendChild(el('td', 'n', row[1])); body.appendChild(tr);
  });
}

function drawTasks(t) {
  $('tasks-box').hidden = false;
  var body = $('tasks').tBodies[0]; body.textContent = '';
  ['queued', 'running', 'done', 'failed', 'cancelled'].forEach(function (k) {
    var tr = el('tr'); tr.dataset.phase = k;
    tr.appendChild(el('td', null, k));
    tr.appendChild(el('td', 'n', String(t.counts[k])));
    tr.appendChild(el('td', 'n muted', k === 'done' ? num(t.rates.done) + '/s' : k === 'failed' ? num(t.rates.failed) + '/s' : ''));
    body.appendChild(tr);
  });
}

function drawProgress(p) {
  $('progress-box').hidden = !p;
  if (!p) return;
  var frac = p.total > 0 ? p.done / p.total : 0;
  $('bar-fill').style.width = (frac * 100).toFixed(1) + '%';
  $('progress-text').textContent = (frac * 100).toFixed(0) + '% — ' + p.done + ' / ' + p.total + ' — ' + num(p.rate) + '/s — ETA ' + (p.done >= p.total ? '0s' : dur(p.eta));
}

function drawPartials(list) {
  var ol = $('partials'); ol.textContent = '';
  $('partials-none').hidden = list.length > 0;
  for (var i = list.length - 1; i >= 0; i--) {
    var p = list[i];
    var li = el('li', null, p.from + ' @ ' + new Date(p.time * 1000).toLocaleTimeString() + ': ' + p.json);
    ol.appendChild(li);
  }
}

function drawFailures(list) {
  $('failures-box').hidden = list.length === 0;
  var box = $('failures'); box.textContent = '';
  for (var i = list.length - 1; i >= 0; i--) {
    var f = list[i];
    var d = el('details', 'failure'); d.open = i === list.length - 1;
    d.appendChild(el('summary', null, f.from + (f.host ? ' on ' + f.host : '') + ': ' + f.name + ': ' + f.message));
    d.appendChild(el('pre', null, f.stack));
    box.appendChild(d);
  }
}

function drawChart() {
  if (!chart) return;
  var c = $('chart'), ctx = c.getContext('2d');
  var w = c.width, h = c.height, pts = chart.points;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#e3e6eb'; ctx.lineWidth = 1;
  for (var g = 1; g < 4; g++) { ctx.beginPath(); ctx.moveTo(0, (h * g) / 4); ctx.lineTo(w, (h * g) / 4); ctx.stroke(); }
  var max = 1; for (var i = 0; i < pts.length; i++) if (pts[i] > max) max = pts[i];
  var step = w / 119;
  ctx.fillStyle = 'rgba(37,99,235,0.12)'; ctx.strokeStyle = '#2563eb'; ctx.lineWidth = 2;
  ctx.beginPath();
  var x0 = w - (pts.length - 1) * step;
  for (var j = 0; j < pts.length; j++) { var x = x0 + j * step, y = h - 4 - (pts[j] / max) * (h - 16); if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y); }
  ctx.stroke();
  if (pts.length) { ctx.lineTo(w, h); ctx.lineTo(x0, h); ctx.closePath(); ctx.fill(); }
  ctx.fillStyle = '#6b7280'; ctx.font = '11px sans-serif'; ctx.fillText('max ' + num(max) + ' ' + chart.label, 4, 12);
  ctx.fillText('last ' + Math.round((120 * chart.everyMs) / 1000) + ' s', w - 60, 12);
  c.dataset.points = String(pts.length);
  $('chart-label').textContent = chart.label;
  $('chart-now').textContent = pts.length ? num(pts[pts.length - 1]) + ' now' : '';
}

function drawOutput() {
  linesDirty = false;
  var rank = $('out-rank').value, filter = $('out-filter').value.toLowerCase();
  var shown = [];
  for (var i = lines.length - 1; i >= 0 && shown.length < 500; i--) {
    var l = lines[i];
    if (rank !== '' && String(l.rank) !== rank) continue;
    if (filter && l.text.toLowerCase().indexOf(filter) < 0) continue;
    shown.push((kind === 'job' ? '[' + l.rank + (l.stream === 2 ? ' err' : '') + '] ' : '') + l.text);
  }
  shown.reverse();
  var pre = $('output'), atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = shown.join('\n');
  if (atEnd) pre.scrollTop = pre.scrollHeight;
  $('out-count').textContent = shown.length + ' line' + (shown.length === 1 ? '' : 's') + ' shown';
}

function drawEnd(e) {
  ended = e;
  var box = $('end'); box.hidden = false;
  var failed = e.code !== 0;
  box.className = 'panel end' + (failed ? ' failed' : '');
  $('end-message').textContent = e.message;
  var st = $('end-stack');
  st.hidden = !e.stack; st.textContent = e.stack || '';
  var pill = $('status'); pill.className = 'pill ' + (failed ? 'failed' : 'ok');
  pill.textContent = (failed ? 'failed, exit ' : 'finished, exit ') + e.code;
}

function apply(v) {
  if (kind === null) {
    kind = v.kind; started = v.started;
    document.title = v.title + ' — tsmpi monitor';
    $('title').textContent = v.title;
    $('status').textContent = 'running'; $('status').className = 'pill running';
    if (kind === 'pool') { $('tiles-label').textContent = 'Workers by host'; legend(['starting', 'idle', 'busy', 'lost']); $('output-box').hidden = true; }
    else { legend(['starting', 'running', 'blocked', 'done', 'failed', 'killed']); $('totals-box').hidden = false; }
  }
  skew = Date.now() - v.now;
  var i;
  if (v.ranks) { for (i = 0; i < v.ranks.length; i++) { ranks[v.ranks[i].rank] = v.ranks[i]; drawRank(v.ranks[i]); } drawTotals(); }
  if (v.workers) for (i = 0; i < v.workers.length; i++) { workers[v.workers[i].id] = v.workers[i]; drawWorker(v.workers[i]); }
  if (v.progress !== undefined) drawProgress(v.progress);
  if (v.partials) drawPartials(v.partials);
  if (v.tasks) drawTasks(v.tasks);
  if (v.failures) drawFailures(v.failures);
  if (v.chart) { chart = v.chart; drawChart(); }
  if (v.lines) {
    for (i = 0; i < v.lines.length; i++) if (v.lines[i].seq > maxSeq) { lines.push(v.lines[i]); maxSeq = v.lines[i].seq; }
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    linesDirty = true;
  }
  if (linesDirty) drawOutput();
  if (v.end) drawEnd(v.end);
  $('elapsed').textContent = 'up ' + dur((v.now - started) / 1000);
}

$('out-rank').addEventListener('change', drawOutput);
$('out-filter').addEventListener('input', drawOutput);
var es = new EventSource('/events?token=' + encodeURIComponent(token));
es.addEventListener('view', function (e) { apply(JSON.parse(e.data)); $('conn').textContent = 'live'; });
es.onerror = function () {
  if (ended) { es.close(); $('conn').textContent = 'the launcher has exited; this is its last state'; }
  else $('conn').textContent = 'reconnecting…';
};
})();
`;
