#!/usr/bin/env node
// Runs the test suite with Node's built-in runner (through tsx).
// Usage: node scripts/run-tests.mjs [dir-or-file ...]   (default: test/)
// Files ending in .test.ts are collected recursively; LATCHKEY_TEST_CONCURRENCY sets parallel files (default 2).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const extra = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = [];
const walk = (p) => {
  if (statSync(p).isDirectory()) {
    for (const e of readdirSync(p).sort()) if (e !== 'node_modules' && e !== 'fixtures') walk(join(p, e));
  } else if (p.endsWith('.test.ts')) files.push(p);
};
for (const r of roots.length ? roots : ['test']) walk(r);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${process.env.LATCHKEY_TEST_CONCURRENCY ?? 2}`,
    '--test-reporter=spec',
    ...extra,
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, LATCHKEY_TEST: '1' } },
);
process.exit(r.status ?? 1);
