/** Glue between a link and the pure frame decoder: bytes in, and the link ends at the first protocol error. */
import type { FrameDecoder } from '../wire/frame.js';
import type { Link } from './transport.js';

export function feedFrames(link: Link, decoder: FrameDecoder, onError: (err: Error) => void = () => {}): void {
  link.onData((chunk) => {
    try {
      return decoder.push(chunk);
    } catch (err) {
      onError(err as Error);
      link.destroy(err as Error);
      return chunk.length;
    }
  });
}
