/**
 * Forward a rank's output stream line by line, optionally tagged `[rank] `, so
 * lines of different ranks never interleave mid-line.
 */
export class LineForwarder {
  private rest = '';
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly write: (text: string) => void,
    private readonly prefix: string,
  ) {}

  push(chunk: Uint8Array): void {
    const text = this.rest + this.decoder.decode(chunk, { stream: true });
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      this.rest = text;
      // A very long line without a newline is passed on rather than held forever.
      if (this.rest.length > 1 << 20) this.flush();
      return;
    }
    this.rest = text.slice(cut + 1);
    const body = text.slice(0, cut + 1);
    if (!this.prefix) {
      this.write(body);
      return;
    }
    const lines = body.split('\n');
    lines.pop();
    this.write(lines.map((l) => `${this.prefix}${l}\n`).join(''));
  }

  /**
   * Pass on a trailing partial line (end of stream). Tagged output ends it with
   * a newline, so that the next rank's line does not continue it.
   */
  flush(): void {
    const text = this.rest + this.decoder.decode();
    this.rest = '';
    if (text) this.write(this.prefix ? `${this.prefix}${text}\n` : text);
  }
}
