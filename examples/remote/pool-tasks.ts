// Module tasks for examples/pool-remote.ts: shipped to the remote hosts with
// this file's local imports; a task opens the staged files by their relative
// names (its cwd there is the folder that holds them).
import { readFileSync } from 'node:fs';
import { reportPartial } from 'tsmpi';

/** The sum of one slice of data.csv's values, reporting the running sum as it goes. */
export async function sumSlice(slice: number, slices: number): Promise<{ slice: number; sum: number; host: string }> {
  const rows = readFileSync('data.csv', 'utf8').trim().split('\n').slice(1);
  let sum = 0;
  for (let i = slice; i < rows.length; i += slices) {
    sum += Number(rows[i]!.split(',')[1]);
    if (i % 25 === slice) await reportPartial({ slice, sum });
  }
  return { slice, sum, host: process.env.TSMPI_HOST ?? 'localhost' };
}
