import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { launcherTarget } from '../bin/build-fresh.js';

/** A package tree with the given files, each with its modification time (seconds since 2026-01-01). */
function tree(files: Record<string, number>): string {
  const root = mkdtempSync(join(tmpdir(), 'latchkey-launcher-'));
  for (const [path, at] of Object.entries(files)) {
    const file = join(root, path);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, '');
    const t = 1_767_225_600 + at;
    utimesSync(file, t, t);
  }
  return root;
}

describe('bin/latchkey.js: sources, dist/ or its bundle', () => {
  const roots: string[] = [];
  const make = (files: Record<string, number>) => {
    const r = tree(files);
    roots.push(r);
    return r;
  };
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });
  const SRC = { 'src/cli/main.ts': 10, 'src/vault/keys.ts': 20 };

  test('a fresh bundle runs; older than dist/ (tsc alone ran since) or LATCHKEY_BUNDLE=0, dist/ runs', () => {
    const fresh = make({ ...SRC, 'dist/cli/main.js': 30, 'dist/bundle/main.js': 40 });
    assert.equal(launcherTarget(fresh, {}), 'bundle');
    assert.equal(launcherTarget(fresh, { LATCHKEY_BUNDLE: '0' }), 'dist');
    assert.equal(launcherTarget(fresh, { LATCHKEY_FROM_SOURCE: '0' }), 'bundle');
    const stale = make({ ...SRC, 'dist/cli/main.js': 50, 'dist/bundle/main.js': 40 });
    assert.equal(launcherTarget(stale, {}), 'dist');
    const none = make({ ...SRC, 'dist/cli/main.js': 30 });
    assert.equal(launcherTarget(none, {}), 'dist');
  });

  test('sources: when asked, without a build, or when src/ is newer than the build (unless LATCHKEY_FROM_SOURCE=0)', () => {
    const fresh = make({ ...SRC, 'dist/cli/main.js': 30, 'dist/bundle/main.js': 40 });
    assert.equal(launcherTarget(fresh, { LATCHKEY_FROM_SOURCE: '1' }), 'sources');
    assert.equal(launcherTarget(make(SRC), {}), 'sources');
    const edited = make({
      ...SRC,
      'src/vault/keys.ts': 60,
      'dist/cli/main.js': 30,
      'dist/bundle/main.js': 40,
    });
    assert.equal(launcherTarget(edited, {}), 'sources');
    assert.equal(launcherTarget(edited, { LATCHKEY_FROM_SOURCE: '0' }), 'bundle');
  });

  test('an installed package (no src/) runs its bundle, or dist/ without one', () => {
    assert.equal(launcherTarget(make({ 'dist/cli/main.js': 30, 'dist/bundle/main.js': 40 }), {}), 'bundle');
    assert.equal(launcherTarget(make({ 'dist/cli/main.js': 30 }), {}), 'dist');
  });
});
