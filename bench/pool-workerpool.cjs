// workerpool's worker for bench/pool.mjs: the same two tasks as every pool there.
const workerpool = require('workerpool');
// (x * 2, and a loop of n steps; kept equal to bench/pool-tasks.mjs)
const triv = (x) => x * 2;
function cpu(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.sqrt(i + s * 1e-9);
  return s;
}
workerpool.worker({ triv, cpu });
