#!/usr/bin/env -S node --max-semi-space-size=4
// (--max-semi-space-size=4: V8's young generation capped at 4 MiB a semi-space instead of 16, which
// keeps a busy server about 30 MB smaller; `npm start`, deploy/ and the benchmarks pass it too.)
// The `latchkey` command. Runs the compiled build (dist/, made by `npm ci` /
// `npm run build`) when it is at least as new as every source file; otherwise
// (a source file edited since the last build, or no build) it runs the
// TypeScript sources through tsx, so `npx latchkey ...` always runs the code
// in src/. The compiled build starts faster and serves about 1.5× the
// requests per second (no loader hooks, no source-map lookups).
// The build runs as its bundle (dist/bundle/, scripts/bundle.mjs) when that is as new as dist/.
// LATCHKEY_FROM_SOURCE=1 forces the sources, =0 the build; LATCHKEY_BUNDLE=0 runs dist/
// unbundled. An installed package (`npm install -g latchkey-*.tgz`) ships dist/ (and its
// bundle) only and always runs it: tsx is
// loaded only from a checkout.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launcherTarget } from './build-fresh.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

let main;
const target = launcherTarget(root);
if (target === 'bundle') {
  // The bundle of the build (dist/bundle/: a restart loads ~65 files instead of ~550).
  ({ main } = await import('../dist/bundle/main.js'));
} else if (target === 'dist') {
  ({ main } = await import('../dist/cli/main.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
