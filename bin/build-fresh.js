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
