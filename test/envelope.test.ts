import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSealer, type DataKeys } from '../src/crypto/envelope.js';
import { generateRootKeyText, parseRootKey } from '../src/crypto/root-key.js';
import { LatchkeyError } from '../src/errors/index.js';

/** An in-memory data-key table: `retire()` makes the active key an old one, so the next sealer adds a new key. */
function memoryDataKeys() {
  const rows: { id: string; wrapped: Buffer; active: boolean }[] = [];
  const store: DataKeys = {
    list: async () => rows.map((r) => ({ ...r })),
    async addActiveIfNone(make) {
      if (rows.some((r) => r.active)) return;
      rows.push({ ...make(), active: true });
    },
  };
  return {
    store,
    rows,
    retire() {
      for (const r of rows) r.active = false;
    },
  };
}

const integrity = (e: unknown) =>
  e instanceof LatchkeyError && e.code === 'InternalError' && /integrity/.test(e.message);

describe('envelope sealer: open reads the blob in place (issue 19)', () => {
  const root = parseRootKey(generateRootKeyText());
  const aad = 'secret|tenant|vault|name|0123456789abcdef0123456789abcdef';

  test('a sealed value opens, also from a view inside a larger buffer and from a plain Uint8Array', async () => {
    const sealer = await createSealer(memoryDataKeys().store, root);
    const blob = sealer.seal('s'.repeat(1024), aad);
    assert.equal(sealer.open(blob, aad).toString('utf8'), 's'.repeat(1024));
    // A row's bytes can be a slice of a bigger buffer (byteOffset ≠ 0): the header is read relative to it.
    const big = Buffer.concat([Buffer.from('garbage before'), blob, Buffer.from('after')]);
    const view = big.subarray(14, 14 + blob.length);
    assert.equal(sealer.open(view, aad).toString('utf8'), 's'.repeat(1024));
    const plain = new Uint8Array(blob);
    assert.equal(sealer.open(plain as Buffer, aad).toString('utf8'), 's'.repeat(1024));
    const before = Buffer.from(blob);
    sealer.open(blob, aad);
    assert.ok(blob.equals(before), 'open leaves the stored blob as it was');
  });

  test('every data key opens its blobs, not only the active one', async () => {
    const keys = memoryDataKeys();
    const first = await createSealer(keys.store, root);
    const old = first.seal('under the first key', aad);
    keys.retire();
    const second = await createSealer(keys.store, root);
    assert.equal(keys.rows.length, 2, 'the second sealer added a new active key');
    const fresh = second.seal('under the second key', aad);
    assert.notDeepEqual(old.subarray(1, 17), fresh.subarray(1, 17), 'two different data keys');
    assert.equal(second.open(old, aad).toString('utf8'), 'under the first key');
    assert.equal(second.open(fresh, aad).toString('utf8'), 'under the second key');
  });

  test('another AAD, a changed tag, ciphertext or key id, or a truncation fails the integrity check', async () => {
    const sealer = await createSealer(memoryDataKeys().store, root);
    const blob = sealer.seal('value', aad);
    const flipped = (i: number) => {
      const b = Buffer.from(blob);
      b[i]! ^= 1;
      return b;
    };
    assert.throws(() => sealer.open(blob, `${aad}x`), integrity);
    assert.throws(() => sealer.open(flipped(1), aad), integrity, 'an unknown data-key id');
    assert.throws(() => sealer.open(flipped(17), aad), integrity, 'the iv');
    assert.throws(() => sealer.open(flipped(29), aad), integrity, 'the tag');
    assert.throws(() => sealer.open(flipped(blob.length - 1), aad), integrity, 'the ciphertext');
    assert.throws(() => sealer.open(flipped(0), aad), integrity, 'the format byte');
    assert.throws(() => sealer.open(blob.subarray(0, 44), aad), integrity, 'shorter than the header');
    assert.throws(() => sealer.open(blob.subarray(0, blob.length - 1), aad), integrity, 'truncated');
  });
});
