import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generatePassword } from '../src/crypto/hashing.js';

describe('generated user passwords', () => {
  test('24 base64url characters, never starting with - or _ (az login -p would read an option), all distinct', () => {
    // One draw in 32 started with - or _ before: 4,000 draws miss that with probability (31/32)^4000.
    const seen = new Set<string>();
    const firsts = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const p = generatePassword();
      assert.match(p, /^[A-Za-z0-9][A-Za-z0-9_-]{23}$/);
      seen.add(p);
      firsts.add(p[0]!);
    }
    assert.equal(seen.size, 4000);
    assert.equal(firsts.size, 62, 'every letter and digit comes first');
  });
});
