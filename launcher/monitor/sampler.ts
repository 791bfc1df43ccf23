/**
 * Run `poll` every `everyMs` while a page watches the feed, and never
 * otherwise: a job with --monitor and no browser sends its ranks nothing.
 */
import type { MonitorFeed } from './feed.js';

export const SAMPLE_EVERY_MS = 250;

export function sampleWhileWatched(feed: MonitorFeed, poll: () => void, everyMs = SAMPLE_EVERY_MS): () => void {
  let timer: NodeJS.Timeout | null = null;
  const set = (on: boolean) => {
    if (on && !timer) {
      poll();
      timer = setInterval(poll, everyMs);
      timer.unref();
    } else if (!on && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
  const off = feed.onWatch(set);
  set(feed.watched);
  return () => {
    off();
    set(false);
  };
}
