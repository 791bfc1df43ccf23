/** Moved to runtime/fn (shared with tsmpi/pool); kept here for existing imports. */
export { freeVariables, walk, type EsNode } from '../../runtime/fn/scope.js';
