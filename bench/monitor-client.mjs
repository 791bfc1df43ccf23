// For `bench/run.js --only monitor`: a page's worth of attention on a job's
// --monitor, without a browser. It opens the page's one event stream (the URL
// tsmpirun printed, token included) and reads and parses every update, as the
// page's script does, until closed.
import { request } from 'node:http';

export function attachMonitor(pageUrl) {
  const u = new URL(pageUrl);
  const path = `/events?token=${encodeURIComponent(u.searchParams.get('token') ?? '')}`;
  let events = 0;
  let bytes = 0;
  let buf = '';
  const req = request({ host: u.hostname, port: u.port, path, headers: { host: u.host } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      bytes += Buffer.byteLength(chunk);
      buf += chunk;
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data) {
          JSON.parse(data.slice(6));
          events++;
        }
      }
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  req.end();
  return {
    get events() {
      return events;
    },
    get bytes() {
      return bytes;
    },
    close: () => req.destroy(),
  };
}
