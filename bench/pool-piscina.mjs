// piscina's worker for bench/pool.mjs: the same two tasks as every pool there.
import { cpu, triv } from './pool-tasks.mjs';
export default ({ kind, x }) => (kind === 'cpu' ? cpu(x) : triv(x));
