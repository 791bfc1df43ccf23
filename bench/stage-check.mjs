// Run by tsmpirun on the remote host in the staging row (bench/run.js):
//   stage-check.mjs NAME BYTES   ('-' '0' for the job without --files)
// Its first top-level statement (run once the imports below have loaded, the
// same in jobs with and without --files) records the wall-clock time at which
// the rank's code started; then it checks that the staged file is in place with the right size
// (beside the script in the job folder, i.e. the rank's working directory) and
// prints `BENCH {"kind":"stage","t":…}` (t in ms since the epoch, sub-ms precision).
const t = performance.timeOrigin + performance.now();
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { init } from 'tsmpi';

const [name, bytes] = process.argv.slice(2);
if (name !== '-') {
  let size = -1;
  for (const dir of [process.cwd(), dirname(process.argv[1] ?? '.')]) {
    try {
      size = statSync(join(dir, name)).size;
      break;
    } catch {}
  }
  if (size !== Number(bytes)) {
    process.stderr.write(`stage-check: ${name} is ${size < 0 ? 'missing' : `${size} B, not ${bytes} B`} in ${process.cwd()}\n`);
    process.exit(3);
  }
}
await init();
process.stdout.write(`BENCH ${JSON.stringify({ kind: 'stage', t })}\n`);
