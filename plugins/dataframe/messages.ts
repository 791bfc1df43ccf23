/** How an error thrown by the user's function travels back from a worker or rank. */
export interface FailureReport {
  /** the item (row, column, value or group) position in the whole call; -1: none */
  at: number;
  /** applyMap: the column of the value */
  column?: number;
  name: string;
  message: string;
  stack: string;
  /** the call itself worked, but its result cannot be sent */
  inResult?: boolean;
  /** the function failed to compile in the worker */
  compile?: boolean;
}
