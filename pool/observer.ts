/**
 * What a pool reports as it works, for a live view (the `monitor` option):
 * the pool half of the monitor's feed, structurally (launcher/monitor's
 * MonitorFeed has these methods). Every call only records state.
 */
export type WorkerPhase = 'starting' | 'idle' | 'busy' | 'lost';
export type TaskPhase = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface PoolObserver {
  worker(id: string, u: { host?: string; pid?: number; phase?: WorkerPhase; task?: number | null }): void;
  task(id: number, phase: TaskPhase): void;
  failure(f: { from: string; host?: string; name: string; message: string; stack: string }): void;
  progress(key: string, done: number, total: number): void;
  partial(from: string, value: unknown, time: number): void;
  end(e: { code: number; message: string }): void;
}
