/** tsmpi/dataframe: parallel danfojs operations (not yet built; see issue 6). */
import { TsmpiError } from '../../runtime/errors.js';

function notYet(name: string): never {
  throw new TsmpiError('ERR_ARG', `tsmpi/dataframe: ${name} is not available in this version yet`);
}
export async function parallelApply(): Promise<never> {
  notYet('parallelApply');
}
export async function parallelApplyMap(): Promise<never> {
  notYet('parallelApplyMap');
}
export async function parallelMap(): Promise<never> {
  notYet('parallelMap');
}
export async function parallelGroupApply(): Promise<never> {
  notYet('parallelGroupApply');
}
export async function closePool(): Promise<void> {}
