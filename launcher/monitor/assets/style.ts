/** The monitor page's style sheet. */
export const STYLE_CSS = `
:root { --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #6b7280; --line: #e3e6eb;
  --starting: #9ca3af; --running: #16a34a; --blocked: #d97706; --done: #2563eb; --failed: #dc2626; --killed: #7c3aed; --lost: #111827; --idle: #60a5fa; --busy: #16a34a; }
* { box-sizing: border-box; }
body { margin: 0; padding: 12px 16px; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; margin-bottom: 8px; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 6px; }
h3 { font-size: 13px; margin: 6px 0 4px; }
.pill { padding: 2px 10px; border-radius: 999px; background: var(--starting); color: #fff; font-weight: 600; }
.pill.running { background: var(--running); } .pill.ok { background: var(--done); } .pill.failed { background: var(--failed); }
.conn, .muted { color: var(--muted); font-size: 12px; }
.mono, pre, code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin-bottom: 10px; }
.row { display: flex; gap: 10px; flex-wrap: wrap; } .row > .panel { min-width: 260px; } .grow { flex: 1; }
.end { border-color: var(--done); } .end.failed { border-color: var(--failed); background: #fff5f5; }
.bar { height: 14px; background: var(--line); border-radius: 7px; overflow: hidden; margin-bottom: 4px; }
#bar-fill { height: 100%; width: 0; background: var(--running); transition: width .2s; }
canvas { width: 560px; max-width: 100%; height: 120px; display: block; }
table { border-collapse: collapse; } td { padding: 1px 10px 1px 0; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
#tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 6px; }
.hostgroup { grid-column: 1 / -1; } .hostgroup .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 6px; }
.tile { border-radius: 6px; padding: 6px 8px; border-left: 6px solid var(--starting); background: #fafafa; font-size: 12px; overflow: hidden; }
.tile b { font-size: 13px; } .tile .sub { color: var(--muted); } .tile .st { font-weight: 600; margin: 2px 0; word-break: break-word; }
.tile.s-running, .tile.s-busy { border-left-color: var(--running); } .tile.s-blocked { border-left-color: var(--blocked); background: #fffbeb; }
.tile.s-done { border-left-color: var(--done); } .tile.s-failed { border-left-color: var(--failed); background: #fef2f2; }
.tile.s-killed { border-left-color: var(--killed); } .tile.s-idle { border-left-color: var(--idle); } .tile.s-lost { border-left-color: var(--lost); background: #f3f4f6; }
.legend { display: flex; gap: 10px; flex-wrap: wrap; margin-bottom: 6px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
#partials { margin: 0; padding-left: 22px; max-height: 220px; overflow: auto; } #partials li { word-break: break-all; }
.controls { display: flex; gap: 8px; align-items: center; margin-bottom: 6px; }
#output { max-height: 320px; overflow: auto; background: #0f172a; color: #e2e8f0; padding: 8px; border-radius: 6px; margin: 0; white-space: pre-wrap; word-break: break-all; }
pre#end-stack, .failure pre { background: #fff; border: 1px solid var(--line); padding: 8px; border-radius: 6px; overflow: auto; max-height: 260px; margin: 6px 0 0; white-space: pre-wrap; }
.failure { margin-bottom: 8px; } .failure summary { cursor: pointer; font-weight: 600; color: var(--failed); }
footer { margin-top: 8px; }
`;
