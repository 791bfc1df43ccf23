// Row and column communicators of a process grid with split(): each rank sums
// its row's and its column's values, the way a 2-D decomposition would.
// Run: npx tsmpirun -n 6 examples/grid.ts   (a 2 × 3 grid; any size works)
import { init, SUM } from 'tsmpi';

const comm = await init();
const cols = Math.ceil(Math.sqrt(comm.size));
const row = Math.floor(comm.rank / cols);
const col = comm.rank % cols;

const rowComm = (await comm.split(row, col))!;
const colComm = (await comm.split(col, row))!;
const value = comm.rank * 10;
const rowSum = await rowComm.allreduce(value, SUM);
const colSum = await colComm.allreduce(value, SUM);

const lines = await comm.gather(`rank ${comm.rank} at (${row}, ${col}): row ${row} sums to ${rowSum} over ${rowComm.size} ranks, column ${col} to ${colSum} over ${colComm.size}`, 0);
if (comm.rank === 0) console.log(lines!.join('\n'));
