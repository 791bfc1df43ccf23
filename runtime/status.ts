/** What a probe or a receive learns about a message (MPI_Status). */
export interface Status {
  /** the sender's rank in the communicator (PROC_NULL for a PROC_NULL receive) */
  source: number;
  tag: number;
  /** payload size on the wire, in bytes */
  bytes: number;
}

/** A received message with its envelope. */
export interface Received<T = unknown> {
  data: T;
  source: number;
  tag: number;
}
