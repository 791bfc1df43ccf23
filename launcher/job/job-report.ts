/**
 * What tsmpirun says about ranks: what each is blocked in (timeouts, SIGUSR1,
 * deadlocks) and the --report table.
 */
import type { BlockedOp, QueuedMessage, RankStats } from '../../runtime/wire/control.js';
import type { LineForwarder } from './output.js';
import type { RankHost } from '../hosts/rank-host.js';

/** What the launcher knows of one rank. */
export interface RankState {
  rank: number;
  host: string;
  where: RankHost | null;
  address: string | null;
  exited: boolean;
  closed: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** we sent it a signal during teardown */
  killed: boolean;
  stack: string | null;
  /** the TsmpiError code it failed with, if any (ERR_PEER_LOST: a consequence of another rank's end) */
  failCode?: string | null;
  blocked: { ops: BlockedOp[]; queued: QueuedMessage[] } | null;
  out: LineForwarder;
  err: LineForwarder;
  /** what the rank reported as it ended */
  stats: RankStats | null;
  /** message counters from its last dump reply */
  counters: { sent: number; received: number } | null;
  startedAt: number;
  endedAt: number;
  files: [number, number] | null;
}

/** --report: one line a rank. */
export function summaryTable(ranks: readonly RankState[]): string {
  const head = ['rank', 'host', 'wall s', 'cpu s', 'peak MiB', 'msgs sent', 'MiB sent', 'msgs recv', 'MiB recv', 'exit'];
  const rows = ranks.map((r) => {
    const s = r.stats;
    const wall = r.endedAt && r.startedAt ? ((r.endedAt - r.startedAt) / 1000).toFixed(2) : '?';
    const exit = r.signal ? r.signal : String(r.code ?? '?');
    return [
      String(r.rank),
      r.host,
      wall,
      s ? ((s.cpuUserMs + s.cpuSystemMs) / 1000).toFixed(2) : '?',
      s ? (s.maxRssKiB / 1024).toFixed(1) : '?',
      s ? String(s.messagesSent) : '?',
      s ? mib(s.bytesSent) : '?',
      s ? String(s.messagesReceived) : '?',
      s ? mib(s.bytesReceived) : '?',
      exit,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return ['tsmpirun: report', line(head), ...rows.map(line)].join('\n') + '\n';
}
function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

export function describeRank(r: RankState): string[] {
  if (r.exited) return [`  rank ${r.rank} (${r.host}): finished, ${r.signal ? `signal ${r.signal}` : `exit ${r.code}`}`];
  if (!r.blocked) return [`  rank ${r.rank} (${r.host}): running, did not answer (busy outside tsmpi?)`];
  const out: string[] = [];
  if (r.blocked.ops.length === 0) out.push(`  rank ${r.rank} (${r.host}): running, not blocked in tsmpi`);
  for (const op of r.blocked.ops) out.push(`  rank ${r.rank} (${r.host}): ${op.op} on comm ${op.comm} for ${op.seconds.toFixed(1)} s`);
  if (r.blocked.queued.length) {
    const q = r.blocked.queued
      .slice(0, 8)
      .map((m) => `${m.collective ? 'collective message #' + m.tag : 'tag ' + m.tag} from world rank ${m.source} (${m.bytes} B) on comm ${m.comm}`);
    out.push(`    unmatched in its queue: ${q.join('; ')}${r.blocked.queued.length > 8 ? `; and ${r.blocked.queued.length - 8} more` : ''}`);
  }
  return out;
}
