import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { pemBlocks } from '../src/lib/pem.js';
import { fuzzSeed } from './helpers/fuzz-seed.js';

fuzzSeed();

/** What the server's PEM readers used before: the same blocks, in quadratic time on unclosed ones. */
const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
const byRegex = (s: string) =>
  [...s.matchAll(PEM_RE)].map((m) => ({ label: m[1]!, body: m[2]!, text: m[0] }));

describe('pemBlocks: PEM blocks in linear time', () => {
  test('finds what the regular expression found, on real and odd inputs', () => {
    for (const s of [
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n',
      '-----BEGIN A-----1-----BEGIN B-----2-----END A-----3-----END B-----',
      '-----BEGIN A-----x-----END A----------BEGIN A-----y-----END A-----',
      '-----BEGIN A----------END A-----',
      '-----BEGIN a-----1-----END a-----',
      '-----BEGIN -----z-----END -----',
      '-----BEGIN A-----'.repeat(500),
    ])
      assert.deepEqual(pemBlocks(s), byRegex(s), JSON.stringify(s.slice(0, 80)));
  });

  test('property: the same blocks as the regular expression on strings of PEM fragments', () => {
    const token = fc.constantFrom(
      '-----BEGIN ',
      '-----END ',
      '-----',
      'A',
      'B',
      'A B',
      ' ',
      'x',
      '\n',
      '-',
      'a',
      'CERTIFICATE',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 16 }), (parts) => {
        const s = parts.join('');
        assert.deepEqual(pemBlocks(s), byRegex(s));
      }),
      { numRuns: 5_000 },
    );
  });
});
