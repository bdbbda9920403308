#!/usr/bin/env node
// Runs the test suite with Node's built-in runner (through tsx).
// Usage: node scripts/run-tests.mjs [dir-or-file ...]   (default: test/)
// Files ending in .test.ts are collected recursively; LATCHKEY_TEST_CONCURRENCY sets parallel files (default 3: on two cores most files wait on child processes, browsers or PostgreSQL more than they compute).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildIsFresh, bundleIsFresh } from '../bin/build-fresh.js';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const extra = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = [];
const walk = (p) => {
  if (statSync(p).isDirectory()) {
    for (const e of readdirSync(p).sort()) if (e !== 'node_modules' && e !== 'fixtures') walk(join(p, e));
  } else if (p.endsWith('.test.ts')) files.push(p);
};
for (const r of roots.length ? roots : ['test']) walk(r);
// Longest first: with N files at a time, a long file started last is the run's tail. These drive
// real processes (the CLI, az, browsers, `latchkey up`, agents, PostgreSQL clusters) and dominate
// the run's time; the order below is from measured per-file CPU seconds (user+sys, fresh dist/,
// 2026-12: cli.az 25, azure-cli 24, cli.vault 20, cli 20, console.e2e 18, up 16, keys.cli 13), with
// identity.agent early for its long chain of waits on child processes. Others keep their order.
const SLOW_FIRST = [
  'cli.az.test.ts',
  'azure-cli.test.ts',
  'identity.agent.test.ts',
  'cli.vault.test.ts',
  'cli.test.ts',
  'console.e2e.test.ts',
  'up.test.ts',
  'keys.cli.test.ts',
  'reliability/',
  'identity.run.test.ts',
  'keys.sdk.test.ts',
  'package.test.ts',
  'console.actions.test.ts',
  'scaleout.test.ts',
  'sdk.identity.test.ts',
  'identity.endpoint.test.ts',
  'python.test.ts',
  'cli.devservers.test.ts',
];
const rank = (f) => {
  const path = `/${f.replaceAll('\\', '/')}`;
  const i = SLOW_FIRST.findIndex((s) => path.includes(`/${s}`));
  return i === -1 ? SLOW_FIRST.length : i;
};
files.sort((a, b) => rank(a) - rank(b));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Tests that run the CLI start bin/latchkey.js, which runs dist/ when it is at least as new as
// src/ and otherwise the sources through tsx: about twice the CPU a command (measured:
// test/cli.az.test.ts 45 s of CPU against 25 s). A whole-suite run builds first when src/ has
// changed since the last build (a clean clone's `npm ci` has built already).
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (roots.length === 0 && !buildIsFresh(root)) {
  console.error('run-tests: src/ is newer than dist/; building first (npm run build)');
  const b = spawnSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  if (b.status !== 0) process.exit(b.status ?? 1);
}
// The bundle (scripts/bundle.mjs, the second step of `npm run build`), when dist/ has changed since
// it was made (tsc alone ran, or the build above): the CLI's tests run what `latchkey` runs.
if (roots.length === 0 && !bundleIsFresh(root)) {
  const bundled = spawnSync(process.execPath, [join(root, 'scripts', 'bundle.mjs')], {
    cwd: root,
    stdio: 'inherit',
  });
  if (bundled.status !== 0) process.exit(bundled.status ?? 1);
}
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${process.env.LATCHKEY_TEST_CONCURRENCY ?? 3}`,
    '--test-reporter=spec',
    ...extra,
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, LATCHKEY_TEST: '1' } },
);
process.exit(r.status ?? 1);
