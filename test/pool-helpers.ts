// Helpers shared by the tsmpi/pool test files.

/**
 * vitest rewrites imports in test files (reportPartial, import()); a task that
 * uses them is written as text, as it would read in a user's script.
 */
// eslint-disable-next-line no-eval
export const fromText = <F>(text: string): F => (0, eval)(`(${text})`) as F;

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** 'resolved', or the code the promise rejected with. */
export const code = (p: PromiseLike<unknown>): Promise<string> =>
  Promise.resolve(p).then(
    () => 'resolved',
    (e: { code?: string }) => e.code ?? `no code: ${String(e)}`,
  );
