import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CertificateClient } from '@azure/keyvault-certificates';
import type { RestError } from '@azure/keyvault-secrets';
import { runCli } from './helpers/cli.js';
import { keyClient } from './helpers/keys.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, type VaultTestPrincipal, vaultPrincipal } from './helpers/vault.js';

const status = (code: number, errorCode: string, message?: string | RegExp) => (e: RestError) => {
  assert.equal(e.statusCode, code, e.message);
  assert.equal(e.code, errorCode, e.message);
  if (typeof message === 'string') assert.equal(e.message, message);
  else if (message) assert.match(e.message, message);
  return true;
};
const openssl = (args: string[], input?: Buffer | string) =>
  execFileSync('openssl', args, {
    ...(input !== undefined ? { input } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString('utf8');
const poll = { intervalInMs: 10 };
const pemOf = (label: string, der: Uint8Array) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;

/** An outside CA made with openssl, signing CSRs with their extensions. */
function outsideCa(dir: string, name: string) {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    crt,
    '-subj',
    `/CN=${name}`,
    '-days',
    '30',
  ]);
  return {
    crt,
    sign(csrDer: Uint8Array, out: string): string {
      const csr = join(dir, `${out}.csr`);
      const leaf = join(dir, `${out}.crt`);
      writeFileSync(csr, pemOf('CERTIFICATE REQUEST', csrDer));
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        crt,
        '-CAkey',
        key,
        '-CAcreateserial',
        '-out',
        leaf,
        '-days',
        '20',
        '-copy_extensions',
        'copy',
      ]);
      return leaf;
    },
  };
}
const derOf = (pemFile: string) =>
  Buffer.from(
    readFileSync(pemFile, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .join(''),
    'base64',
  );

async function setup(s: TestServer, vault: string) {
  const v = await putVault(s, vault);
  const officer = await vaultPrincipal(s, `${vault}-officer`);
  await grant(s, officer.id, 'Key Vault Certificates Officer', v.id);
  const admin = await vaultPrincipal(s, `${vault}-admin`);
  await grant(s, admin.id, 'Key Vault Administrator', v.id);
  const user = await vaultPrincipal(s, `${vault}-user`);
  await grant(s, user.id, 'Key Vault Certificate User', v.id);
  return { officer, admin, user };
}

describe('certificates: managed key and secret, merge (issuer Unknown)', () => {
  let s: TestServer;
  let officer: VaultTestPrincipal;
  let admin: VaultTestPrincipal; // Key Vault Administrator: every key and secret operation
  let user: VaultTestPrincipal;
  let dir: string;
  const certClient = (p: VaultTestPrincipal) =>
    new CertificateClient(s.vaultUrl('issvault'), p.credential, { agent: s.agent });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lk-certiss-'));
    s = await startTestServer();
    ({ officer, admin, user } = await setup(s, 'issvault'));
  });
  after(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the certificate's key and secret cannot be changed through /keys and /secrets (403), even by an administrator", async () => {
    const c = await (
      await certClient(officer).beginCreateCertificate(
        'held',
        { issuerName: 'Self', subject: 'CN=held' },
        poll,
      )
    ).pollUntilDone();
    const secrets = secretClient(s, 'issvault', admin);
    const keys = keyClient(s, 'issvault', admin);
    const managed = (kind: string) =>
      status(403, 'Forbidden', new RegExp(`${kind} managed by a certificate`));
    await assert.rejects(secrets.setSecret('held', 'overwrite'), managed('secret'));
    await assert.rejects(
      secrets.updateSecretProperties('held', c.properties.version!, { enabled: false }),
      managed('secret'),
    );
    await assert.rejects(secrets.beginDeleteSecret('held', poll), managed('secret'));
    await assert.rejects(keys.createRsaKey('held'), managed('key'));
    await assert.rejects(
      keys.updateKeyProperties('held', c.properties.version!, { enabled: false }),
      managed('key'),
    );
    await assert.rejects(keys.rotateKey('held'), managed('key'));
    await assert.rejects(keys.beginDeleteKey('held', poll), managed('key'));
    // Reads still work, and nothing changed.
    const secret = await secrets.getSecret('held');
    assert.equal(secret.properties.version, c.properties.version);
    assert.equal(secret.properties.enabled, true);
    assert.equal((await keys.getKey('held')).properties.version, c.properties.version);
    // Deleted with the certificate: recovering or purging them alone is refused too.
    await (await certClient(officer).beginDeleteCertificate('held', poll)).pollUntilDone();
    await assert.rejects(secrets.beginRecoverDeletedSecret('held', poll), managed('secret'));
    await assert.rejects(keys.purgeDeletedKey('held'), managed('key'));
    await (await certClient(officer).beginRecoverDeletedCertificate('held', poll)).pollUntilDone();
    assert.ok((await secrets.getSecret('held')).value, "(await secrets.getSecret('held')).value");
  });

  test('exportable: false: GET /secrets/{name} is refused (403), the key is readable', async () => {
    await (
      await certClient(officer).beginCreateCertificate(
        'vaulted',
        { issuerName: 'Self', subject: 'CN=vaulted', exportable: false },
        poll,
      )
    ).pollUntilDone();
    await assert.rejects(
      secretClient(s, 'issvault', user).getSecret('vaulted'),
      status(403, 'Forbidden', /non-exportable key/),
    );
    assert.equal((await keyClient(s, 'issvault', user).getKey('vaulted')).keyType, 'RSA');
    // A secret that does not exist at all is still 404.
    await assert.rejects(
      secretClient(s, 'issvault', user).getSecret('nothing-here'),
      status(404, 'SecretNotFound'),
    );
  });

  test('issuer Unknown: a CSR, signed by openssl as an outside CA, merged; the secret has key and chain', async () => {
    const client = certClient(officer);
    const ca = outsideCa(dir, 'outside-ca');
    await client.beginCreateCertificate(
      'csr',
      {
        issuerName: 'Unknown',
        subject: 'CN=csr.example, O=Contoso',
        subjectAlternativeNames: { dnsNames: ['csr.example'] },
        enhancedKeyUsage: ['1.3.6.1.5.5.7.3.1'],
        contentType: 'application/x-pem-file',
      },
      poll,
    );
    const pendingState = (await client.getCertificateOperation('csr')).getOperationState()
      .certificateOperation!;
    assert.equal(pendingState.status, 'inProgress');
    assert.match(pendingState.statusDetails!, /Perform Merge/);
    // The SDK's own sample: getCertificateOperation, then the csr.
    const opPoller = await client.getCertificateOperation('csr');
    const { csr } = opPoller.getOperationState().certificateOperation!;
    assert.ok(csr && csr.length > 200, 'csr && csr.length > 200');
    const csrText = openssl(['req', '-inform', 'DER', '-noout', '-text', '-verify'], Buffer.from(csr));
    assert.match(csrText, /Subject: CN = csr\.example, O = Contoso/);
    assert.match(csrText, /DNS:csr\.example/);
    // Pending: the certificate is there without cer; no secret, no key yet.
    const pending = await client.getCertificate('csr');
    assert.equal(pending.cer, undefined);
    assert.equal(pending.policy?.issuerName, 'Unknown');
    await assert.rejects(keyClient(s, 'issvault', user).getKey('csr'), status(404, 'KeyNotFound'));
    // A create while it waits is refused.
    await assert.rejects(
      client.beginCreateCertificate('csr', { issuerName: 'Self', subject: 'CN=x' }, poll),
      status(409, 'Conflict', /pending operation/),
    );

    const leaf = ca.sign(csr, 'csr-leaf');
    // As the SDK sample sends it: the bytes of the base64 text.
    const base64Crt = readFileSync(leaf, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .join('');
    const merged = await client.mergeCertificate('csr', [Buffer.from(base64Crt), derOf(ca.crt)]);
    assert.equal(merged.name, 'csr');
    assert.deepEqual(Buffer.from(merged.cer!), derOf(leaf));
    const op = (await client.getCertificateOperation('csr')).getOperationState().certificateOperation!;
    assert.equal(op.status, 'completed');
    const pem = (await secretClient(s, 'issvault', user).getSecret('csr')).value!;
    const chainFile = join(dir, 'csr-secret.pem');
    writeFileSync(chainFile, pem);
    // The secret: the private key of the request, the leaf, then the chain; openssl verifies the leaf.
    assert.match(openssl(['verify', '-CAfile', ca.crt, leaf]), /OK/);
    assert.equal(openssl(['pkey', '-pubout'], pem), openssl(['x509', '-noout', '-pubkey', '-in', leaf]));
    assert.equal((pem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    assert.equal(
      (await keyClient(s, 'issvault', user).getKey('csr')).properties.version,
      merged.properties.version,
    );
    // Nothing left to merge.
    await assert.rejects(
      client.mergeCertificate('csr', [derOf(leaf)]),
      status(404, 'CertificateNotFound', /Pending certificate not found/),
    );
  });

  test("merge: a certificate for another key is refused with Azure's error; cancel and delete of the pending operation", async () => {
    const client = certClient(officer);
    const ca = outsideCa(dir, 'other-ca');
    await client.beginCreateCertificate('mm', { issuerName: 'Unknown', subject: 'CN=mm' }, poll);
    await client.beginCreateCertificate('other', { issuerName: 'Unknown', subject: 'CN=other' }, poll);
    const csrOther = (await client.getCertificateOperation('other')).getOperationState().certificateOperation!
      .csr!;
    const wrong = ca.sign(csrOther, 'other-leaf');
    await assert.rejects(
      client.mergeCertificate('mm', [derOf(wrong)]),
      status(400, 'BadParameter', "Public key from x509 certificate and key of this instance doesn't match"),
    );
    await assert.rejects(
      client.mergeCertificate('mm', [Buffer.from('not a certificate')]),
      status(400, 'BadParameter', /x5c\[0\]/),
    );
    // Cancel: the request stays, cancelled, and cannot be merged.
    const csrMm = (await client.getCertificateOperation('mm')).getOperationState().certificateOperation!.csr!;
    const right = ca.sign(csrMm, 'mm-leaf');
    const opPoller = await client.getCertificateOperation('mm');
    await opPoller.cancelOperation();
    const cancelled = opPoller.getOperationState().certificateOperation!;
    assert.equal(cancelled.cancellationRequested, true);
    assert.equal(cancelled.status, 'cancelled');
    await assert.rejects(
      client.mergeCertificate('mm', [derOf(right)]),
      status(400, 'BadParameter', /cancelled/),
    );
    // Delete: forgets the request; the name is free.
    const deleted = await client.deleteCertificateOperation('mm');
    assert.equal(deleted.status, 'cancelled');
    await assert.rejects(client.getCertificate('mm'), status(404, 'CertificateNotFound'));
    await client.deleteCertificateOperation('other');
    const fresh = await (
      await client.beginCreateCertificate('mm', { issuerName: 'Self', subject: 'CN=mm' }, poll)
    ).pollUntilDone();
    assert.ok(fresh.cer, 'fresh.cer');
  });

  test("issuer Latchkey: signed by the tenant's CA, published at /{tenant}/pki/ca.pem; openssl verifies the leaf", async () => {
    const caUrl = `${s.info.authority}/${s.info.tenantId}/pki/ca.pem`;
    // No CA before the first Latchkey certificate (a GET never makes one).
    assert.equal((await s.request('GET', caUrl)).status, 404);
    const client = certClient(officer);
    const cert = await (
      await client.beginCreateCertificate(
        'own',
        {
          issuerName: 'Latchkey',
          subject: 'CN=own.example, O=Contoso',
          subjectAlternativeNames: {
            dnsNames: ['own.example', 'api.own.example'],
            emails: ['ops@own.example'],
            userPrincipalNames: ['svc@own.example'],
          },
          enhancedKeyUsage: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
          keyUsage: ['digitalSignature', 'keyEncipherment'],
          validityInMonths: 3,
          contentType: 'application/x-pem-file',
        },
        poll,
      )
    ).pollUntilDone();
    assert.equal(cert.policy?.issuerName, 'Latchkey');
    const ca = await s.request('GET', caUrl);
    assert.equal(ca.status, 200);
    assert.equal(ca.headers['content-type'], 'application/x-pem-file');
    const caFile = join(dir, 'tenant-ca.pem');
    const leafFile = join(dir, 'own.pem');
    writeFileSync(caFile, ca.text);
    writeFileSync(leafFile, pemOf('CERTIFICATE', cert.cer!));
    assert.match(openssl(['verify', '-CAfile', caFile, leafFile]), /own\.pem: OK/);
    const caText = openssl(['x509', '-noout', '-text', '-in', caFile]);
    assert.match(caText, new RegExp(`Subject: CN = Latchkey CA ${s.info.tenantId}, O = Latchkey`));
    assert.match(caText, /CA:TRUE/);
    const text = openssl(['x509', '-noout', '-text', '-in', leafFile]);
    assert.match(text, new RegExp(`Issuer: CN = Latchkey CA ${s.info.tenantId}, O = Latchkey`));
    assert.match(text, /Subject: CN = own\.example, O = Contoso/);
    assert.match(
      text,
      /DNS:own\.example, DNS:api\.own\.example, email:ops@own\.example, othername: UPN::svc@own\.example/,
    );
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /X509v3 Authority Key Identifier/);
    const months =
      (cert.properties.expiresOn!.getTime() - cert.properties.notBefore!.getTime()) / (30.4 * 86_400_000);
    assert.ok(months > 2.8 && months < 3.2, `validity of ${months} months`);
    // The secret: the key, the leaf and the CA.
    const pem = (await secretClient(s, 'issvault', user).getSecret('own')).value!;
    assert.equal((pem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    // A second certificate is signed by the same CA.
    const second = await (
      await client.beginCreateCertificate(
        'own2',
        { issuerName: 'latchkey', subject: 'CN=own2', keyType: 'EC' },
        poll,
      )
    ).pollUntilDone();
    writeFileSync(leafFile, pemOf('CERTIFICATE', second.cer!));
    assert.match(openssl(['verify', '-CAfile', caFile, leafFile]), /OK/);
    assert.equal((await s.request('GET', caUrl)).text, ca.text);
    // `latchkey ca show`: the summary, and the PEM for openssl.
    const cli = (args: string[]) =>
      runCli(['ca', 'show', '--tenant', s.info.tenantId, ...args], {
        configDir: mkdtempSync(join(dir, 'cli-')),
        env: { LATCHKEY_SERVER: s.info.authority, LATCHKEY_CA_FILE: s.info.caCertPath },
      });
    const shown = await cli(['--output', 'json']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.json.subject, new RegExp(`CN=Latchkey CA ${s.info.tenantId}`));
    assert.match(shown.json.sha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.equal((await cli(['--pem'])).stdout, ca.text);
    // Another tenant (or a made-up one) has no CA here.
    assert.equal(
      (await s.request('GET', `${s.info.authority}/00000000-0000-0000-0000-000000000000/pki/ca.pem`)).status,
      404,
    );
  });

  test('issuers CRUD (provider Latchkey): create, get, update, list, delete; a certificate with a named issuer is signed by the tenant CA', async () => {
    const client = certClient(officer);
    const created = await client.createIssuer('corp-ca', 'Latchkey', {
      accountId: 'acct-1',
      password: 'never-stored',
      organizationId: 'org-1',
      administratorContacts: [{ firstName: 'Ada', lastName: 'L', email: 'ada@corp.example', phone: '555' }],
    });
    // (The SDK takes `name` from the id's segment after /certificates/: 'issuers', against Azure too.)
    assert.match(created.id!, /\/certificates\/issuers\/corp-ca$/);
    assert.equal(created.provider, 'Latchkey');
    assert.equal(created.accountId, 'acct-1');
    assert.equal(created.password, undefined);
    assert.equal(created.enabled, true);
    assert.ok(created.createdOn instanceof Date, 'created.createdOn instanceof Date');
    const got = await client.getIssuer('corp-ca');
    assert.equal(got.organizationId, 'org-1');
    assert.deepEqual(got.administratorContacts, [
      { firstName: 'Ada', lastName: 'L', email: 'ada@corp.example', phone: '555' },
    ]);
    const updated = await client.updateIssuer('corp-ca', { accountId: 'acct-2' });
    assert.equal(updated.accountId, 'acct-2');
    assert.equal(updated.organizationId, 'org-1');
    const listed: string[] = [];
    for await (const i of client.listPropertiesOfIssuers())
      listed.push(`${i.id?.split('/').pop()}:${i.provider}`);
    assert.deepEqual(listed, ['corp-ca:Latchkey']);

    // A certificate naming the issuer is signed by the tenant's CA.
    const cert = await (
      await client.beginCreateCertificate('via-issuer', { issuerName: 'corp-ca', subject: 'CN=via' }, poll)
    ).pollUntilDone();
    assert.equal(cert.policy?.issuerName, 'corp-ca');
    assert.match(
      openssl(['x509', '-inform', 'DER', '-noout', '-issuer'], Buffer.from(cert.cer!)),
      /Latchkey CA/,
    );
    // Disabled: refused; other providers and built-in names: refused. (The SDK's updateIssuer
    // never sends enabled: false; a set replaces the issuer.)
    await client.createIssuer('corp-ca', 'Latchkey', { enabled: false });
    await assert.rejects(
      client.beginCreateCertificate('via-issuer', { issuerName: 'corp-ca', subject: 'CN=via' }, poll),
      status(400, 'BadParameter', /disabled/),
    );
    await assert.rejects(
      client.createIssuer('digi', 'DigiCert'),
      status(400, 'BadParameter', /provider 'DigiCert'/),
    );
    await assert.rejects(client.createIssuer('Self', 'Latchkey'), status(400, 'BadParameter', /built-in/));
    await assert.rejects(
      client.beginCreateCertificate('nowhere', { issuerName: 'no-such-issuer', subject: 'CN=x' }, poll),
      status(400, 'BadParameter', /not known/),
    );

    const deleted = await client.deleteIssuer('corp-ca');
    assert.match(deleted.id!, /corp-ca$/);
    await assert.rejects(
      client.getIssuer('corp-ca'),
      status(404, 'CertificateNotFound', 'Issuer not found: corp-ca'),
    );
    // Certificate User: no issuers (certificatecas is the Officer's).
    await assert.rejects(certClient(user).createIssuer('u', 'Latchkey'), status(403, 'Forbidden'));
    await assert.rejects(
      (async () => {
        for await (const _ of certClient(user).listPropertiesOfIssuers());
      })(),
      status(403, 'Forbidden'),
    );
  });

  test('issuers with access policies: getissuers/listissuers read, setissuers/deleteissuers write, manageissuers all', async () => {
    const reader = await vaultPrincipal(s, 'iss-ap-reader');
    const manager = await vaultPrincipal(s, 'iss-ap-manager');
    const setter = await vaultPrincipal(s, 'iss-ap-setter');
    await putVault(s, 'issap', {
      properties: {
        enableRbacAuthorization: false,
        accessPolicies: [
          {
            tenantId: s.info.tenantId,
            objectId: reader.id,
            permissions: { certificates: ['getissuers', 'listissuers'] },
          },
          {
            tenantId: s.info.tenantId,
            objectId: manager.id,
            permissions: { certificates: ['manageissuers'] },
          },
          { tenantId: s.info.tenantId, objectId: setter.id, permissions: { certificates: ['setissuers'] } },
        ],
      },
    });
    const c = (p: VaultTestPrincipal) =>
      new CertificateClient(s.vaultUrl('issap'), p.credential, { agent: s.agent });
    await c(manager).createIssuer('ap', 'Latchkey');
    assert.equal((await c(manager).getIssuer('ap')).provider, 'Latchkey');
    assert.equal((await c(reader).getIssuer('ap')).provider, 'Latchkey');
    await assert.rejects(c(reader).createIssuer('ap2', 'Latchkey'), status(403, 'Forbidden', /setissuers/));
    await assert.rejects(c(reader).deleteIssuer('ap'), status(403, 'Forbidden'));
    await c(setter).updateIssuer('ap', { accountId: 'x' });
    await assert.rejects(c(setter).getIssuer('ap'), status(403, 'Forbidden'));
    await assert.rejects(c(setter).deleteIssuer('ap'), status(403, 'Forbidden'));
    assert.equal((await c(manager).deleteIssuer('ap')).accountId, 'x');
  });

  test('merge and cancel need certificate permissions: a Certificate User is refused', async () => {
    await certClient(officer).beginCreateCertificate(
      'perm',
      { issuerName: 'Unknown', subject: 'CN=perm' },
      poll,
    );
    await assert.rejects(
      certClient(user).mergeCertificate('perm', [Buffer.from('x')]),
      status(403, 'Forbidden'),
    );
    await assert.rejects(
      (await certClient(user).getCertificateOperation('perm')).cancelOperation(),
      status(403, 'Forbidden'),
    );
    await assert.rejects(certClient(user).deleteCertificateOperation('perm'), status(403, 'Forbidden'));
  });
});

/** The request table on PostgreSQL (migration 0016). */
describe('certificate merge on PostgreSQL', () => {
  let s: TestServer;
  let schema: TestSchema;
  let officer: VaultTestPrincipal;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lk-certiss-pg-'));
    schema = await createTestSchema();
    s = await startTestServer({ storageUrl: schema.url });
    ({ officer } = await setup(s, 'isspg'));
  });
  after(async () => {
    await s?.stop();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('create with Unknown, merge, read back', async () => {
    const client = new CertificateClient(s.vaultUrl('isspg'), officer.credential, { agent: s.agent });
    const ca = outsideCa(dir, 'pg-ca');
    await client.beginCreateCertificate(
      'pgcsr',
      { issuerName: 'Unknown', subject: 'CN=pgcsr', keyType: 'EC' },
      poll,
    );
    const csr = (await client.getCertificateOperation('pgcsr')).getOperationState().certificateOperation!
      .csr!;
    const leaf = ca.sign(csr, 'pg-leaf');
    const merged = await client.mergeCertificate('pgcsr', [derOf(leaf)]);
    assert.deepEqual(Buffer.from((await client.getCertificate('pgcsr')).cer!), Buffer.from(merged.cer!));
  });

  test('issuers, the tenant CA and the lifetime job on PostgreSQL', async () => {
    const client = new CertificateClient(s.vaultUrl('isspg'), officer.credential, { agent: s.agent });
    await client.createIssuer('pg-issuer', 'Latchkey', { accountId: 'a' });
    assert.equal((await client.getIssuer('pg-issuer')).accountId, 'a');
    const cert = await (
      await client.beginCreateCertificate(
        'pgca',
        {
          issuerName: 'pg-issuer',
          subject: 'CN=pgca',
          validityInMonths: 1,
          lifetimeActions: [{ action: 'AutoRenew', daysBeforeExpiry: 10 }],
        },
        poll,
      )
    ).pollUntilDone();
    const ca = await s.request('GET', `${s.info.authority}/${s.info.tenantId}/pki/ca.pem`);
    assert.equal(ca.status, 200);
    writeFileSync(join(dir, 'pg-ca.pem'), ca.text);
    writeFileSync(join(dir, 'pgca.pem'), pemOf('CERTIFICATE', cert.cer!));
    assert.match(openssl(['verify', '-CAfile', join(dir, 'pg-ca.pem'), join(dir, 'pgca.pem')]), /OK/);
    // The lifetime job's round, 25 days on: renewed once through the issuer.
    const later = cert.properties.expiresOn!.getTime() - 5 * 86_400_000;
    // (The merged certificate above, 20 days long, gets its default EmailContacts at 80 % too.)
    assert.deepEqual(await s.services.certificates.runLifetimeActions(later), { renewed: 1, notified: 1 });
    // (The renewed version runs from the server's real clock: at real time nothing is due.)
    assert.deepEqual(await s.services.certificates.runLifetimeActions(Date.now()), {
      renewed: 0,
      notified: 0,
    });
    assert.notEqual((await client.getCertificate('pgca')).properties.version, cert.properties.version);
  });
});
