import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findRole } from '../src/access/roles.js';
import { fakeClock } from '../src/lib/clock.js';
import type { Services } from '../src/server/services.js';
import type { KeyCallContext } from '../src/vault/key-guard.js';
import { publicKeyOf } from '../src/vault/key-material.js';
import { parseDuration } from '../src/vault/key-rotation.js';
import { type ServiceVault, startServiceVault, testMeta } from './helpers/service-vault.js';

const DAY = 86_400_000;
const meta = testMeta;

/** Service level, fake clock: rotation policies carried out by the job, the purge job, and key material at rest. */
describe('keys: rotation policies on schedule, purge, encryption at rest (fake clock)', () => {
  let sv: ServiceVault;
  let dir: string;
  let services: Services;
  let ctx: KeyCallContext;
  const clock = fakeClock(Date.UTC(2026, 0, 10, 12));

  before(async () => {
    sv = await startServiceVault({
      clock,
      vaultName: 'rotvault',
      role: 'Key Vault Crypto Officer',
      dirPrefix: 'latchkey-keys-',
    });
    ({ dir, services, ctx } = sv);
  });
  after(async () => {
    await sv?.close();
  });

  const events = (operation: string) => sv.events(operation);

  test('ISO 8601 durations', () => {
    const t0 = Date.UTC(2026, 0, 31);
    assert.equal(parseDuration('P30D')!(t0), t0 + 30 * DAY);
    assert.equal(parseDuration('P1M')!(Date.UTC(2026, 0, 15)), Date.UTC(2026, 1, 15));
    assert.equal(parseDuration('P1Y')!(t0), Date.UTC(2027, 0, 31));
    assert.equal(parseDuration('P2W')!(t0), t0 + 14 * DAY);
    assert.equal(parseDuration('PT36H')!(t0), t0 + 36 * 3_600_000);
    assert.equal(parseDuration('P1DT1M')!(t0), t0 + DAY + 60_000);
    for (const bad of ['P', 'PT', '30D', 'P1.5D', 'P-1D', 'p30d', 'P1DT'])
      assert.equal(parseDuration(bad), undefined, bad);
  });

  test('timeAfterCreate: the job rotates the key when its current version is old enough, once', async () => {
    const k = await services.keys.create(ctx, 'auto', { kty: 'EC', curve: 'P-256', tags: { team: 'a' } });
    await services.keyPolicies.set(ctx, 'auto', {
      lifetimeActions: [{ trigger: { timeAfterCreate: 'P30D' }, action: { type: 'Rotate' } }],
      expiryTime: 'P60D',
    });
    assert.equal(await services.keyPolicies.runDue(clock.now()), 0);
    clock.advance(29 * DAY);
    assert.ok(await services.jobs.runNow('key-rotation'), "await services.jobs.runNow('key-rotation')");
    assert.equal((await services.keys.get(ctx, 'auto')).version, k.version, 'not due yet');
    clock.advance(2 * DAY);
    assert.ok(await services.jobs.runNow('key-rotation'), "await services.jobs.runNow('key-rotation')");
    const rotated = await services.keys.get(ctx, 'auto');
    assert.notEqual(rotated.version, k.version);
    assert.deepEqual(rotated.tags, { team: 'a' });
    assert.equal(rotated.created, clock.now());
    assert.equal(rotated.exp, clock.now() + 60 * DAY, 'expiryTime gives the new version its expiry');
    assert.equal(await services.keyPolicies.runDue(clock.now()), 0, 'the new version is not due');
    const rotations = await events('KeyRotate');
    assert.equal(rotations.length, 1);
    assert.equal(rotations[0]!.caller_kind, 'system');
    assert.ok(
      rotations[0]!.target.endsWith(`/keys/auto/${rotated.version}`),
      "rotations[0]!.target.endsWith('/keys/auto/{rotated.version}')",
    );
    // The old version still works (decrypt/verify of old data); the key's history holds both.
    const versions = await services.keys.listVersions(ctx, 'auto', {});
    assert.equal(versions.items.length, 2);
    const d = createHash('sha256').update('old data').digest();
    const sig = await services.keyOperations.sign(ctx, 'auto', k.version, 'ES256', d);
    assert.equal(
      verify(
        'sha256',
        Buffer.from('old data'),
        { key: publicKeyOf(k.jwk), dsaEncoding: 'ieee-p1363' },
        sig.value,
      ),
      true,
    );
    clock.advance(30 * DAY);
    assert.equal(await services.keyPolicies.runDue(clock.now()), 1, 'and 30 days later again');
  });

  test('a key that cannot rotate does not stop the job for the keys after it (any vault, any tenant)', async () => {
    const policy = {
      lifetimeActions: [{ trigger: { timeAfterCreate: 'P7D' }, action: { type: 'Rotate' as const } }],
    };
    const poison = await services.keys.create(ctx, 'aa-poison', { kty: 'RSA', size: 2048 });
    const victim = await services.keys.create(ctx, 'zz-victim', { kty: 'EC', curve: 'P-256' });
    for (const n of ['aa-poison', 'zz-victim']) await services.keyPolicies.set(ctx, n, policy);
    // A public exponent above 2^32 − 1, as a key imported before imports were bounded holds
    // (Node cannot generate a key like it): it threw a RangeError, and the job's run stopped there.
    const e = Buffer.from('0100000001', 'hex').toString('base64url');
    await services.db.run('UPDATE key_versions SET public_jwk = $1 WHERE name_lower = $2 AND version = $3', [
      JSON.stringify({ ...poison.jwk, e }),
      'aa-poison',
      poison.version,
    ]);
    clock.advance(8 * DAY);
    await assert.rejects(services.keyPolicies.runDue(clock.now()), (err: AggregateError) => {
      assert.match(err.message, /^1 key\(s\) could not be rotated/);
      assert.match(String((err.errors[0] as Error).message), /aa-poison/);
      return true;
    });
    assert.notEqual(
      (await services.keys.get(ctx, 'zz-victim')).version,
      victim.version,
      'the victim rotated',
    );
    // Rotating it by hand is a 400 that says why, not a 500.
    await assert.rejects(
      services.keys.rotate(ctx, 'aa-poison'),
      (err: { status?: number; message: string }) => {
        assert.equal(err.status, 400);
        assert.match(err.message, /public exponent is above 2\^32/);
        return true;
      },
    );
    for (const n of ['aa-poison', 'zz-victim']) await services.keys.delete(ctx, n);
    // Such a key is no longer imported (openssl makes one; Node cannot).
    const pem = execFileSync('openssl', [
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-pkeyopt',
      'rsa_keygen_pubexp:4294967297',
    ]);
    const jwk = createPrivateKey(pem).export({ format: 'jwk' });
    await assert.rejects(
      services.keys.import(ctx, 'big-exponent', { jwk: { ...jwk } }),
      (err: { status?: number; message: string }) => {
        assert.equal(err.status, 400);
        assert.match(err.message, /public exponents above 2\^32 − 1 are not supported/);
        return true;
      },
    );
  });

  test('timeBeforeExpiry: rotate ahead of the expiry; notify once per version', async () => {
    const k = await services.keys.create(ctx, 'expiring', {
      kty: 'RSA',
      size: 2048,
      exp: clock.now() + 40 * DAY,
    });
    await services.keyPolicies.set(ctx, 'expiring', {
      lifetimeActions: [
        { trigger: { timeBeforeExpiry: 'P10D' }, action: { type: 'Rotate' } },
        { trigger: { timeBeforeExpiry: 'P20D' }, action: { type: 'notify' } },
      ],
      expiryTime: 'P90D',
    });
    const before = (await events('KeyNearExpiry')).length;
    clock.advance(19 * DAY);
    await services.keyPolicies.runDue(clock.now());
    assert.equal((await events('KeyNearExpiry')).length, before);
    clock.advance(2 * DAY);
    await services.keyPolicies.runDue(clock.now());
    await services.keyPolicies.runDue(clock.now());
    const near = await events('KeyNearExpiry');
    assert.equal(near.length, before + 1, 'notified once');
    assert.ok(
      near.at(-1)!.target.endsWith(`/keys/expiring/${k.version}`),
      "near.at(-1)!.target.endsWith('/keys/expiring/{k.version}')",
    );
    assert.equal((await services.keys.get(ctx, 'expiring')).version, k.version);
    clock.advance(10 * DAY);
    assert.ok(
      (await services.keyPolicies.runDue(clock.now())) >= 1,
      '(await services.keyPolicies.runDue(clock.now())) >= 1',
    );
    const r = await services.keys.get(ctx, 'expiring');
    assert.notEqual(r.version, k.version);
    assert.equal(r.kty, 'RSA');
    assert.equal(r.exp, clock.now() + 90 * DAY);
  });

  test('default policy: keys with an expiry get a near-expiry notification 30 days ahead, no rotation', async () => {
    const k = await services.keys.create(ctx, 'plain', { kty: 'EC', exp: clock.now() + 35 * DAY });
    const before = (await events('KeyNearExpiry')).length;
    clock.advance(6 * DAY);
    await services.keyPolicies.runDue(clock.now());
    assert.equal((await events('KeyNearExpiry')).filter((e) => e.target.includes('/keys/plain/')).length, 1);
    assert.ok(
      (await events('KeyNearExpiry')).length > before,
      "(await events('KeyNearExpiry')).length > before",
    );
    assert.equal((await services.keys.get(ctx, 'plain')).version, k.version);
    const p = await services.keyPolicies.get(ctx, 'plain');
    assert.deepEqual(p.lifetimeActions, [
      { trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } },
    ]);
    assert.equal(p.created, null);
  });

  test('a deleted key is not rotated; the purge job removes it after retention', async () => {
    await services.keys.create(ctx, 'gone', { kty: 'EC' });
    await services.keyPolicies.set(ctx, 'gone', {
      lifetimeActions: [{ trigger: { timeAfterCreate: 'P7D' }, action: { type: 'Rotate' } }],
    });
    await services.keys.delete(ctx, 'gone');
    clock.advance(8 * DAY);
    await services.keyPolicies.runDue(clock.now());
    const deleted = await services.keys.getDeleted(ctx, 'gone');
    assert.equal(
      (await services.db.all('SELECT version FROM key_versions WHERE name_lower = $1', ['gone'])).length,
      1,
    );
    assert.ok(deleted.scheduledPurgeAt! <= clock.now(), 'deleted.scheduledPurgeAt! <= clock.now()');
    assert.ok(await services.jobs.runNow('key-purge'), "await services.jobs.runNow('key-purge')");
    await assert.rejects(services.keys.getDeleted(ctx, 'gone'), {
      code: 'KeyNotFound',
      message: 'Deleted Key not found: gone',
    });
    assert.equal(
      (await services.db.all('SELECT 1 FROM key_rotation_policies WHERE name_lower = $1', ['gone'])).length,
      0,
    );
    const purges = await events('KeyPurge');
    assert.equal(purges.at(-1)!.caller_kind, 'system');
  });

  test('purging a vault removes its keys, versions and policies', async () => {
    const { vault } = await services.vaults.createOrUpdate(
      ctx.caller,
      meta,
      { subscriptionId: ctx.vault.subscriptionId, resourceGroup: 'default', name: 'shortlived' },
      { location: 'local', softDeleteRetentionInDays: 7 } as never,
    );
    await services.access.create(ctx.caller.tenantId, {
      principalId: ctx.caller.oid,
      role: findRole('Key Vault Crypto Officer')!,
      scope: vault.armId,
    });
    const c2 = { ...ctx, vault, baseUrl: services.vaultBaseUrl(vault.nameLower) };
    await services.keys.create(c2, 'doomed', { kty: 'EC' });
    await services.keyPolicies.set(c2, 'doomed', {
      lifetimeActions: [{ trigger: { timeAfterCreate: 'P7D' }, action: { type: 'Rotate' } }],
    });
    const count = async (table: string) =>
      Number(
        (await services.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE vault_id = $1`, [
          vault.id,
        ]))!.n,
      );
    assert.equal(await count('key_versions'), 1);
    await services.vaults.delete(ctx.caller, meta, {
      subscriptionId: vault.subscriptionId,
      resourceGroup: 'default',
      name: 'shortlived',
    });
    clock.advance(8 * DAY);
    await services.keyPolicies.runDue(clock.now());
    assert.equal(await count('key_versions'), 1, "a deleted vault's keys are not rotated");
    await services.vaults.purgeDue(clock.now());
    for (const t of ['keys', 'key_versions', 'key_rotation_policies']) assert.equal(await count(t), 0, t);
  });

  test('private key material is sealed at rest: raw database bytes hold no private key (JWK d, PKCS#8 DER)', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const rj = rsa.export({ format: 'jwk' });
    const ej = ec.export({ format: 'jwk' });
    await services.keys.import(ctx, 'at-rest-rsa', { jwk: { ...rj } });
    await services.keys.import(ctx, 'at-rest-ec', { jwk: { ...ej, crv: 'P-384' } });
    const blob = await services.keyBackups.backup(ctx, 'at-rest-rsa');
    await services.audit.drain();
    const dbPath = join(dir, 'latchkey.db');
    const raw = Buffer.concat(
      [dbPath, `${dbPath}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)),
    );
    const needles: [string, Buffer][] = [
      ['RSA d', Buffer.from(rj.d!, 'base64url')],
      ['RSA d (base64url)', Buffer.from(rj.d!)],
      ['RSA p', Buffer.from(rj.p!, 'base64url')],
      ['RSA p (base64url)', Buffer.from(rj.p!)],
      ['RSA PKCS#8 DER', rsa.export({ format: 'der', type: 'pkcs8' }).subarray(40, 140)],
      ['EC d', Buffer.from(ej.d!, 'base64url')],
      ['EC d (base64url)', Buffer.from(ej.d!)],
    ];
    for (const [what, needle] of needles) {
      assert.equal(raw.includes(needle), false, `${what} in the database file`);
      assert.equal(blob.includes(needle), false, `${what} in the backup blob`);
    }
    // The public key is there in clear (it is public), so the scan does look at the right bytes.
    assert.ok(raw.includes(Buffer.from(rj.n!)), 'raw.includes(Buffer.from(rj.n!))');
    // A sealed version copied to another key does not open (AAD binds tenant, vault, name, version).
    const rows = await services.db.all<{ name_lower: string; version: string; private_sealed: Buffer }>(
      "SELECT name_lower, version, private_sealed FROM key_versions WHERE name_lower IN ('at-rest-rsa', 'at-rest-ec')",
    );
    const a = rows.find((r) => r.name_lower === 'at-rest-rsa')!;
    const b = rows.find((r) => r.name_lower === 'at-rest-ec')!;
    await services.db.run(
      'UPDATE key_versions SET private_sealed = $1 WHERE name_lower = $2 AND version = $3',
      [a.private_sealed, 'at-rest-ec', b.version],
    );
    const d = createHash('sha384').update('x').digest();
    await assert.rejects(services.keyOperations.sign(ctx, 'at-rest-ec', undefined, 'ES384', d), {
      code: 'InternalError',
    });
  });
});
