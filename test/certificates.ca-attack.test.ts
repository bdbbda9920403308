import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { findRole } from '../src/access/roles.js';
import type { Sealer } from '../src/crypto/envelope.js';
import { fakeClock } from '../src/lib/clock.js';
import { migrate } from '../src/storage/migrate.js';
import { ALL_MIGRATIONS } from '../src/storage/migrations/index.js';
import type { Database } from '../src/storage/port.js';
import { certificateAuthorityStore } from '../src/storage/vault/certificate-authority-store.js';
import { createCertificateAuthority } from '../src/vault/certificate-ca.js';
import { type ServiceVault, startServiceVault, testMeta } from './helpers/service-vault.js';
import { FRESH_STORES } from './helpers/stores.js';

/**
 * Security review of the tenant CA (docs/certificates.md, revocation): what a revocation must
 * survive. Each test failed before its fix (notes in the test).
 */
const crlText = (der: Buffer) =>
  execFileSync('openssl', ['crl', '-inform', 'DER', '-noout', '-text'], {
    input: der,
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString('utf8');
const serialOf = (der: Buffer) =>
  execFileSync('openssl', ['x509', '-inform', 'DER', '-noout', '-serial'], {
    input: der,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
    .toString('utf8')
    .trim()
    .replace(/^serial=/, '');
const lists = (crl: Buffer, serial: string) => new RegExp(`Serial Number: ${serial}`, 'i').test(crlText(crl));

describe('the tenant CA under attack: revocations are never lost, nor kept off by a copy', () => {
  const clock = fakeClock(Date.UTC(2026, 5, 1, 12));
  let sv: ServiceVault;
  before(async () => {
    sv = await startServiceVault({
      clock,
      vaultName: 'caattack',
      role: 'Key Vault Administrator',
      dirPrefix: 'latchkey-caattack-',
    });
  });
  after(async () => {
    await sv?.close();
  });
  const tenantId = () => sv.ctx.vault.tenantId;
  const issue = async (name: string) => {
    await sv.services.certificates.create(sv.ctx, name, {
      policy: { issuer: { name: 'Latchkey' }, x509_props: { subject: `CN=${name}`, validity_months: 12 } },
    });
    const c = await sv.services.certificates.get(sv.ctx, name);
    return { version: c.version, serial: serialOf(c.cer) };
  };
  /** A second authority over the same rows, whose database is `db` and whose sealer is `sealer`. */
  const authorityOver = (db: Database, sealer: Sealer = sv.services.sealer) =>
    createCertificateAuthority({ db, clock, sealer });

  test('a revocation made while a CRL is being made is not lost: that CRL is not stored as fresh', async () => {
    const a = await issue('race-a');
    const b = await issue('race-b');
    await sv.services.certificates.revoke(sv.ctx, 'race-a', a.version, 'superseded');
    // The CRL is stale now (a revocation). A request makes a new one; while it does, right after
    // it has read the revocations, race-b is revoked (keyCompromise) and committed.
    let interleaved = false;
    const real = sv.services.db;
    const db = new Proxy(real, {
      get(target, prop) {
        if (prop === 'all')
          return async (sql: string, params: readonly unknown[]) => {
            const rows = await target.all(sql, params as never);
            if (!interleaved && sql.includes('FROM certificate_ca_revocations')) {
              interleaved = true;
              await sv.services.certificates.revoke(sv.ctx, 'race-b', b.version, 'keyCompromise');
            }
            return rows;
          };
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const served = await authorityOver(db).crl(tenantId());
    assert.ok(interleaved, 'the revocation came in while the CRL was made');
    assert.ok(served && lists(served, b.serial), 'the CRL answered lists the revocation that came in');
    // Before the fix the CRL made without it was stored as fresh and served for an hour (and
    // cached by clients until its nextUpdate, a day later).
    const next = await sv.services.certificates.ca.crl(tenantId());
    assert.ok(next && lists(next, b.serial), `the next CRL lists race-b (${b.serial}):\n${crlText(next!)}`);
  });

  test('keyCompromise replaces a milder reason given first; a milder one never replaces it', async () => {
    const c = await issue('upgrade');
    await sv.services.certificates.revoke(sv.ctx, 'upgrade', c.version, 'superseded');
    await sv.services.certificates.revoke(sv.ctx, 'upgrade', c.version, 'keyCompromise');
    /** The CRL's entry of this certificate (its lines up to the next entry). */
    const entry = (crl: Buffer) => {
      const t = crlText(crl);
      const at = t.search(new RegExp(`Serial Number: ${c.serial}`, 'i'));
      assert.ok(at >= 0, `listed:\n${t}`);
      const rest = t.slice(at + 1);
      return rest.slice(0, rest.search(/Serial Number:|Signature Algorithm/));
    };
    const crl = (await sv.services.certificates.ca.crl(tenantId()))!;
    // Before the fix: still Superseded (the first reason was kept whatever came after).
    assert.match(entry(crl), /Key Compromise/);
    await sv.services.certificates.revoke(sv.ctx, 'upgrade', c.version, 'unspecified');
    const again = (await sv.services.certificates.ca.crl(tenantId()))!;
    assert.match(entry(again), /Key Compromise/);
  });

  test('many requests for a stale CRL at once sign one CRL, not one each', async () => {
    const c = await issue('herd');
    await sv.services.certificates.revoke(sv.ctx, 'herd', c.version, 'superseded');
    let opened = 0;
    const sealer: Sealer = {
      seal: (p, aad) => sv.services.sealer.seal(p, aad),
      open: (blob, aad) => {
        opened++;
        return sv.services.sealer.open(blob, aad);
      },
    };
    const ca = authorityOver(sv.services.db, sealer);
    const all = await Promise.all(Array.from({ length: 10 }, () => ca.crl(tenantId())));
    assert.equal(opened, 1, 'the CA key was opened (to sign) once for ten concurrent requests');
    assert.ok(
      all.every((d) => d?.equals(all[0]!)),
      'all ten got the same CRL',
    );
    assert.ok(lists(all[0]!, c.serial), 'it lists the revocation');
  });

  /** A second vault of the caller's (Key Vault Administrator there) and its call context. */
  const otherVault = async (name: string) => {
    const v = sv.ctx.vault;
    const { vault: other } = await sv.services.vaults.createOrUpdate(
      sv.ctx.caller,
      testMeta,
      { subscriptionId: v.subscriptionId, resourceGroup: 'default', name },
      { location: 'local', softDeleteRetentionInDays: 7 } as never,
    );
    const role = findRole('Key Vault Administrator')!;
    await sv.services.access.create(tenantId(), { principalId: sv.ctx.caller.oid, role, scope: other.armId });
    return { ...sv.ctx, vault: other, baseUrl: sv.services.vaultBaseUrl(other.nameLower) };
  };
  const purge = async (ctx: typeof sv.ctx, name: string) => {
    await sv.services.certificates.delete(ctx, name);
    await sv.services.certificates.purge(ctx, name);
  };
  const revoked = async (serial: string) =>
    lists((await sv.services.certificates.ca.crl(tenantId()))!, serial);

  test("a copy's purge revokes nothing; the original's purge revokes it while copies are alive", async () => {
    // F3: the same certificate imported with its key into another vault, or restored there from
    // a backup, is a copy; only the version the CA issued it into (its recorded issuance) revokes
    // at its purge. So a staging copy's purge leaves production valid, and a copy is still no way
    // to keep a certificate valid past its owner's purge.
    const orig = await issue('owned');
    const pfx = (await sv.services.secrets.get(sv.ctx, 'owned')).value!;
    const backup = await sv.services.certificates.backup(sv.ctx, 'owned');
    const ctx2 = await otherVault('caholder');
    await sv.services.certificates.import(ctx2, 'kept-copy', { value: pfx });
    await sv.services.certificates.import(ctx2, 'staging-copy', { value: pfx });
    await sv.services.certificates.restore(ctx2, backup);
    await sv.services.certificates.import(sv.ctx, 'same-vault-copy', { value: pfx });
    // Copies purged (imported elsewhere, restored elsewhere, imported in the same vault): not revoked.
    await purge(ctx2, 'staging-copy');
    await purge(ctx2, 'owned');
    await purge(sv.ctx, 'same-vault-copy');
    assert.ok(!(await revoked(orig.serial)), "a copy's purge revoked the original");
    // The owner purges while a copy is alive: revoked all the same.
    await purge(sv.ctx, 'owned');
    assert.ok(await revoked(orig.serial), "the original's purge did not revoke it though a copy is held");
    // The copy's holder can revoke too (it holds the key, as ACME's revocation by key).
    const copy = await sv.services.certificates.get(ctx2, 'kept-copy');
    const again = await sv.services.certificates.revoke(ctx2, 'kept-copy', copy.version, 'keyCompromise');
    assert.equal(again.serialNumber, orig.serial.toLowerCase());
  });

  test('a new version records its own issuance; a vault purge revokes only what was issued into it', async () => {
    const first = await issue('renewed');
    const second = await issue('renewed'); // a new version, signed again
    assert.notEqual(first.serial, second.serial);
    const pfx = (await sv.services.secrets.get(sv.ctx, 'renewed')).value!; // the new version's
    const ctx3 = await otherVault('cacopies');
    await sv.services.certificates.import(ctx3, 'renewed-copy', { value: pfx });
    await sv.services.certificates.create(ctx3, 'native', {
      policy: { issuer: { name: 'Latchkey' }, x509_props: { subject: 'CN=native', validity_months: 12 } },
    });
    const native = serialOf((await sv.services.certificates.get(ctx3, 'native')).cer);
    await sv.services.vaults.delete(sv.ctx.caller, testMeta, {
      subscriptionId: ctx3.vault.subscriptionId,
      resourceGroup: 'default',
      name: 'cacopies',
    });
    await sv.services.vaults.purgeDeleted(
      sv.ctx.caller,
      testMeta,
      ctx3.vault.subscriptionId,
      'local',
      'cacopies',
    );
    assert.ok(await revoked(native), "the vault's purge revoked what was issued into it");
    assert.ok(!(await revoked(second.serial)), "the vault's purge revoked a copy held there");
    // The owner's purge revokes both versions, each its own issuance.
    await purge(sv.ctx, 'renewed');
    assert.ok((await revoked(first.serial)) && (await revoked(second.serial)), 'both versions revoked');
  });

  test('a certificate issued before migration 0021 (no issuance record): any purge revokes, as before', async () => {
    const orig = await issue('legacy');
    const pfx = (await sv.services.secrets.get(sv.ctx, 'legacy')).value!;
    await sv.services.db.run('DELETE FROM certificate_ca_issuances WHERE serial = $1', [
      orig.serial.toLowerCase(),
    ]);
    const ctx4 = await otherVault('calegacy');
    await sv.services.certificates.import(ctx4, 'legacy-copy', { value: pfx });
    await purge(ctx4, 'legacy-copy');
    assert.ok(await revoked(orig.serial), 'a copy of an unrecorded certificate revokes it at its purge');
  });
  test('an AutoRenew version records its own issuance: its copy purged revokes nothing, its owner purged does', async () => {
    // Last in the suite: it moves the clock.
    await sv.services.certificates.create(sv.ctx, 'auto', {
      policy: {
        issuer: { name: 'Latchkey' },
        x509_props: { subject: 'CN=auto', validity_months: 12 },
        lifetime_actions: [{ trigger: { lifetime_percentage: 1 }, action: { action_type: 'AutoRenew' } }],
      },
    });
    const before = await sv.services.certificates.get(sv.ctx, 'auto');
    clock.advance(5 * 86_400_000);
    const ran = await sv.services.certificates.runLifetimeActions(clock.now());
    assert.ok(ran.renewed >= 1, `renewed: ${JSON.stringify(ran)}`);
    const renewed = await sv.services.certificates.get(sv.ctx, 'auto');
    assert.notEqual(renewed.version, before.version, 'AutoRenew made a new version');
    const serial = serialOf(renewed.cer);
    const ca = await certificateAuthorityStore.current(sv.services.db, tenantId());
    const rec = await certificateAuthorityStore.issuance(
      sv.services.db,
      tenantId(),
      ca!.generation,
      serial.toLowerCase(),
    );
    assert.deepEqual(rec, { vaultId: sv.ctx.vault.id, nameLower: 'auto', version: renewed.version });
    const pfx = (await sv.services.secrets.get(sv.ctx, 'auto')).value!;
    const ctx5 = await otherVault('caauto');
    await sv.services.certificates.import(ctx5, 'auto-copy', { value: pfx });
    await purge(ctx5, 'auto-copy');
    assert.ok(!(await revoked(serial)), "the renewed version's copy purged revoked it");
    await purge(sv.ctx, 'auto');
    assert.ok(await revoked(serial), 'the renewed version revoked at its purge');
  });
});

/** The revocation SQL on both stores: a revocation takes a CRL number; keyCompromise replaces a milder reason. */
for (const [dialect, open] of FRESH_STORES)
  test(`revocation store (${dialect}): a CRL made before a revocation cannot be stored after it; keyCompromise wins; the first issuance record is kept`, async () => {
    const { db, cleanup } = await open();
    try {
      await migrate(db, ALL_MIGRATIONS);
      await db.run("INSERT INTO tenants (id, display_name, created_at) VALUES ('t1', 'T', 1)");
      await certificateAuthorityStore.insertIfAbsent(db, {
        tenantId: 't1',
        generation: 1,
        cer: Buffer.from('cer'),
        sealedKey: Buffer.from('key'),
        created: 1,
        retired: null,
        issuedUntil: 1,
        crlNumber: 0,
        crl: null,
        crlThisUpdate: null,
      });
      const rev = (serial: string, reason: string) =>
        certificateAuthorityStore.revoke(db, 't1', 1, { serial, notAfter: 9e12, revoked: 1000, reason });
      // A CRL numbered 1 is being made (the number read was 0); a revocation comes in meanwhile.
      assert.equal(await rev('aa', 'superseded'), true);
      const put = await certificateAuthorityStore.putCrl(db, 't1', 1, {
        der: Buffer.from('crl-without-aa'),
        number: 1,
        thisUpdate: 2000,
      });
      assert.equal(put, false, 'the CRL made before the revocation is not stored');
      // keyCompromise replaces superseded (and the CRL goes stale again); nothing milder replaces it.
      assert.equal(await rev('aa', 'keyCompromise'), true);
      assert.equal(await rev('aa', 'unspecified'), false);
      assert.equal(await rev('aa', 'superseded'), false);
      const [r, ...more] = await certificateAuthorityStore.revoked(db, 't1', 1, 0);
      assert.equal(more.length, 0);
      assert.equal(r!.reason, 'keyCompromise');
      assert.equal(r!.revoked, 1000, 'the first date is kept');
      const ca = await certificateAuthorityStore.find(db, 't1', 1);
      assert.equal(ca!.crlNumber, 2, 'each change of the list took a number');
      assert.equal(ca!.crl, null);
      // Issuance records (0021): the first recorded place is kept; an unrecorded serial has none.
      const at = { vaultId: 'v1', nameLower: 'c', version: 'ver1' };
      await certificateAuthorityStore.recordIssuance(db, 't1', 1, 'bb', at);
      await certificateAuthorityStore.recordIssuance(db, 't1', 1, 'bb', { ...at, vaultId: 'v2' });
      assert.deepEqual(await certificateAuthorityStore.issuance(db, 't1', 1, 'bb'), at);
      assert.equal(await certificateAuthorityStore.issuance(db, 't1', 1, 'cc'), undefined);
    } finally {
      await db.close();
      await cleanup();
    }
  });
