import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSealer, type DataKeys } from '../src/crypto/envelope.js';
import { generateRootKeyText, parseRootKey } from '../src/crypto/root-key.js';
import { newVersionId } from '../src/lib/ids.js';
import { randomBytesPooled } from '../src/lib/random.js';

// The pooled CSPRNG (src/lib/random.ts) hands out AES-GCM IVs, object version ids and token
// `uti`s: a byte handed out twice would reuse a GCM nonce. These tests draw across many refills.
describe('randomBytesPooled', () => {
  test('never repeats: 50,000 draws of 12 bytes across about 150 refills are all distinct', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) seen.add(randomBytesPooled(12).toString('hex'));
    assert.equal(seen.size, 50_000);
  });

  test('draws of every size up to the pool are distinct and of the length asked for, across refill boundaries', () => {
    const seen = new Set<string>();
    let n = 0;
    for (let round = 0; round < 20; round++)
      for (const len of [1, 7, 12, 16, 33, 64, 255, 256, 257, 5000]) {
        const b = randomBytesPooled(len);
        assert.equal(b.length, len);
        if (len >= 12) {
          seen.add(b.toString('hex'));
          n++;
        }
      }
    assert.equal(seen.size, n);
  });

  test('each call returns its own copy: changing one result changes no other, earlier or later', () => {
    const a = randomBytesPooled(16);
    const copy = Buffer.from(a);
    const b = randomBytesPooled(16);
    b.fill(0xaa);
    assert.deepEqual(a, copy);
    // A refill must not change what was already handed out.
    for (let i = 0; i < 1000; i++) randomBytesPooled(16);
    assert.deepEqual(a, copy);
  });

  test('the bytes look random: about half the bits set over 64 KiB', () => {
    let ones = 0;
    for (let i = 0; i < 1024; i++) for (const byte of randomBytesPooled(64)) ones += popcount(byte);
    const bits = 1024 * 64 * 8;
    assert.ok(Math.abs(ones / bits - 0.5) < 0.01, `share of set bits ${ones / bits}`);
  });

  test('a bad length is refused', () => {
    for (const n of [0, -1, 1.5, Number.NaN]) assert.throws(() => randomBytesPooled(n), RangeError);
  });

  test('version ids are 32 lower-case hex digits and distinct, also within one millisecond', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newVersionId(1_765_000_000_000)));
    assert.equal(ids.size, 10_000);
    for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  });

  test('a version id starts with its creation time, so later versions sort after earlier ones', () => {
    // What keeps a secret's new versions at the end of its primary-key index (docs/performance.md).
    const t = 1_765_000_000_000;
    assert.equal(newVersionId(t).slice(0, 12), t.toString(16).padStart(12, '0'));
    const times = [0, 1, t - 1, t, t + 1, t + 1000, 0xffff_ffff_ffff];
    const groups = times.map((ms) => Array.from({ length: 50 }, () => newVersionId(ms)).sort());
    for (let i = 1; i < groups.length; i++) {
      const [before, after] = [groups[i - 1]!, groups[i]!];
      assert.ok(before.at(-1)! < after[0]!, `${before.at(-1)} < ${after[0]}`);
    }
    // The rest is random: 80 bits, different for every id made in the same millisecond.
    assert.equal(new Set(groups[3]!.map((id) => id.slice(12))).size, 50);
    // Out of range (a fake clock before 1970, NaN): still a well-formed id.
    for (const ms of [-5, Number.NaN, 2 ** 60]) assert.match(newVersionId(ms), /^[0-9a-f]{32}$/);
  });

  test('no two sealed blobs share an IV (20,000 seals)', async () => {
    const rows: { id: string; wrapped: Buffer; active: boolean }[] = [];
    const store: DataKeys = {
      list: async () => rows.map((r) => ({ ...r })),
      async addActiveIfNone(make) {
        if (!rows.some((r) => r.active)) rows.push({ ...make(), active: true });
      },
    };
    const sealer = await createSealer(store, parseRootKey(generateRootKeyText()));
    const ivs = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const blob = sealer.seal('same value', 'same|aad');
      ivs.add(blob.subarray(17, 29).toString('hex')); // 0x01 | key id (16) | iv (12) | tag | ct
    }
    assert.equal(ivs.size, 20_000);
  });
});

function popcount(b: number): number {
  let c = 0;
  for (let v = b; v; v &= v - 1) c++;
  return c;
}
