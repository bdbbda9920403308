/** Whether `root`/dist is at least as new as every file in `root`/src (see build-fresh.js). */
export function buildIsFresh(root: string): boolean;
/** Whether `root`/dist/bundle was made from the current `root`/dist (see build-fresh.js). */
export function bundleIsFresh(root: string): boolean;
/** What bin/latchkey.js runs for `root` and `env` (see build-fresh.js). */
export function launcherTarget(
  root: string,
  env?: Record<string, string | undefined>,
): 'sources' | 'dist' | 'bundle';
