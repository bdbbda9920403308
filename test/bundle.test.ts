import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from './helpers/cli.js';

// `latchkey` runs the bundle of the build (scripts/bundle.mjs) when it is fresh; the test runner
// rebuilds it before the tests. What the bundler adds must cost nothing per request.

describe('the bundle `latchkey` runs (dist/bundle/)', () => {
  const dir = join(REPO_ROOT, 'dist', 'bundle');
  const chunks = readdirSync(dir).filter((f) => f.endsWith('.js'));

  test('holds the CLI entry and its chunks', () => {
    assert.ok(chunks.includes('main.js'), 'dist/bundle/main.js');
    assert.ok(chunks.length > 10, `${chunks.length} chunks`);
  });

  test('names no function at run time (esbuild keepNames is off)', () => {
    // keepNames wraps every function expression in __name(fn, "…"), an Object.defineProperty on
    // each closure as it is made: fastify and the vault app make several per request, and a vault
    // sign cost 10–60 µs more of server CPU with it (docs/performance.md, session 17).
    const named = chunks.filter((f) => /\b__name\(/.test(readFileSync(join(dir, f), 'utf8')));
    assert.deepEqual(named, []);
  });
});
