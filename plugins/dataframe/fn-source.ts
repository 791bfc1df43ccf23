/** Moved to runtime/fn (shared with tsmpi/pool); kept here for existing imports. */
export { functionSource, stripKeepNames, type FnSource } from '../../runtime/fn/fn-source.js';
