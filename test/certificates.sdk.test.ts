import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CertificateClient } from '@azure/keyvault-certificates';
import type { RestError } from '@azure/keyvault-secrets';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, type VaultTestPrincipal, vaultPrincipal } from './helpers/vault.js';

const status = (code: number, errorCode: string, message?: string) => (e: RestError) => {
  assert.equal(e.statusCode, code, e.message);
  assert.equal(e.code, errorCode, e.message);
  if (message !== undefined) assert.equal(e.message, message);
  return true;
};

/** The official CertificateClient, and SecretClient error shapes, as today's clients see them. */
describe('certificates (none stored yet) and Azure error shapes, with the official SDKs', () => {
  let s: TestServer;
  let reader: VaultTestPrincipal;
  let officer: VaultTestPrincipal;
  let stranger: VaultTestPrincipal;
  const certClient = (p: VaultTestPrincipal, vault = 'certvault') =>
    new CertificateClient(s.vaultUrl(vault), p.credential, { agent: s.agent });

  before(async () => {
    s = await startTestServer();
    const v = await putVault(s, 'certvault');
    reader = await vaultPrincipal(s, 'cert-reader');
    await grant(s, reader.id, 'Key Vault Reader', v.id);
    officer = await vaultPrincipal(s, 'cert-secrets-officer');
    await grant(s, officer.id, 'Key Vault Secrets Officer', v.id);
    stranger = await vaultPrincipal(s, 'cert-stranger');
    await putVault(s, 'certpolicy', { properties: { enableRbacAuthorization: false, accessPolicies: [] } });
  });
  after(async () => {
    await s?.stop();
  });

  test('CertificateClient: lists are empty, a named certificate is 404 CertificateNotFound', async () => {
    const client = certClient(reader);
    const listed: string[] = [];
    for await (const c of client.listPropertiesOfCertificates()) listed.push(c.name!);
    assert.deepEqual(listed, [] as string[]);
    for await (const c of client.listDeletedCertificates()) listed.push(c.name!);
    for await (const c of client.listPropertiesOfCertificateVersions('none')) listed.push(c.name!);
    for await (const i of client.listPropertiesOfIssuers()) listed.push(i.name!);
    assert.deepEqual(listed, [] as string[]);
    await assert.rejects(client.getCertificate('none'), status(404, 'CertificateNotFound'));
    await assert.rejects(
      client.getCertificateVersion('none', 'a'.repeat(32)),
      status(404, 'CertificateNotFound'),
    );
    await assert.rejects(
      client.getDeletedCertificate('none'),
      status(404, 'CertificateNotFound', 'Deleted Certificate not found: none'),
    );
    // Writes are refused with a 400 naming the gap, not a 404 read as "not found".
    await assert.rejects(
      client.beginCreateCertificate('new', { issuerName: 'Self', subject: 'CN=x' }),
      status(400, 'BadParameter'),
    );
  });

  test('CertificateClient: reads are authorized like any other (RBAC and access policies)', async () => {
    const denied = (e: RestError) => e.statusCode === 403;
    const list = async (c: CertificateClient) => {
      for await (const _ of c.listPropertiesOfCertificates());
    };
    await assert.rejects(list(certClient(stranger)), denied);
    await assert.rejects(certClient(stranger).getCertificate('none'), denied);
    await assert.rejects(list(certClient(reader, 'certpolicy')), denied);
  });

  test("SecretClient: a missing deleted secret is SecretNotFound; a bad backup has Azure's message", async () => {
    const client = secretClient(s, 'certvault', officer);
    await assert.rejects(
      client.getDeletedSecret('never'),
      status(404, 'SecretNotFound', 'Deleted Secret not found: never'),
    );
    await assert.rejects(
      client.beginRecoverDeletedSecret('never', { intervalInMs: 10 }).then((p) => p.pollUntilDone()),
      status(404, 'SecretNotFound'),
    );
    await assert.rejects(client.purgeDeletedSecret('never'), status(404, 'SecretNotFound'));
    await assert.rejects(
      client.restoreSecretBackup(new Uint8Array(4728)),
      status(400, 'BadParameter', 'Backup blob contains invalid or corrupt version.'),
    );
  });
});
