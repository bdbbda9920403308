import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CertificateClient, type CertificatePolicy } from '@azure/keyvault-certificates';
import type { RestError } from '@azure/keyvault-secrets';
import { openCertificateBackup } from '../src/vault/certificate-backup.js';
import { keyClient } from './helpers/keys.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, type VaultTestPrincipal, vaultPrincipal } from './helpers/vault.js';

const status = (code: number, errorCode: string, message?: string) => (e: RestError) => {
  assert.equal(e.statusCode, code, e.message);
  assert.equal(e.code, errorCode, e.message);
  if (message !== undefined) assert.equal(e.message, message);
  return true;
};
const poll = { intervalInMs: 10 };
const policy: CertificatePolicy = { issuerName: 'Self', subject: 'CN=backup.example', validityInMonths: 3 };

/** Backup and restore of certificates with the official CertificateClient: all versions, the key and the secret. */
describe('certificate backup and restore (official SDK)', () => {
  let s: TestServer;
  let officer: VaultTestPrincipal; // Certificates, Secrets and Crypto Officer on both vaults
  let user: VaultTestPrincipal; // Certificate User
  const client = (p: VaultTestPrincipal, vault = 'certbk') =>
    new CertificateClient(s.vaultUrl(vault), p.credential, { agent: s.agent });

  before(async () => {
    s = await startTestServer();
    const a = await putVault(s, 'certbk');
    const b = await putVault(s, 'certbk2');
    officer = await vaultPrincipal(s, 'bk-officer');
    user = await vaultPrincipal(s, 'bk-user');
    for (const v of [a, b]) {
      await grant(s, officer.id, 'Key Vault Certificates Officer', v.id);
      await grant(s, officer.id, 'Key Vault Secrets Officer', v.id);
      await grant(s, officer.id, 'Key Vault Crypto Officer', v.id);
    }
    await grant(s, user.id, 'Key Vault Certificate User', a.id);
  });
  after(async () => {
    await s?.stop();
  });

  test('backup, purge, restore: every version, the same certificate, key and secret come back', async () => {
    const c = client(officer);
    const v1 = await (
      await c.beginCreateCertificate('bk', policy, { ...poll, tags: { n: '1' } })
    ).pollUntilDone();
    const v2 = await (await c.beginCreateCertificate('bk', policy, poll)).pollUntilDone();
    const secret = (await secretClient(s, 'certbk', officer).getSecret('bk')).value!;
    const key = await keyClient(s, 'certbk', officer).getKey('bk');
    const blob = await c.backupCertificate('bk');
    assert.ok(blob && blob.length > 1000, 'blob && blob.length > 1000');
    // The name is taken: 409 Conflict, as Azure.
    await assert.rejects(c.restoreCertificateBackup(blob), status(409, 'Conflict'));
    await (await c.beginDeleteCertificate('bk', poll)).pollUntilDone();
    // A deleted (recoverable) certificate still holds its name.
    await assert.rejects(c.restoreCertificateBackup(blob), status(409, 'Conflict'));
    await c.purgeDeletedCertificate('bk');

    const restored = await c.restoreCertificateBackup(blob);
    assert.equal(restored.name, 'bk');
    assert.equal(restored.properties.version, v2.properties.version);
    assert.deepEqual(Buffer.from(restored.cer!), Buffer.from(v2.cer!));
    assert.equal(restored.policy?.subject, 'CN=backup.example');
    assert.equal(restored.policy?.validityInMonths, 3);
    const versions: string[] = [];
    for await (const p of c.listPropertiesOfCertificateVersions('bk')) versions.push(p.version!);
    assert.deepEqual(versions.sort(), [v1.properties.version!, v2.properties.version!].sort());
    const old = await c.getCertificateVersion('bk', v1.properties.version!);
    assert.deepEqual(old.properties.tags, { n: '1' });
    assert.deepEqual(Buffer.from(old.cer!), Buffer.from(v1.cer!));
    assert.equal((await secretClient(s, 'certbk', officer).getSecret('bk')).value, secret);
    const k = await keyClient(s, 'certbk', officer).getKey('bk');
    assert.equal(k.properties.version, v2.properties.version);
    assert.deepEqual(Buffer.from(k.key!.n!), Buffer.from(key.key!.n!));
    assert.equal(
      (await c.getCertificateOperation('bk').catch((e: RestError) => e.statusCode)) as number,
      404,
    );
  });

  test('restore into another vault of the same tenant; a key or secret holding the name is a 409', async () => {
    const c = client(officer);
    await (await c.beginCreateCertificate('moved', policy, poll)).pollUntilDone();
    const pfx = (await secretClient(s, 'certbk', officer).getSecret('moved')).value!;
    const blob = (await c.backupCertificate('moved'))!;
    const other = client(officer, 'certbk2');
    const r = await other.restoreCertificateBackup(blob);
    assert.equal(r.name, 'moved');
    assert.match(r.keyId!, /certbk2\./);
    // The secret and key are sealed again for the new vault: they open there.
    assert.equal((await secretClient(s, 'certbk2', officer).getSecret('moved')).value, pfx);
    assert.equal((await keyClient(s, 'certbk2', officer).getKey('moved')).keyType, 'RSA');

    // A plain secret of that name in the target vault: the certificate's secret could not be written.
    await (await c.beginCreateCertificate('held', policy, poll)).pollUntilDone();
    const held = (await c.backupCertificate('held'))!;
    await secretClient(s, 'certbk2', officer).setSecret('held', 'not a certificate');
    await assert.rejects(other.restoreCertificateBackup(held), status(409, 'Conflict'));
    await keyClient(s, 'certbk2', officer).createEcKey('held2');
    await (await c.beginCreateCertificate('held2', policy, poll)).pollUntilDone();
    await assert.rejects(
      other.restoreCertificateBackup((await c.backupCertificate('held2'))!),
      status(409, 'Conflict'),
    );
    // Nothing of a refused restore was written.
    await assert.rejects(other.getCertificate('held'), status(404, 'CertificateNotFound'));
  });

  test('a non-exportable certificate restores without a secret', async () => {
    const c = client(officer);
    await (
      await c.beginCreateCertificate('noexp', { ...policy, exportable: false, keyType: 'EC' }, poll)
    ).pollUntilDone();
    const blob = (await c.backupCertificate('noexp'))!;
    await (await c.beginDeleteCertificate('noexp', poll)).pollUntilDone();
    await c.purgeDeletedCertificate('noexp');
    const r = await c.restoreCertificateBackup(blob);
    assert.equal(r.policy?.exportable, false);
    assert.equal((await keyClient(s, 'certbk', officer).getKey('noexp')).keyType, 'EC');
    await assert.rejects(secretClient(s, 'certbk', officer).getSecret('noexp'), status(403, 'Forbidden'));
  });

  test("a changed blob, another kind's blob or another tenant's is refused with Azure's message", async () => {
    const c = client(officer);
    await (await c.beginCreateCertificate('tamper', policy, poll)).pollUntilDone();
    const blob = Buffer.from((await c.backupCertificate('tamper'))!);
    const flipped = Buffer.from(blob);
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    const secretBlob = await secretClient(s, 'certbk', officer).backupSecret('tamper');
    for (const bad of [flipped, blob.subarray(0, 40), Buffer.alloc(4728), Buffer.from(secretBlob!)])
      await assert.rejects(
        c.restoreCertificateBackup(bad),
        status(400, 'BadParameter', 'Backup blob contains invalid or corrupt version.'),
      );
    // Sealed for this tenant: it opens for it, not for any other (the AAD names the tenant).
    assert.equal(openCertificateBackup(s.services.sealer, s.info.tenantId, blob).name, 'tamper');
    assert.throws(
      () => openCertificateBackup(s.services.sealer, '00000000-0000-4000-8000-000000000001', blob),
      /invalid or corrupt/,
    );
  });

  test('authorization: backup and restore need their permissions (Certificate User has neither)', async () => {
    await (await client(officer).beginCreateCertificate('guarded', policy, poll)).pollUntilDone();
    const blob = (await client(officer).backupCertificate('guarded'))!;
    await assert.rejects(client(user).backupCertificate('guarded'), status(403, 'Forbidden'));
    await assert.rejects(client(user).restoreCertificateBackup(blob), status(403, 'Forbidden'));
    // Refused before anything is looked at: an unknown name is a 403 too.
    await assert.rejects(client(user).backupCertificate('no-such'), status(403, 'Forbidden'));
    await assert.rejects(client(officer).backupCertificate('no-such'), status(404, 'CertificateNotFound'));
  });
});

/** The same on PostgreSQL (the blob columns and the three stores in one transaction). */
describe('certificate backup and restore on PostgreSQL', () => {
  let s: TestServer;
  let schema: TestSchema;
  let admin: VaultTestPrincipal;

  before(async () => {
    schema = await createTestSchema();
    s = await startTestServer({ storageUrl: schema.url });
    const v = await putVault(s, 'certbkpg');
    admin = await vaultPrincipal(s, 'cert-bk-pg');
    await grant(s, admin.id, 'Key Vault Administrator', v.id);
  });
  after(async () => {
    await s?.stop();
    await schema?.drop();
  });

  test('backup, purge, restore, read the PEM secret', async () => {
    const c = new CertificateClient(s.vaultUrl('certbkpg'), admin.credential, { agent: s.agent });
    const cert = await (
      await c.beginCreateCertificate('pg', { ...policy, contentType: 'application/x-pem-file' }, poll)
    ).pollUntilDone();
    const pem = (await secretClient(s, 'certbkpg', admin).getSecret('pg')).value!;
    const blob = (await c.backupCertificate('pg'))!;
    await (await c.beginDeleteCertificate('pg', poll)).pollUntilDone();
    await c.purgeDeletedCertificate('pg');
    const r = await c.restoreCertificateBackup(blob);
    assert.deepEqual(Buffer.from(r.cer!), Buffer.from(cert.cer!));
    assert.equal((await secretClient(s, 'certbkpg', admin).getSecret('pg')).value, pem);
  });
});
