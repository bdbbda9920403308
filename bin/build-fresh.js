// Whether the compiled build (dist/) is at least as new as every source file (src/). Shared by
// bin/latchkey.js (which runs the build when it is fresh) and the benchmarks (which build first
// when it is not). Plain JavaScript: the launcher must not need a TypeScript loader to decide.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The newest modification time of any file under `dir` (ms). */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** @param {string} root the package root */
export function buildIsFresh(root) {
  const built = join(root, 'dist', 'cli', 'main.js');
  try {
    return existsSync(built) && statSync(built).mtimeMs >= newest(join(root, 'src'));
  } catch {
    return false;
  }
}

/**
 * Whether dist/bundle/ (scripts/bundle.mjs, the second step of `npm run build`) was made from the
 * current dist/: at least as new as dist/cli/main.js, which tsc rewrites on every build.
 * @param {string} root the package root
 */
export function bundleIsFresh(root) {
  const bundle = join(root, 'dist', 'bundle', 'main.js');
  const built = join(root, 'dist', 'cli', 'main.js');
  try {
    return existsSync(bundle) && existsSync(built) && statSync(bundle).mtimeMs >= statSync(built).mtimeMs;
  } catch {
    return false;
  }
}

/**
 * What `latchkey` (bin/latchkey.js) runs: `'sources'` (through tsx) when LATCHKEY_FROM_SOURCE=1,
 * when there is no build, or in a checkout whose src/ is newer than dist/ (unless
 * LATCHKEY_FROM_SOURCE=0); otherwise `'bundle'` when dist/bundle/ is as new as dist/ (and
 * LATCHKEY_BUNDLE is not 0), else `'dist'`. An installed package (no src/) never runs the sources.
 * @param {string} root the package root
 * @param {Record<string, string | undefined>} env
 * @returns {'sources' | 'dist' | 'bundle'}
 */
export function launcherTarget(root, env = process.env) {
  const source = env.LATCHKEY_FROM_SOURCE;
  if (source === '1' || !existsSync(join(root, 'dist', 'cli', 'main.js'))) return 'sources';
  const installed = !existsSync(join(root, 'src', 'cli', 'main.ts'));
  if (!installed && source !== '0' && !buildIsFresh(root)) return 'sources';
  return env.LATCHKEY_BUNDLE !== '0' && bundleIsFresh(root) ? 'bundle' : 'dist';
}
