// The tasks every pool in bench/pool.mjs runs (each pool gets them its own way:
// tsmpi/pool as source text, piscina and workerpool from their worker files).
export const triv = (x) => x * 2;
export function cpu(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.sqrt(i + s * 1e-9);
  return s;
}
