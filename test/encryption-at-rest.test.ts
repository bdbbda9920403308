import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateRootKeyText, parseRootKey } from '../src/crypto/root-key.js';
import { LatchkeyError } from '../src/errors/index.js';
import { openSqlite } from '../src/storage/sqlite.js';
import { createServicePrincipal, secretTokenRequest } from './helpers/authority.js';
import { selfSignedRsaCert } from './helpers/certs.js';
import { startTestApp, type TestServer } from './helpers/server.js';

/** Secret material that must never appear in the database files, with a label for the failure message. */
type Needle = { label: string; bytes: Buffer };

const scan = (files: Buffer[], needles: Needle[]): string[] => {
  const found: string[] = [];
  for (const n of needles) {
    if (n.bytes.length < 8) throw new Error(`needle ${n.label} too short to be meaningful`);
    if (files.some((f) => f.includes(n.bytes))) found.push(n.label);
  }
  return found;
};

describe('encryption at rest', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-at-rest-'));
  const dbPath = join(dataDir, 'latchkey.db');
  let s: TestServer | undefined;
  const needles: Needle[] = [];
  let secretApp: { appId: string; secret: string };
  let rootKeyText: string;

  const readDbFiles = (): Buffer[] =>
    [dbPath, `${dbPath}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p));

  before(async () => {
    s = await startTestApp({ dataDir });
    rootKeyText = readFileSync(join(dataDir, 'root.key'), 'utf8');
    const add = (label: string, v: string | Buffer) =>
      needles.push({ label, bytes: typeof v === 'string' ? Buffer.from(v, 'utf8') : v });

    // service principals with secrets (several per principal) and with a certificate
    for (let i = 0; i < 3; i++) {
      const p = await createServicePrincipal(s, { displayName: `at-rest-${i}` });
      add(`client secret ${i}`, p.secret!);
      const extra = await s.services.credentials.addSecret(s.info.tenantId, p.id, { days: 30 });
      add(`extra client secret ${i}`, extra.secretText);
      if (i === 0) secretApp = { appId: p.appId, secret: p.secret! };
    }
    const cert = await selfSignedRsaCert('at-rest-cert');
    await createServicePrincipal(s, {
      displayName: 'at-rest-cert',
      credential: { type: 'AsymmetricX509Cert', certificate: cert.certPem },
    });
    // users with passwords (and the bootstrap admin)
    for (let i = 0; i < 2; i++) {
      const password = `P@ssw0rd-at-rest-${i}-${Date.now()}`;
      await s.services.principals.createUser(s.info.tenantId, {
        userName: `user${i}@latchkey.localhost`,
        displayName: `User ${i}`,
        password,
      });
      add(`user password ${i}`, password);
    }
    add('admin password', s.admin.password);
    // a refresh token
    const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'password',
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        username: s.admin.userName,
        password: s.admin.password,
        scope: `${s.info.managementResource}/.default offline_access`,
      },
    });
    assert.equal(r.status, 200, r.text);
    add('refresh token', r.json.refresh_token);
    // the signing keys (current, and the one before a rotation)
    const addSigningKey = async (label: string) => {
      const key = await s!.services.signingKeys.active();
      const der = key.privateKey.export({ format: 'der', type: 'pkcs8' });
      const jwk = key.privateKey.export({ format: 'jwk' });
      add(`${label} PKCS8 DER`, der);
      add(`${label} JWK d (base64url)`, jwk.d!);
      add(`${label} d (raw bytes)`, Buffer.from(jwk.d!, 'base64url'));
    };
    await addSigningKey('signing key 1');
    await s.services.signingKeys.rotate();
    await addSigningKey('signing key 2');
    // the root key itself and what is derived from it
    const root = Buffer.from(rootKeyText.trim(), 'base64');
    add('root key (raw)', root);
    add('root key (base64)', rootKeyText.trim());
    const rk = parseRootKey(rootKeyText);
    for (const purpose of ['kek', 'secret-hash', 'audit-mac'])
      add(`derived ${purpose} key`, rk.derive(purpose));
  });

  after(async () => {
    await s?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the needles are real: each one is present in a plain dump of what we generated', () => {
    // guards against a scan that could never find anything (e.g. wrong encoding)
    const probe = Buffer.concat(needles.map((n) => n.bytes));
    assert.deepEqual(scan([probe], needles).length, needles.length);
    assert.ok(needles.length >= 20, 'needles.length >= 20');
  });

  test('while running: no secret, password, signing key or root key in the database or its WAL', async () => {
    await s!.services.audit.drain();
    const files = readDbFiles();
    assert.ok(files.length >= 1 && files[0]!.length > 0, 'files.length >= 1 && files[0]!.length > 0');
    assert.deepEqual(scan(files, needles), []);
  });

  test('sealed values are bound to their owner: another AAD, a tampered byte or a truncation fails', () => {
    const sealer = s!.services.sealer;
    const plaintext = 'the-plaintext-value-0123456789';
    const aad = `secret|${s!.info.tenantId}|shop|db-password|0123456789abcdef0123456789abcdef`;
    const blob = sealer.seal(plaintext, aad);
    assert.ok(!blob.includes(Buffer.from(plaintext)), '!blob.includes(Buffer.from(plaintext))');
    assert.equal(sealer.open(blob, aad).toString(), plaintext);
    const mustFail = (b: Buffer, a: string, why: string) =>
      assert.throws(
        () => sealer.open(b, a),
        (e: unknown) => {
          assert.ok(e instanceof LatchkeyError, why);
          assert.equal(e.code, 'InternalError');
          assert.ok(!e.message.includes(plaintext), 'no plaintext in the message');
          assert.ok(!e.message.includes('db-password'), 'no AAD in the message');
          return true;
        },
        why,
      );
    // moved to another row: other name, other version, other vault, other tenant, other kind
    mustFail(blob, aad.replace('db-password', 'api-key'), 'other name');
    mustFail(blob, aad.replace(/[0-9a-f]{32}$/, 'f'.repeat(32)), 'other version');
    mustFail(blob, aad.replace('|shop|', '|other|'), 'other vault');
    mustFail(blob, aad.replace(s!.info.tenantId, '00000000-0000-0000-0000-000000000000'), 'other tenant');
    mustFail(blob, aad.replace(/^secret/, 'key'), 'other kind');
    for (const i of [0, 1, 20, 40, blob.length - 1]) {
      const t = Buffer.from(blob);
      t[i] = t[i]! ^ 0x01;
      mustFail(t, aad, `tampered byte ${i}`);
    }
    mustFail(blob.subarray(0, 40), aad, 'truncated');
    mustFail(Buffer.alloc(0), aad, 'empty');
  });

  test('a sealed signing key copied to another key’s row does not open', async () => {
    const rows = await s!.services.db.all<{ kid: string; private_sealed: Buffer }>(
      'SELECT kid, private_sealed FROM signing_keys ORDER BY created_at',
    );
    assert.ok(rows.length >= 2, 'rows.length >= 2');
    const [a, b] = rows as [(typeof rows)[0], (typeof rows)[0]];
    const der = s!.services.sealer.open(a.private_sealed, `signing-key|${a.kid}`);
    assert.equal(der[0], 0x30, 'a DER SEQUENCE');
    assert.ok(
      !a.private_sealed.includes(der.subarray(der.length - 32)),
      '!a.private_sealed.includes(der.subarray(der.length - 32))',
    );
    assert.throws(() => s!.services.sealer.open(a.private_sealed, `signing-key|${b.kid}`), LatchkeyError);
    assert.throws(() => s!.services.sealer.open(b.private_sealed, `signing-key|${a.kid}`), LatchkeyError);
  });

  test('after stop: still nothing in plaintext; the root key file is private', async () => {
    await s!.stop();
    s = undefined;
    const files = readDbFiles();
    assert.deepEqual(scan(files, needles), []);
    assert.equal(statSync(join(dataDir, 'root.key')).mode & 0o777, 0o600);
  });

  test('a wrong root key: the server refuses to start, with a clear message', async () => {
    writeFileSync(join(dataDir, 'root.key'), `${generateRootKeyText()}\n`);
    await assert.rejects(startTestApp({ dataDir }), /root key does not match this database/);
    // even without the check value, the data keys do not unwrap under the wrong key
    const db = openSqlite(dbPath);
    await db.run("DELETE FROM meta WHERE key = 'root_key_check'");
    await db.close();
    await assert.rejects(startTestApp({ dataDir }), /root key does not unwrap this database/);
  });

  test('the right root key opens everything again: old secrets still authenticate', async () => {
    writeFileSync(join(dataDir, 'root.key'), rootKeyText, { mode: 0o600 });
    s = await startTestApp({ dataDir });
    const r = await secretTokenRequest(s, secretApp);
    assert.equal(r.status, 200, r.text);
    const check = await s.services.db.get<{ value: string }>(
      "SELECT value FROM meta WHERE key = 'root_key_check'",
    );
    assert.ok(check, 'the check value is written back');
  });
});
