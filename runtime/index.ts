/**
 * tsmpi: MPI for TypeScript. The rank-side runtime.
 */
export { init, reportPartial, reportProgress } from './world.js';
export { Comm, type SendrecvOptions } from './comm.js';
export { Request } from './request.js';
export type { Status, Received } from './status.js';
export { ANY_SOURCE, ANY_TAG, PROC_NULL, UNDEFINED, TAG_UB } from './constants.js';
export { TsmpiError, ERROR_CODES, type ErrorCode } from './errors.js';
export { Op, SUM, PROD, MAX, MIN, LAND, LOR, LXOR, BAND, BOR, BXOR, MAXLOC, MINLOC, REPLACE, NO_OP, type OpLike } from './op.js';
