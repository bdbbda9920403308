import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createJobs } from '../src/jobs/runner.js';
import { fakeClock } from '../src/lib/clock.js';
import { openDatabase } from '../src/storage/open.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, vaultPrincipal, vaultToken } from './helpers/vault.js';

const API = 'api-version=7.5';

describe('vault data plane (raw HTTP)', () => {
  let s: TestServer;
  let token: string;
  let base: string;
  const call = (
    method: string,
    path: string,
    o: { json?: unknown; body?: string; headers?: Record<string, string> } = {},
  ) =>
    s.request(method, `${base}${path}`, {
      ...o,
      headers: { authorization: `Bearer ${token}`, ...o.headers },
    });

  before(async () => {
    s = await startTestServer();
    const v = await putVault(s, 'rawvault');
    const sp = await vaultPrincipal(s, 'raw-officer');
    await grant(s, sp.id, 'Key Vault Secrets Officer', v.id);
    token = await vaultToken(s, sp);
    base = s.vaultUrl('rawvault');
  });
  after(async () => {
    await s?.stop();
  });

  test('the challenge: 401 before the body is read, naming authority, tenant and resource', async () => {
    const port = new URL(s.info.authority).port;
    // Not on 443: the resource carries the port (the Python and Go clients compare host and port).
    const expected = `Bearer authorization="https://localhost:${port}/${s.info.tenantId}", resource="https://vault.localhost:${port}"`;
    // As the SDK does it: no Authorization, body stripped.
    const r = await s.request('PUT', `${base}/secrets/x?${API}`, {
      headers: { 'content-type': 'application/json', 'content-length': '0' },
    });
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], expected);
    assert.equal(r.json.error.code, 'Unauthorized');
    // A body that would be invalid is not looked at before authentication.
    const bad = await s.request('PUT', `${base}/secrets/x?${API}`, {
      body: '{not json',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers['www-authenticate'], expected);
    // Nor is the api-version.
    const noVersion = await s.request('GET', `${base}/secrets`);
    assert.equal(noVersion.status, 401);
    // A bad token gets the same challenge.
    const badToken = await s.request('GET', `${base}/secrets?${API}`, {
      headers: { authorization: 'Bearer abc.def.ghi' },
    });
    assert.equal(badToken.status, 401);
    assert.equal(badToken.headers['www-authenticate'], expected);
    // A management-audience token is refused at the vault.
    const mgmt = await s.request('GET', `${base}/secrets?${API}`, {
      headers: { authorization: `Bearer ${await s.adminToken()}` },
    });
    assert.equal(mgmt.status, 401);
  });

  test('the vault resource with and without the port: both are vault tokens; another port is unknown', async () => {
    const port = new URL(s.info.authority).port;
    const sp = await vaultPrincipal(s, 'port-forms');
    await grant(s, sp.id, 'Key Vault Secrets User', (await s.services.vaults.byName('rawvault'))!.armId);
    const tokenFor = (resource: string) =>
      s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: sp.appId,
          client_secret: sp.secret,
          scope: `${resource}/.default`,
        },
      });
    for (const resource of [
      'https://vault.localhost',
      `https://vault.localhost:${port}`,
      `https://VAULT.localhost:${port}/`,
    ]) {
      const t = await tokenFor(resource);
      assert.equal(t.status, 200, `${resource}: ${t.text}`);
      const aud = JSON.parse(Buffer.from(t.json.access_token.split('.')[1], 'base64url').toString()).aud;
      assert.equal(aud, resource.toLowerCase().replace(/\/$/, ''));
      const r = await s.request('GET', `${base}/secrets?${API}`, {
        headers: { authorization: `Bearer ${t.json.access_token}` },
      });
      assert.equal(r.status, 200, `${resource}: ${r.text}`);
    }
    const other = await tokenFor(`https://vault.localhost:${Number(port) === 1 ? 2 : 1}`);
    assert.equal(other.status, 400);
    assert.equal(other.json.error, 'invalid_scope');
    assert.deepEqual(other.json.error_codes, [500011]);
  });

  test('served on 443, the challenge names the vault domain alone', async () => {
    const port = Number(new URL(s.info.authority).port);
    s.services.setBoundPort(443);
    try {
      const r = await s.request('GET', `${base}/secrets?${API}`);
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /, resource="https:\/\/vault\.localhost"$/);
      assert.deepEqual(s.services.vaultAudiences(), ['https://vault.localhost']);
    } finally {
      s.services.setBoundPort(port);
    }
  });

  test('a disabled or deleted principal is refused at once, even with a cached token', async () => {
    const sp = await vaultPrincipal(s, 'short-lived');
    await grant(s, sp.id, 'Key Vault Secrets User', (await s.services.vaults.byName('rawvault'))!.armId);
    const t = await vaultToken(s, sp);
    const get = () =>
      s.request('GET', `${base}/secrets?${API}`, { headers: { authorization: `Bearer ${t}` } });
    assert.equal((await get()).status, 200);
    await s.services.principals.setEnabled(s.info.tenantId, sp.id, false);
    const off = await get();
    assert.equal(off.status, 401);
    assert.match(String(off.headers['www-authenticate']), /^Bearer authorization="/);
    await s.services.principals.setEnabled(s.info.tenantId, sp.id, true);
    assert.equal((await get()).status, 200);
    await s.services.principals.delete(s.info.tenantId, sp.id);
    assert.equal((await get()).status, 401);
  });

  test('an unknown vault: a challenge like any other, then 404 VaultNotFound once authenticated', async () => {
    const r = await s.request('GET', `${s.vaultUrl('novault')}/secrets?${API}`);
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), new RegExp(`/${s.info.tenantId}"`));
    const a = await s.request('GET', `${s.vaultUrl('novault')}/secrets?${API}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(a.status, 404);
    assert.equal(a.json.error.code, 'VaultNotFound');
  });

  test('api-version: required, known values only, percent-encoded key accepted', async () => {
    await call('PUT', `/secrets/apiv?${API}`, { json: { value: 'x' } });
    const missing = await call('GET', '/secrets/apiv');
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.code, 'BadParameter');
    const unknown = await call('GET', '/secrets/apiv?api-version=9.9');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.code, 'BadParameter');
    assert.match(unknown.json.error.message, /^The specified version \(9\.9\) is not recognized\./);
    for (const v of ['7.0', '7.2', '7.4', '7.5', '7.6', '2025-07-01', '7.6-preview.2', '2026-04-01']) {
      const r = await call('GET', `/secrets/apiv?api-version=${v}`);
      assert.equal(r.status, 200, v);
      assert.equal(r.json.value, 'x');
      assert.equal(r.headers['x-latchkey-served-api-version'], v);
    }
    // Newer than the newest known (a later SDK's default): served as the newest known, and said so.
    const newer = await call('GET', '/secrets/apiv?api-version=2027-03-01');
    assert.equal(newer.status, 200);
    assert.equal(newer.json.value, 'x');
    assert.equal(newer.headers['x-latchkey-served-api-version'], '2026-04-01');
    // Error responses carry it too; older unknown dates and malformed ones are refused.
    const missingSecret = await call('GET', '/secrets/nope?api-version=2027-03-01');
    assert.equal(missingSecret.status, 404);
    assert.equal(missingSecret.headers['x-latchkey-served-api-version'], '2026-04-01');
    for (const v of ['2024-01-01', '2027-02-30', '7.7']) {
      const r = await call('GET', `/secrets/apiv?api-version=${v}`);
      assert.equal(r.status, 400, v);
      assert.equal(r.json.error.code, 'BadParameter');
      assert.equal(r.headers['x-latchkey-served-api-version'], undefined);
    }
    const encoded = await call('GET', '/secrets/apiv?api%2Dversion=7.5');
    assert.equal(encoded.status, 200);
    const trailing = await call('GET', `/secrets/apiv/?${API}`);
    assert.equal(trailing.status, 200);
    assert.equal(trailing.json.value, 'x');
  });

  test('paging: maxresults 1–25, absolute nextLink on the host the client used', async () => {
    for (let i = 0; i < 23; i++)
      await call('PUT', `/secrets/pg-${String(i).padStart(2, '0')}?${API}`, { json: { value: `v${i}` } });
    const seen: string[] = [];
    let url: string | null = `${base}/secrets?${API}&maxresults=10`;
    let pages = 0;
    while (url) {
      assert.ok(url.startsWith(`${base}/secrets?`), `nextLink is absolute on the vault host: ${url}`);
      const r = await s.request('GET', url, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
      assert.ok(r.json.value.length <= 10, 'r.json.value.length <= 10');
      for (const item of r.json.value) {
        assert.equal(item.value, undefined, 'list items carry no value');
        seen.push(item.id.split('/').pop());
      }
      url = r.json.nextLink;
      pages++;
    }
    assert.ok(pages >= 3, 'pages >= 3');
    const pg = seen.filter((n) => n.startsWith('pg-'));
    assert.equal(pg.length, 23);
    assert.deepEqual(pg, [...pg].sort());
    for (const bad of ['0', '26', '-1', 'abc', '1.5']) {
      const r = await call('GET', `/secrets?${API}&maxresults=${bad}`);
      assert.equal(r.status, 400, `maxresults=${bad}`);
    }
    const token2 = await call('GET', `/secrets?${API}&$skiptoken=not-a-token`);
    assert.equal(token2.status, 400);
    // nextLink follows the host as sent (127.0.0.1 via a vault-host alias is not possible; the port is kept).
    const first = await call('GET', `/secrets?${API}&maxresults=1`);
    assert.ok(
      String(first.json.nextLink).startsWith(`${base}/secrets?api-version=7.5&$skiptoken=`),
      "String(first.json.nextLink).startsWith('{base}/secrets?api-version=7.5&$skiptoken=')",
    );
    // versions page too
    for (let i = 0; i < 3; i++) await call('PUT', `/secrets/many?${API}`, { json: { value: `m${i}` } });
    const v1 = await call('GET', `/secrets/many/versions?${API}&maxresults=2`);
    assert.equal(v1.json.value.length, 2);
    const v2 = await s.request('GET', v1.json.nextLink, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(v2.json.value.length, 1);
    assert.equal(v2.json.nextLink, null);
  });

  test('enabled, nbf and exp as Azure: disabled is 403, not-yet-valid and expired are readable', async () => {
    const now = Math.floor(Date.now() / 1000);
    const dis = await call('PUT', `/secrets/off?${API}`, {
      json: { value: 'hidden', attributes: { enabled: false } },
    });
    assert.equal(dis.status, 200);
    assert.equal(dis.json.attributes.enabled, false);
    const g = await call('GET', `/secrets/off?${API}`);
    assert.equal(g.status, 403);
    assert.deepEqual(g.json.error, {
      code: 'Forbidden',
      message: 'Operation get is not allowed on a disabled secret.',
      innererror: { code: 'SecretDisabled' },
    });
    assert.ok(!g.text.includes('hidden'), "!g.text.includes('hidden')");
    // its metadata is still listed; enabling it again makes it readable
    const versions = await call('GET', `/secrets/off/versions?${API}`);
    assert.equal(versions.json.value[0].attributes.enabled, false);
    const en = await call('PATCH', `/secrets/off?${API}`, { json: { attributes: { enabled: true } } });
    assert.equal(en.status, 200);
    assert.equal(en.json.value, undefined, 'update returns no value');
    assert.equal((await call('GET', `/secrets/off?${API}`)).json.value, 'hidden');

    const expired = await call('PUT', `/secrets/expired?${API}`, {
      json: { value: 'old', attributes: { exp: now - 3600 } },
    });
    assert.equal(expired.json.attributes.exp, now - 3600);
    const ge = await call('GET', `/secrets/expired?${API}`);
    assert.equal(ge.status, 200);
    assert.equal(ge.json.value, 'old');
    const future = await call('PUT', `/secrets/future?${API}`, {
      json: { value: 'soon', attributes: { nbf: now + 3600 } },
    });
    assert.equal(future.json.attributes.nbf, now + 3600);
    assert.equal((await call('GET', `/secrets/future?${API}`)).json.value, 'soon');
    const window = await call('PUT', `/secrets/window?${API}`, {
      json: { value: 'w', attributes: { nbf: now + 10, exp: now } },
    });
    assert.equal(window.status, 400);
    assert.equal(window.json.error.code, 'BadParameter');
  });

  test('limits: 25 KiB value, contentType 255, 15 tags, names 1–127 of [0-9a-zA-Z-]', async () => {
    const max = 'a'.repeat(25 * 1024);
    assert.equal((await call('PUT', `/secrets/big?${API}`, { json: { value: max } })).status, 200);
    assert.equal((await call('GET', `/secrets/big?${API}`)).json.value.length, 25 * 1024);
    const over = await call('PUT', `/secrets/big?${API}`, { json: { value: `${max}a` } });
    assert.equal(over.status, 400);
    const multibyte = await call('PUT', `/secrets/big?${API}`, { json: { value: 'é'.repeat(12_801) } });
    assert.equal(multibyte.status, 400, 'the limit counts UTF-8 bytes');
    const versions = await call('GET', `/secrets/big/versions?${API}`);
    assert.equal(versions.json.value.length, 1, 'refused sets created nothing');
    assert.equal(
      (await call('PUT', `/secrets/ct?${API}`, { json: { value: 'x', contentType: 'c'.repeat(256) } }))
        .status,
      400,
    );
    const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v']));
    assert.equal((await call('PUT', `/secrets/tg?${API}`, { json: { value: 'x', tags } })).status, 400);
    assert.equal(
      (await call('PUT', `/secrets/${'n'.repeat(128)}?${API}`, { json: { value: 'x' } })).status,
      400,
    );
    assert.equal((await call('PUT', `/secrets/under_score?${API}`, { json: { value: 'x' } })).status, 400);
    assert.equal(
      (await call('PUT', `/secrets/${'n'.repeat(127)}?${API}`, { json: { value: 'x' } })).status,
      200,
    );
    assert.equal((await call('PUT', `/secrets/nobody?${API}`)).status, 400);
    assert.equal((await call('PUT', `/secrets/num?${API}`, { json: { value: 42 } })).status, 400);
  });

  test('names are case-insensitive; the first spelling is kept', async () => {
    const r = await call('PUT', `/secrets/MixedCase?${API}`, { json: { value: 'one' } });
    assert.match(r.json.id, /\/secrets\/MixedCase\/[0-9a-f]{32}$/);
    const g = await call('GET', `/secrets/mixedcase?${API}`);
    assert.equal(g.json.value, 'one');
    await call('PUT', `/secrets/MIXEDCASE?${API}`, { json: { value: 'two' } });
    const v = await call('GET', `/secrets/mIxEdCaSe/versions?${API}`);
    assert.equal(v.json.value.length, 2);
    assert.ok(
      v.json.value.every((i: { id: string }) => i.id.includes('/secrets/MixedCase/')),
      "v.json.value.every((i: { id: string }) => i.id.includes('/secrets/MixedCase/'))",
    );
    const version = g.json.id.split('/').pop();
    assert.equal((await call('GET', `/secrets/MIXEDCASE/${version.toUpperCase()}?${API}`)).json.value, 'one');
    assert.equal(
      (await call('GET', `/secrets/mixedcase/0123456789abcdef0123456789abcdef?${API}`)).status,
      404,
    );
    assert.equal((await call('GET', `/secrets/mixedcase/nothex?${API}`)).status, 400);
  });

  test('soft delete, conflict on reuse, deleted bundle, recover, purge 204', async () => {
    await call('PUT', `/secrets/gone?${API}`, { json: { value: 'bye' } });
    const d = await call('DELETE', `/secrets/gone?${API}`);
    assert.equal(d.status, 200);
    assert.equal(d.json.recoveryId, `${base}/deletedsecrets/gone`);
    assert.equal(typeof d.json.deletedDate, 'number');
    assert.equal(d.json.scheduledPurgeDate - d.json.deletedDate, 90 * 86_400);
    assert.equal(d.json.value, undefined);
    const again = await call('PUT', `/secrets/gone?${API}`, { json: { value: 'new' } });
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'Conflict');
    assert.match(again.json.error.message, /deleted but recoverable/);
    assert.equal((await call('GET', `/secrets/gone?${API}`)).json.error.code, 'SecretNotFound');
    assert.equal((await call('GET', `/deletedsecrets/gone?${API}`)).status, 200);
    assert.equal((await call('POST', `/deletedsecrets/gone/recover?${API}`)).status, 200);
    // As Azure: a missing deleted secret is SecretNotFound, for get, recover and purge.
    for (const [m, p] of [
      ['GET', '/deletedsecrets/gone'],
      ['POST', '/deletedsecrets/gone/recover'],
      ['DELETE', '/deletedsecrets/gone'],
    ] as const) {
      const r = await call(m, `${p}?${API}`);
      assert.equal(r.status, 404, `${m} ${p}`);
      assert.deepEqual(r.json.error, { code: 'SecretNotFound', message: 'Deleted Secret not found: gone' });
    }
    assert.equal((await call('DELETE', `/deletedsecrets/gone?${API}`)).status, 404);
    await call('DELETE', `/secrets/gone?${API}`);
    const purge = await call('DELETE', `/deletedsecrets/gone?${API}`);
    assert.equal(purge.status, 204);
    assert.equal(purge.text, '');
    assert.equal((await call('PUT', `/secrets/gone?${API}`, { json: { value: 'reborn' } })).status, 200);
  });

  test('a backup restores only into the same installation and tenant, and refuses an existing name', async () => {
    await call('PUT', `/secrets/bk?${API}`, { json: { value: 'backup-me' } });
    const b = await call('POST', `/secrets/bk/backup?${API}`);
    assert.equal(b.status, 200);
    assert.match(b.json.value, /^[A-Za-z0-9_-]+$/);
    const conflict = await call('POST', `/secrets/restore?${API}`, { json: { value: b.json.value } });
    assert.equal(conflict.status, 409);
    const raw = Buffer.from(b.json.value, 'base64url');
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
    const tampered = await call('POST', `/secrets/restore?${API}`, {
      json: { value: raw.toString('base64url') },
    });
    assert.equal(tampered.status, 400);
    assert.equal(tampered.json.error.code, 'BadParameter');
    const garbage = await call('POST', `/secrets/restore?${API}`, { json: { value: 'AAAA' } });
    assert.equal(garbage.status, 400);
    // Azure's words for any blob that does not open (the SDKs' tests compare them).
    const zeros = await call('POST', `/secrets/restore?${API}`, {
      json: { value: Buffer.alloc(4728).toString('base64url') },
    });
    for (const r of [tampered, garbage, zeros])
      assert.deepEqual(r.json.error, {
        code: 'BadParameter',
        message: 'Backup blob contains invalid or corrupt version.',
      });
  });

  test('secret values are encrypted at rest: the database files never hold them', async () => {
    const marker = `plaintext-marker-${Date.now()}-Zq9`;
    await call('PUT', `/secrets/at-rest?${API}`, { json: { value: marker } });
    await call('PUT', `/secrets/at-rest?${API}`, { json: { value: `${marker}-v2` } });
    await s.services.audit.drain();
    const db = join(s.dataDir, 'latchkey.db');
    for (const file of [db, `${db}-wal`]) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch {
        continue;
      }
      assert.equal(bytes.indexOf(marker), -1, `${file} contains a secret value`);
      assert.equal(bytes.indexOf(Buffer.from(marker, 'utf16le')), -1);
    }
    const rows = await s.services.db.all<{ value_sealed: Buffer }>(
      'SELECT value_sealed FROM secret_versions',
    );
    assert.ok(rows.length > 0, 'rows.length > 0');
    for (const r of rows) assert.equal(Buffer.from(r.value_sealed).indexOf(marker), -1);
    // A ciphertext moved to another row does not open.
    const two = await s.services.db.all<{ version: string; value_sealed: Buffer }>(
      "SELECT version, value_sealed FROM secret_versions WHERE name_lower = 'at-rest' ORDER BY created_at",
    );
    await s.services.db.run(
      "UPDATE secret_versions SET value_sealed = $1 WHERE name_lower = 'at-rest' AND version = $2",
      [two[0]!.value_sealed, two[1]!.version],
    );
    const moved = await call('GET', `/secrets/at-rest?${API}`);
    assert.equal(moved.status, 500);
    assert.ok(!moved.text.includes(marker), '!moved.text.includes(marker)');
    // and the audit log names the object, never the value
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, vault: 'rawvault', limit: 1000 });
    assert.ok(
      events.some((e) => e.operation === 'SecretSet' && e.target?.includes('/secrets/at-rest/')),
      "events.some((e) => e.operation === 'SecretSet' && e.target?.includes('/secrets/at-rest/'))",
    );
    assert.ok(
      events.every((e) => !JSON.stringify(e).includes(marker)),
      'events.every((e) => !JSON.stringify(e).includes(marker))',
    );
  });
});

describe('scheduled purge (fake clock)', () => {
  let s: TestServer;
  const clock = fakeClock(Date.now());
  before(async () => {
    s = await startTestServer({ clock });
  });
  after(async () => {
    await s?.stop();
  });

  test('deleted secrets and vaults are purged when their retention ends', async () => {
    const v = await putVault(s, 'purgevault', { properties: { softDeleteRetentionInDays: 7 } });
    const sp = await vaultPrincipal(s, 'purger');
    await grant(s, sp.id, 'Key Vault Secrets Officer', v.id);
    const base = s.vaultUrl('purgevault');
    const auth = async () => ({ authorization: `Bearer ${await vaultToken(s, sp)}` });
    await s.request('PUT', `${base}/secrets/keep?${API}`, { json: { value: 'k' }, headers: await auth() });
    await s.request('PUT', `${base}/secrets/doomed?${API}`, { json: { value: 'd' }, headers: await auth() });
    const del = await s.request('DELETE', `${base}/secrets/doomed?${API}`, { headers: await auth() });
    assert.equal(del.json.scheduledPurgeDate - del.json.deletedDate, 7 * 86_400);
    const count = async (name: string) =>
      (await s.services.db.get<{ n: number }>(
        'SELECT COUNT(*) AS n FROM secret_versions WHERE name_lower = $1',
        [name],
      ))!.n;

    clock.advance(6 * 86_400_000);
    assert.ok(await s.services.jobs.runNow('vault-purge'), "await s.services.jobs.runNow('vault-purge')");
    assert.equal(Number(await count('doomed')), 1, 'not yet due');
    clock.advance(86_400_000 + 1000);
    assert.ok(await s.services.jobs.runNow('vault-purge'), "await s.services.jobs.runNow('vault-purge')");
    assert.equal(Number(await count('doomed')), 0, 'purged when due');
    assert.equal(Number(await count('keep')), 1, 'others untouched');
    const gd = await s.request('GET', `${base}/deletedsecrets/doomed?${API}`, { headers: await auth() });
    assert.equal(gd.status, 404);

    // A soft-deleted vault is purged with its secrets and the role assignments below it.
    const mgmt = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'password',
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        username: s.admin.userName,
        password: s.admin.password,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    const d = await s.request('DELETE', `${v.id}?api-version=2023-07-01`, {
      headers: { authorization: `Bearer ${mgmt.json.access_token}` },
    });
    assert.equal(d.status, 200);
    const assignments = async () =>
      (await s.services.access.list(s.info.tenantId, { principalId: sp.id })).length;
    assert.equal(await assignments(), 1, 'kept while the vault is recoverable');
    clock.advance(7 * 86_400_000 + 1000);
    await s.services.jobs.runNow('vault-purge');
    assert.equal(await s.services.db.get("SELECT id FROM vaults WHERE name_lower = 'purgevault'"), undefined);
    assert.equal(Number(await count('keep')), 0);
    assert.equal(await assignments(), 0);
    const events = await s.services.audit.list({
      tenantId: s.info.tenantId,
      vault: 'purgevault',
      limit: 100,
    });
    assert.ok(
      events.some((e) => e.operation === 'SecretPurge' && e.callerKind === 'system'),
      "events.some((e) => e.operation === 'SecretPurge' && e.callerKind === 'system')",
    );
    assert.ok(
      events.some((e) => e.operation === 'VaultPurge' && e.callerKind === 'system'),
      "events.some((e) => e.operation === 'VaultPurge' && e.callerKind === 'system')",
    );
  });

  test('the job runner runs jobs on their interval and stops on close', async (t) => {
    const db = await openDatabase('sqlite::memory:');
    // Mocked timers: the intervals pass when the test says (60 ms of real time on a loaded machine
    // saw one run of a 5 ms job).
    t.mock.timers.enable({ apis: ['setTimeout'] });
    // A round's run settles, then the next round is scheduled (setImmediate is not mocked).
    const settle = () => new Promise((r) => setImmediate(r));
    try {
      const jobs = createJobs({ db, clock });
      let runs = 0;
      jobs.add({ name: 'tick', intervalMs: 5, run: async () => void runs++ });
      assert.throws(() => jobs.add({ name: 'tick', intervalMs: 5, run: async () => {} }));
      const running = jobs.start({ onError: () => {} });
      t.mock.timers.tick(4);
      await settle();
      assert.equal(runs, 0, 'not before its interval');
      t.mock.timers.tick(1);
      await settle();
      assert.equal(runs, 1, 'once per interval');
      t.mock.timers.tick(5);
      await settle();
      assert.equal(runs, 2, 'again after the next interval');
      await running.close();
      t.mock.timers.tick(100);
      await settle();
      assert.equal(runs, 2, 'no run after close');
    } finally {
      await db.close();
    }
  });
});
