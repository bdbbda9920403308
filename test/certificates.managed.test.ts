import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CertificateClient } from '@azure/keyvault-certificates';
import type { RestError } from '@azure/keyvault-secrets';
import { fakeClock } from '../src/lib/clock.js';
import { keyClient } from './helpers/keys.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { type ServiceVault, startServiceVault } from './helpers/service-vault.js';
import {
  grant,
  putVault,
  secretClient,
  type VaultTestPrincipal,
  vaultPrincipal,
  vaultToken,
} from './helpers/vault.js';

const poll = { intervalInMs: 10 };
const forbidden = (e: RestError) => {
  assert.equal(e.statusCode, 403, e.message);
  assert.match(e.message, /managed by a certificate/);
  return true;
};
async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/**
 * Azure's `managed: true` on the key and secret bundles and items of a certificate (the official
 * SecretClient / KeyClient read it as `properties.managed`), never on an ordinary key or secret.
 */
describe('certificates: managed: true on the key and secret of a certificate', () => {
  let s: TestServer;
  let admin: VaultTestPrincipal; // Key Vault Administrator on both vaults
  const certs = () => new CertificateClient(s.vaultUrl('mgvault'), admin.credential, { agent: s.agent });

  before(async () => {
    s = await startTestServer();
    const v = await putVault(s, 'mgvault');
    const other = await putVault(s, 'mgother');
    admin = await vaultPrincipal(s, 'mg-admin');
    await grant(s, admin.id, 'Key Vault Administrator', v.id);
    await grant(s, admin.id, 'Key Vault Administrator', other.id);
  });
  after(async () => {
    await s?.stop();
  });

  test('GET, list, list versions and the deleted views say managed; ordinary ones do not', async () => {
    const c = await (
      await certs().beginCreateCertificate('mcert', { issuerName: 'Self', subject: 'CN=mcert' }, poll)
    ).pollUntilDone();
    const version = c.properties.version!;
    const secrets = secretClient(s, 'mgvault', admin);
    const keys = keyClient(s, 'mgvault', admin);
    await secrets.setSecret('plain', 'v');
    await keys.createEcKey('plainkey');

    const secret = await secrets.getSecret('mcert');
    assert.equal(secret.properties.managed, true);
    // The secret names the certificate's key of the same version, as Azure's `kid`.
    assert.equal(secret.properties.certificateKeyId, `${s.vaultUrl('mgvault')}/keys/mcert/${version}`);
    assert.equal((await secrets.getSecret('mcert', { version })).properties.managed, true);
    const key = await keys.getKey('mcert');
    assert.equal(key.properties.managed, true);
    assert.equal((await keys.getKey('mcert', { version })).properties.managed, true);

    const plain = await secrets.getSecret('plain');
    assert.equal(plain.properties.managed, undefined);
    assert.equal(plain.properties.certificateKeyId, undefined);
    assert.equal((await keys.getKey('plainkey')).properties.managed, undefined);

    const secretList = await all(secrets.listPropertiesOfSecrets());
    assert.deepEqual(
      secretList.map((p) => [p.name, p.managed]).sort(),
      [
        ['mcert', true],
        ['plain', undefined],
      ].sort(),
    );
    const keyList = await all(keys.listPropertiesOfKeys());
    assert.deepEqual(
      keyList.map((p) => [p.name, p.managed]).sort(),
      [
        ['mcert', true],
        ['plainkey', undefined],
      ].sort(),
    );
    assert.deepEqual(
      (await all(secrets.listPropertiesOfSecretVersions('mcert'))).map((p) => p.managed),
      [true],
    );
    assert.deepEqual(
      (await all(keys.listPropertiesOfKeyVersions('mcert'))).map((p) => p.managed),
      [true],
    );
    assert.deepEqual(
      (await all(secrets.listPropertiesOfSecretVersions('plain'))).map((p) => p.managed),
      [undefined],
    );

    // On the wire: the item carries `managed`, an ordinary one has no such field at all.
    const res = await s.request('GET', `${s.vaultUrl('mgvault')}/secrets?api-version=7.5`, {
      headers: { authorization: `Bearer ${await vaultToken(s, admin)}` },
    });
    assert.equal(res.status, 200);
    const wire = res.json as { value: Record<string, unknown>[] };
    const byId = (n: string) => wire.value.find((i) => String(i.id).endsWith(`/secrets/${n}`))!;
    assert.equal(byId('mcert').managed, true);
    assert.equal('managed' in byId('plain'), false);

    // Deleted with the certificate: the deleted key and secret are still the certificate's.
    await (await certs().beginDeleteCertificate('mcert', poll)).pollUntilDone();
    assert.equal((await secrets.getDeletedSecret('mcert')).properties.managed, true);
    assert.equal((await keys.getDeletedKey('mcert')).properties.managed, true);
    assert.deepEqual(
      (await all(secrets.listDeletedSecrets())).map((d) => [d.name, d.properties.managed]),
      [['mcert', true]],
    );
    assert.deepEqual(
      (await all(keys.listDeletedKeys())).map((d) => [d.name, d.properties.managed]),
      [['mcert', true]],
    );
    await (await certs().beginRecoverDeletedCertificate('mcert', poll)).pollUntilDone();
    assert.equal((await keys.getKey('mcert')).properties.managed, true);
  });

  test('a backup of the key restored elsewhere is an ordinary key; no restore lands on a certificate name', async () => {
    const keys = keyClient(s, 'mgvault', admin);
    await (
      await certs().beginCreateCertificate('kcert', { issuerName: 'Self', subject: 'CN=kcert' }, poll)
    ).pollUntilDone();
    const blob = await keys.backupKey('kcert');
    const restored = await keyClient(s, 'mgother', admin).restoreKeyBackup(blob!);
    assert.equal(restored.name, 'kcert');
    assert.equal(restored.properties.managed, undefined);
    assert.equal((await keyClient(s, 'mgother', admin).getKey('kcert')).properties.managed, undefined);

    // A non-exportable certificate has no secret: a secret backup of its name is still refused.
    await (
      await certs().beginCreateCertificate(
        'sealed',
        { issuerName: 'Self', subject: 'CN=sealed', exportable: false },
        poll,
      )
    ).pollUntilDone();
    const elsewhere = secretClient(s, 'mgother', admin);
    await elsewhere.setSecret('sealed', 'not the certificate');
    const secretBlob = await elsewhere.backupSecret('sealed');
    await assert.rejects(secretClient(s, 'mgvault', admin).restoreSecretBackup(secretBlob!), forbidden);
    await assert.rejects(secretClient(s, 'mgvault', admin).getSecret('sealed'), (e: RestError) => {
      assert.match(e.message, /non-exportable key/);
      return true;
    });
  });
});

/** The same SQL on PostgreSQL: `managed` on reads and list items, none on an ordinary secret. */
describe('certificates: managed on PostgreSQL', () => {
  let s: TestServer;
  let schema: TestSchema;

  before(async () => {
    schema = await createTestSchema();
    s = await startTestServer({ storageUrl: schema.url });
  });
  after(async () => {
    await s?.stop();
    await schema?.drop();
  });

  test('get and list say managed for the certificate, not for an ordinary secret or key', async () => {
    const v = await putVault(s, 'mgpg');
    const admin = await vaultPrincipal(s, 'mg-pg');
    await grant(s, admin.id, 'Key Vault Administrator', v.id);
    const certs = new CertificateClient(s.vaultUrl('mgpg'), admin.credential, { agent: s.agent });
    await (
      await certs.beginCreateCertificate('pgcert', { issuerName: 'Self', subject: 'CN=pg' }, poll)
    ).pollUntilDone();
    const secrets = secretClient(s, 'mgpg', admin);
    const keys = keyClient(s, 'mgpg', admin);
    await secrets.setSecret('pgplain', 'v');
    await keys.createRsaKey('pgkey');
    assert.equal((await secrets.getSecret('pgcert')).properties.managed, true);
    assert.equal((await keys.getKey('pgcert')).properties.managed, true);
    assert.equal((await secrets.getSecret('pgplain')).properties.managed, undefined);
    assert.deepEqual(
      (await all(secrets.listPropertiesOfSecrets())).map((p) => [p.name, p.managed]),
      [
        ['pgcert', true],
        ['pgplain', undefined],
      ],
    );
    assert.deepEqual(
      (await all(keys.listPropertiesOfKeys())).map((p) => [p.name, p.managed]),
      [
        ['pgcert', true],
        ['pgkey', undefined],
      ],
    );
  });
});

/**
 * The purge jobs run one per kind, each on its own timer. A certificate's key and secret go with
 * the certificate's scheduled purge, as with a purge asked for: never before it (the certificate
 * would be recoverable without its key), never after it (until then they were an ordinary key and
 * secret: a non-exportable certificate's key recoverable and usable as any key).
 */
describe('certificates: the scheduled purge takes the key and secret with the certificate', () => {
  const DAY = 86_400_000;
  const clock = fakeClock(Date.UTC(2026, 2, 1, 12));
  let sv: ServiceVault;
  before(async () => {
    sv = await startServiceVault({
      clock,
      vaultName: 'purgejobs',
      role: 'Key Vault Administrator',
      dirPrefix: 'lk-mgpurge-',
    });
  });
  after(async () => sv?.close());

  const create = (name: string) =>
    sv.services.certificates.create(sv.ctx, name, {
      policy: {
        issuer: { name: 'Self' },
        x509_props: { subject: `CN=${name}` },
        key_props: { exportable: false },
      },
    });
  const notFound = { status: 404 };

  test('the certificate job first: key and secret are purged with it, nothing is left to recover', async () => {
    await create('cert-first');
    await sv.services.certificates.delete(sv.ctx, 'cert-first');
    clock.advance(8 * DAY); // past the vault's 7 days of retention
    assert.ok(await sv.services.jobs.runNow('certificate-purge', clock.now()));
    await assert.rejects(sv.services.certificates.getDeleted(sv.ctx, 'cert-first'), notFound);
    // Before the fix the key came back here as an ordinary key (then changed, signed with).
    await assert.rejects(sv.services.keys.recover(sv.ctx, 'cert-first'), notFound);
    await assert.rejects(sv.services.secrets.recover(sv.ctx, 'cert-first'), notFound);
    assert.equal(await sv.services.keys.getDeleted(sv.ctx, 'cert-first').catch(() => undefined), undefined);
  });

  test('the key and secret jobs first: they leave a certificate’s key and secret to its purge', async () => {
    await create('keys-first');
    await sv.services.certificates.delete(sv.ctx, 'keys-first');
    clock.advance(8 * DAY);
    assert.ok(await sv.services.jobs.runNow('key-purge', clock.now()));
    assert.ok(await sv.services.jobs.runNow('vault-purge', clock.now()));
    // The certificate is still recoverable, and comes back whole: with its key.
    const back = await sv.services.certificates.recover(sv.ctx, 'keys-first');
    assert.equal(back.name, 'keys-first');
    const key = await sv.services.keys.get(sv.ctx, 'keys-first');
    assert.equal(key.managed, true);
  });
});
