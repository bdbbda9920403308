/** Whether `root`/dist is at least as new as every file in `root`/src (see build-fresh.js). */
export function buildIsFresh(root: string): boolean;
