import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LatchkeyError } from '../../src/errors/index.js';
import { fakeClock } from '../../src/lib/clock.js';
import type { Database } from '../../src/storage/port.js';
import { WRITE_PROBE_INTERVAL_MS } from '../../src/storage/write-health.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { grant, putVault, vaultPrincipal, vaultToken } from '../helpers/vault.js';

const API = 'api-version=7.5';
const NO_CAP = 1_073_741_823;

/**
 * Fills the SQLite store for real: `max_page_count` caps the database at its size (free pages
 * vacuumed away first), then rows of shrinking size go in until not even an 8-byte one fits.
 * From then on every write that needs a new page is refused by SQLite itself (SQLITE_FULL,
 * "database or disk is full"); a small row may still fit in the slack of a page, as on a real full
 * disk, so the refused writes here are 20 KB secrets. (The OAuth shape of the same error, 503
 * `temporarily_unavailable`, is checked in test/errors.test.ts.)
 */
let fillerSeq = 0;
async function fillStore(db: Database): Promise<number> {
  await db.run('VACUUM');
  const { page_count } = (await db.get<{ page_count: number }>('PRAGMA page_count'))!;
  await db.get(`PRAGMA max_page_count = ${page_count}`);
  let n = 0;
  for (const size of [4096, 512, 64, 8]) {
    for (;;) {
      try {
        await db.run('INSERT INTO meta (key, value) VALUES ($1, $2)', [
          `filler-${fillerSeq++}`,
          'f'.repeat(size),
        ]);
        n++;
      } catch (e) {
        assert.ok(e instanceof LatchkeyError && e.code === 'StorageFull', `not a full store: ${String(e)}`);
        break;
      }
    }
  }
  return n;
}

/** Space is back: the cap lifted and the filler removed. */
async function freeStore(db: Database): Promise<void> {
  await db.get(`PRAGMA max_page_count = ${NO_CAP}`);
  await db.run("DELETE FROM meta WHERE key LIKE 'filler-%'");
}

describe('a full disk: 503 StorageFull, readiness 503 until space is back, no acknowledged write lost', () => {
  const clock = fakeClock(Date.now());
  let s: TestServer;
  let token: string;
  let base: string;
  let db: Database;
  const call = (method: string, path: string, json?: unknown) =>
    s.request(method, `${base}${path}`, {
      headers: { authorization: `Bearer ${token}` },
      ...(json === undefined ? {} : { json }),
    });
  const readyz = () => s.request('GET', '/readyz');

  before(async () => {
    s = await startTestServer({ clock });
    db = s.services.db;
    const v = await putVault(s, 'fullvault');
    const sp = await vaultPrincipal(s, 'full-officer');
    await grant(s, sp.id, 'Key Vault Secrets Officer', v.id);
    token = await vaultToken(s, sp);
    base = s.vaultUrl('fullvault');
    await s.adminToken();
  });
  after(async () => {
    await s?.stop();
  });

  test('writes are refused as not done, reads go on, readiness follows the store, and it recovers by itself', async () => {
    const acknowledged = await call('PUT', `/secrets/kept?${API}`, { value: 'written-before' });
    assert.equal(acknowledged.status, 200);
    assert.equal((await readyz()).status, 200);

    const fillers = await fillStore(db);
    assert.ok(fillers > 0, 'fillers > 0');
    assert.equal(db.writable, false);

    // A write: 503 with its own code and Retry-After, in the vault's error shape
    const refused = await call('PUT', `/secrets/refused?${API}`, { value: 'x'.repeat(20_000) });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json.error.code, 'StorageFull');
    assert.equal(refused.headers['retry-after'], '30');
    const update = await call('PUT', `/secrets/kept?${API}`, { value: 'y'.repeat(20_000) });
    assert.equal(update.status, 503, update.text);
    assert.equal(update.json.error.code, 'StorageFull');

    // Reads go on; nothing of the refused writes is there (no new secret, no new version)
    const kept = await call('GET', `/secrets/kept?${API}`);
    assert.equal(kept.status, 200);
    assert.equal(kept.json.value, 'written-before');
    assert.equal((await call('GET', `/secrets/refused?${API}`)).status, 404);
    assert.equal((await call('GET', `/secrets/kept/versions?${API}`)).json.value.length, 1);

    // The reads' audit records go in a batch committed every 25 ms of real time, into the audit
    // table's own pages, whose slack may still hold them: such a commit succeeds and rightly marks the
    // store writable again. Commit them now and fill that slack too, so readiness is asked of a full
    // store whatever the batch timer did (it failed 1 run in CI when the batch beat the probe).
    await s.services.audit.drain();
    await fillStore(db);
    assert.equal(db.writable, false, 'the store is full again');

    // Readiness: 503 while the store cannot write; the probe runs at most once per interval
    const notReady = await readyz();
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.json, {
      status: 'unavailable',
      database: true,
      migrations: true,
      writable: false,
    });
    assert.equal((await readyz()).status, 503);

    // Space is back (the operator freed it). Within the interval readiness still says 503 (no probe) ...
    await freeStore(db);
    // The reads above left audit records in the read batch (committed every 25 ms of real time);
    // commit them now, so no late batch commit clears the mark set below behind the test's back.
    await s.services.audit.drain();
    // (freeing the space was itself a committed write on this connection: mark it unwritable again
    // to see readiness find out by itself, as a node out of rotation would, with no request writing)
    await fillStore(db);
    await db.get(`PRAGMA max_page_count = ${NO_CAP}`);
    assert.equal(db.writable, false);
    assert.equal((await readyz()).status, 503);
    // ... and once the interval has passed its probe write commits: ready again
    clock.advance(WRITE_PROBE_INTERVAL_MS);
    const ready = await readyz();
    assert.equal(ready.status, 200, ready.text);
    assert.equal(ready.json.writable, true);
    assert.equal(db.writable, true);
    assert.equal(await db.get("SELECT key FROM meta WHERE key = 'write_probe'"), undefined);
    await db.run("DELETE FROM meta WHERE key LIKE 'filler-%'");

    // Writes work again; every acknowledged write is there, the audit chain and the file are intact
    const again = await call('PUT', `/secrets/refused?${API}`, { value: 'written-after' });
    assert.equal(again.status, 200, again.text);
    assert.equal((await call('GET', `/secrets/refused?${API}`)).json.value, 'written-after');
    assert.equal((await call('GET', `/secrets/kept?${API}`)).json.value, 'written-before');
    const verify = await s.request('POST', '/api/audit/verify', {
      headers: { authorization: `Bearer ${await s.adminToken()}` },
    });
    assert.equal(verify.json.ok, true, verify.text);
    assert.deepEqual(await db.all('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  });

  test('a write that commits clears the mark at once (no probe needed)', async () => {
    await fillStore(db);
    assert.equal(db.writable, false);
    await db.get(`PRAGMA max_page_count = ${NO_CAP}`);
    const put = await call('PUT', `/secrets/after-full?${API}`, { value: 'v' });
    assert.equal(put.status, 200, put.text);
    assert.equal(db.writable, true);
    assert.equal((await readyz()).status, 200);
    await db.run("DELETE FROM meta WHERE key LIKE 'filler-%'");
  });
});
