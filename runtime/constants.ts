/** MPI's special values, with Open MPI's / mpi4py's numbers. */
export const ANY_SOURCE = -1;
export const ANY_TAG = -1;
export const PROC_NULL = -2;
export const UNDEFINED = -32766;
/** Largest user tag (MPI_TAG_UB); tags are integers in 0..TAG_UB. */
export const TAG_UB = 0x7fffffff;
