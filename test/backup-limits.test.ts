// A backup the vault gives out can always be restored: the size limit before sealing is in bytes,
// and the largest backup it lets through fits the restore routes' limit once sealed and in base64.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSealer, type Sealer } from '../src/crypto/envelope.js';
import { generateRootKeyText, parseRootKey } from '../src/crypto/root-key.js';
import { dataKeyStore } from '../src/storage/crypto/data-key-store.js';
import { openDatabase } from '../src/storage/open.js';
import type { Database } from '../src/storage/port.js';
import {
  BACKUP_MAX_BYTES,
  BACKUP_RESTORE_MAX_CHARS,
  openBackup,
  type SecretBackup,
  sealBackup,
} from '../src/vault/backup.js';

describe('secret backups: what is given out fits what is taken back', () => {
  let db: Database;
  let sealer: Sealer;
  before(async () => {
    db = await openDatabase('sqlite::memory:');
    sealer = await createSealer(dataKeyStore(db), parseRootKey(generateRootKeyText()));
  });
  after(() => db.close());

  const backup = (values: string[]): SecretBackup => ({
    v: 1,
    tenantId: '11111111-1111-4111-8111-111111111111',
    name: 'n',
    current: 'a'.repeat(31) + '0',
    versions: values.map((value, i) => ({
      version: i.toString(16).padStart(32, 'a'),
      value,
      contentType: null,
      enabled: true,
      nbf: null,
      exp: null,
      tags: {},
      created: 0,
      updated: 0,
    })),
  });

  test('non-ASCII values: refused when their bytes pass the limit, though their UTF-16 units do not', () => {
    // 190 versions of 8,533 × '€' (25,599 bytes each): ~1.6 M units, ~4.9 MB (the review's case)
    const euro = backup(Array.from({ length: 190 }, () => '€'.repeat(8_533)));
    assert.ok(JSON.stringify(euro).length < BACKUP_MAX_BYTES, 'under the limit counted in units');
    assert.throws(() => sealBackup(sealer, euro), /too many or too large versions/);
  });

  test('the largest backup let through restores: sealed and in base64 it is under the restore limit', () => {
    // Just under the limit in bytes, of 3-byte characters (the worst case for base64 growth is the same per byte).
    const one = backup(['']);
    const room = BACKUP_MAX_BYTES - Buffer.byteLength(JSON.stringify(one)) - 8;
    const big = backup(['€'.repeat(Math.floor(room / 3))]);
    assert.ok(Buffer.byteLength(JSON.stringify(big)) <= BACKUP_MAX_BYTES);
    const blob = sealBackup(sealer, big);
    assert.ok(
      blob.toString('base64').length <= BACKUP_RESTORE_MAX_CHARS,
      `${blob.toString('base64').length}`,
    );
    assert.equal(openBackup(sealer, big.tenantId, blob).versions[0]!.value, big.versions[0]!.value);
  });
});
