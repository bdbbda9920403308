import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import {
  hashPassword,
  PASSWORD_COST,
  passwordCost,
  TEST_PASSWORD_COST,
  verifyPassword,
} from '../src/crypto/hashing.js';

// The test runner hashes passwords at a lower scrypt cost (LATCHKEY_TEST=1, set by
// scripts/run-tests.mjs); these tests hold that the production cost is unchanged and that a
// test-cost hash is refused outside the test runner.

const production: NodeJS.ProcessEnv = {};
const testRunner: NodeJS.ProcessEnv = { LATCHKEY_TEST: '1' };

test('the production password cost is scrypt N=2^15, r=8, p=1, and only LATCHKEY_TEST=1 lowers it', () => {
  assert.deepEqual(PASSWORD_COST, { N: 32768, r: 8, p: 1 });
  assert.deepEqual(passwordCost(production), PASSWORD_COST);
  assert.deepEqual(passwordCost({ LATCHKEY_TEST: 'true' }), PASSWORD_COST);
  assert.deepEqual(passwordCost({ LATCHKEY_TEST: '0' }), PASSWORD_COST);
  assert.deepEqual(passwordCost(testRunner), TEST_PASSWORD_COST);
  assert.ok(TEST_PASSWORD_COST.N < PASSWORD_COST.N, 'TEST_PASSWORD_COST.N < PASSWORD_COST.N');
});

test('without LATCHKEY_TEST a hash records and uses the production cost, and verifies', async () => {
  const stored = await hashPassword('correct horse battery', production);
  assert.match(stored, /^scrypt\$32768\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  assert.equal(await verifyPassword('correct horse battery', stored, production), true);
  assert.equal(await verifyPassword('correct horse batterz', stored, production), false);
  // The test runner still verifies a production hash (a store made outside the runner).
  assert.equal(await verifyPassword('correct horse battery', stored, testRunner), true);
});

test('a test-cost hash verifies only under the test runner; outside it is refused', async () => {
  const stored = await hashPassword('correct horse battery', testRunner);
  assert.match(stored, /^scrypt\$1024\$8\$1\$/);
  assert.equal(await verifyPassword('correct horse battery', stored, testRunner), true);
  assert.equal(await verifyPassword('correct horse batterz', stored, testRunner), false);
  assert.equal(await verifyPassword('correct horse battery', stored, production), false);
});

test('a hash that records any other cost or scheme is refused', async () => {
  const stored = await hashPassword('correct horse battery', production);
  const [, , r, p, salt, key] = stored.split('$');
  for (const forged of [
    `scrypt$16384$${r}$${p}$${salt}$${key}`,
    `scrypt$32768$1$${p}$${salt}$${key}`,
    `scrypt$32768$${r}$2$${salt}$${key}`,
    `bcrypt$32768$${r}$${p}$${salt}$${key}`,
  ]) {
    assert.equal(await verifyPassword('correct horse battery', forged, testRunner), false, forged);
    assert.equal(await verifyPassword('correct horse battery', forged, production), false, forged);
  }
  assert.equal(await verifyPassword('correct horse battery', null, production), false);
});

test('a process started without LATCHKEY_TEST hashes at the production cost (nothing else lowers it)', () => {
  const env = { ...process.env };
  delete env.LATCHKEY_TEST;
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      "const { hashPassword } = await import('./src/crypto/hashing.ts'); process.stdout.write(await hashPassword('pw-of-twelve-chars'));",
    ],
    { env, encoding: 'utf8' },
  );
  assert.match(out, /^scrypt\$32768\$8\$1\$/);
});
