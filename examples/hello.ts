// Every rank says hello. Run: npx tsmpirun -n 8 examples/hello.ts
import { init } from 'tsmpi';

const comm = await init();
console.log(`Hello from rank ${comm.rank} of ${comm.size} (pid ${process.pid})`);
