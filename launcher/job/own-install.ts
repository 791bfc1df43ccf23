/**
 * On the host where a compiled script runs: put this host's own tsmpi install
 * in place of the placeholders a remote compile left (the daemon does it for a
 * job's script, a pool worker for a module task that arrives later).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dataframeEntry, distDir, poolEntry, poolWorkerEntry, runtimeEntry } from '../os/paths.js';
import { DATAFRAME_PLACEHOLDER, PACKAGE_PLACEHOLDER_PATTERN, POOL_PLACEHOLDER, POOL_WORKER_PLACEHOLDER, RUNTIME_PLACEHOLDER } from './placeholders.js';

/** A package tsmpi depends on, as this install resolves it (or the bare name). */
export function ownPackageUrl(spec: string): string {
  try {
    return pathToFileURL(createRequire(join(distDir, '..', 'package.json')).resolve(spec)).href;
  } catch {
    return spec;
  }
}

export function fillPlaceholders(text: string): string {
  return text
    .replaceAll(RUNTIME_PLACEHOLDER, pathToFileURL(runtimeEntry).href)
    .replaceAll(DATAFRAME_PLACEHOLDER, pathToFileURL(dataframeEntry).href)
    .replaceAll(POOL_WORKER_PLACEHOLDER, pathToFileURL(poolWorkerEntry).href)
    .replaceAll(POOL_PLACEHOLDER, pathToFileURL(poolEntry).href)
    .replace(PACKAGE_PLACEHOLDER_PATTERN, (_, spec: string) => ownPackageUrl(spec));
}
