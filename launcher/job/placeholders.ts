/** Names shared by the launcher and the daemon for a remote job's staged script. */

/** Placeholders the launcher leaves in a remote job's script for the host's own tsmpi install. */
export const RUNTIME_PLACEHOLDER = 'tsmpi-remote:runtime';
export const DATAFRAME_PLACEHOLDER = 'tsmpi-remote:dataframe';
export const POOL_PLACEHOLDER = 'tsmpi-remote:pool';
/** the task pool's worker program (what a pool's remote workers run) */
export const POOL_WORKER_PLACEHOLDER = 'tsmpi-remote:pool-worker';
/**
 * A package tsmpi itself depends on (danfojs-node, …): on a remote host it is
 * imported from the daemon's own install rather than bundled into the script.
 */
export const PACKAGE_PLACEHOLDER = 'tsmpi-remote:pkg:';
export const PACKAGE_PLACEHOLDER_PATTERN = /tsmpi-remote:pkg:((?:@[\w.-]+\/)?[\w.-]+(?:\/[\w./-]+)?)/g;
/** The compiled script is always the first staged file, under this name. */
export const SCRIPT_FILE = '.tsmpi-job.mjs';
