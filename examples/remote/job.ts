// A job across hosts: every rank reads the staged data.csv (remote ranks find it
// in their job folder), sums its share of the rows, and rank 0 prints the total
// and where each rank ran.
// Run (see README "Remote hosts"): npx tsmpirun --hostfile examples/remote/hostfile -n 5 \
//   examples/remote/job.ts --files examples/remote/data.csv
import { existsSync, readFileSync } from 'node:fs';
import { init, SUM } from 'tsmpi';

const comm = await init();
// Local ranks run in tsmpirun's folder; remote ranks in their job folder.
const file = existsSync('data.csv') ? 'data.csv' : new URL('./data.csv', import.meta.url).pathname;
const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[1]));
let mine = 0;
for (let i = comm.rank; i < rows.length; i += comm.size) mine += rows[i]!;
const total = await comm.reduce(mine, SUM, 0);
const where = await comm.gather(`${comm.rank}@${process.env.TSMPI_HOST ?? 'local'}`, 0);
if (comm.rank === 0) console.log(`total ${total} over ${rows.length} rows; ranks: ${where!.join(' ')}`);
