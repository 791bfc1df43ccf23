/** The monitor's page: one HTML document for jobs and pools (the script fills it in). */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>tsmpi monitor</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css?token=__TOKEN__">
<script src="/app.js?token=__TOKEN__" defer></script>
</head>
<body>
<header>
  <h1 id="title">tsmpi monitor</h1>
  <span id="status" class="pill">connecting…</span>
  <span id="conn" class="conn"></span>
  <span id="elapsed" class="conn"></span>
</header>
<section id="end" class="panel end" hidden>
  <h2>Ended</h2>
  <p id="end-message"></p>
  <pre id="end-stack" hidden></pre>
</section>
<section id="progress-box" class="panel" hidden>
  <h2>Progress</h2>
  <div class="bar"><div id="bar-fill"></div></div>
  <div id="progress-text" class="mono"></div>
</section>
<div class="row">
  <section class="panel grow">
    <h2><span id="chart-label">rate</span> <span id="chart-now" class="mono"></span></h2>
    <canvas id="chart" width="560" height="120"></canvas>
  </section>
  <section id="tasks-box" class="panel" hidden>
    <h2>Tasks</h2>
    <table id="tasks"><tbody></tbody></table>
  </section>
  <section id="totals-box" class="panel" hidden>
    <h2>Traffic</h2>
    <table id="totals"><tbody></tbody></table>
  </section>
</div>
<section class="panel">
  <h2 id="tiles-label">Ranks</h2>
  <div id="legend" class="legend"></div>
  <div id="tiles"></div>
</section>
<section id="failures-box" class="panel" hidden>
  <h2>Failures</h2>
  <div id="failures"></div>
</section>
<section class="panel">
  <h2>Last partial results</h2>
  <ol id="partials" class="mono"></ol>
  <p id="partials-none" class="muted">none yet</p>
</section>
<section id="output-box" class="panel">
  <h2>Output</h2>
  <div class="controls">
    <select id="out-rank"><option value="">every rank</option></select>
    <input id="out-filter" type="search" placeholder="filter lines" autocomplete="off">
    <span id="out-count" class="muted"></span>
  </div>
  <pre id="output"></pre>
</section>
<footer class="muted">tsmpi — read-only; updates pushed over one event stream</footer>
</body>
</html>
`;
