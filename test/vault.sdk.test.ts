import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SecretClient } from '@azure/keyvault-secrets';
import { decodeJwt } from 'jose';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, vaultPrincipal } from './helpers/vault.js';

/** The official SecretClient (ClientSecretCredential, default options) through a whole secret lifecycle, on both stores. */
for (const store of ['sqlite', 'postgres'] as const)
  describe(`Key Vault secrets with the official SDK (${store})`, () => {
    let s: TestServer;
    let schema: TestSchema | undefined;
    let client: SecretClient;
    const poll = { intervalInMs: 10 };

    before(async () => {
      if (store === 'postgres') schema = await createTestSchema();
      s = await startTestServer(schema ? { storageUrl: schema.url } : {});
      const vault = await putVault(s, 'sdkvault');
      const sp = await vaultPrincipal(s, 'sdk-officer');
      await grant(s, sp.id, 'Key Vault Secrets Officer', vault.id);
      client = secretClient(s, 'sdkvault', sp);
    });
    after(async () => {
      await s?.stop();
      await schema?.drop();
    });

    test('set, get latest and by version, update properties', async () => {
      const v1 = await client.setSecret('db-password', 'first value', {
        contentType: 'text/plain',
        tags: { env: 'dev' },
      });
      assert.equal(v1.value, 'first value');
      assert.match(v1.properties.version!, /^[0-9a-f]{32}$/);
      assert.equal(v1.properties.enabled, true);
      assert.equal(v1.properties.contentType, 'text/plain');
      assert.deepEqual(v1.properties.tags, { env: 'dev' });
      assert.equal(v1.properties.vaultUrl, s.vaultUrl('sdkvault'));
      assert.equal(v1.properties.recoverableDays, 90);
      assert.equal(v1.properties.recoveryLevel, 'Recoverable+Purgeable');
      const v2 = await client.setSecret('db-password', 'second value');
      assert.notEqual(v2.properties.version, v1.properties.version);

      // The SDK as shipped (its default api-version, 2026-04-01 in 4.12), served as itself.
      let sent: { url: string; served: string | undefined } | undefined;
      const latest = await client.getSecret('db-password', {
        onResponse: (r) => {
          sent = { url: r.request.url, served: r.headers.get('x-latchkey-served-api-version') };
        },
      });
      const defaultVersion = new URL(sent!.url).searchParams.get('api-version');
      assert.ok(defaultVersion, 'the SDK sent an api-version');
      assert.equal(sent!.served, defaultVersion);
      assert.equal(latest.value, 'second value');
      assert.equal(latest.properties.version, v2.properties.version);
      const old = await client.getSecret('DB-PASSWORD', { version: v1.properties.version! });
      assert.equal(old.value, 'first value');
      assert.equal(old.properties.contentType, 'text/plain');

      const expires = new Date(Date.now() + 86_400_000);
      expires.setMilliseconds(0);
      const updated = await client.updateSecretProperties('db-password', v2.properties.version!, {
        contentType: 'application/x-password',
        tags: { owner: 'team-a' },
        expiresOn: expires,
      });
      assert.equal(updated.contentType, 'application/x-password');
      assert.deepEqual(updated.tags, { owner: 'team-a' });
      assert.equal(updated.expiresOn?.getTime(), expires.getTime());
      const again = await client.getSecret('db-password');
      assert.equal(again.value, 'second value');
      assert.equal(again.properties.expiresOn?.getTime(), expires.getTime());

      await client.updateSecretProperties('db-password', v1.properties.version!, { enabled: false });
      await assert.rejects(
        client.getSecret('db-password', { version: v1.properties.version! }),
        (e: Error & { statusCode?: number; code?: string }) => {
          assert.equal(e.statusCode, 403);
          assert.equal(e.code, 'Forbidden');
          return true;
        },
      );
    });

    test('list with more than one page, and list versions', async () => {
      for (let i = 0; i < 30; i++) await client.setSecret(`page-${String(i).padStart(2, '0')}`, `v${i}`);
      const names: string[] = [];
      let pages = 0;
      for await (const page of client.listPropertiesOfSecrets().byPage()) {
        pages++;
        for (const p of page) names.push(p.name);
      }
      assert.ok(pages >= 2, `expected several pages, got ${pages}`);
      const expected = Array.from({ length: 30 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
      for (const n of expected) assert.ok(names.includes(n), `missing ${n}`);
      assert.ok(names.includes('db-password'), "names.includes('db-password')");
      assert.equal(new Set(names).size, names.length, 'no secret listed twice');

      const small: string[] = [];
      for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 7 })) {
        assert.ok(page.length <= 7, 'page.length <= 7');
        for (const p of page) small.push(p.name);
      }
      assert.deepEqual(small.sort(), [...names].sort());

      const versions: string[] = [];
      for await (const v of client.listPropertiesOfSecretVersions('db-password')) versions.push(v.version!);
      assert.equal(versions.length, 2);
      assert.ok(
        versions.every((v) => /^[0-9a-f]{32}$/.test(v)),
        'versions.every((v) => /^[0-9a-f]{32}$/.test(v))',
      );
    });

    test('delete, get deleted, recover, delete again, purge', async () => {
      await client.setSecret('to-delete', 'bye');
      const del = await client.beginDeleteSecret('to-delete', poll);
      const deleted = await del.pollUntilDone();
      assert.equal(deleted.name, 'to-delete');
      assert.ok(
        deleted.recoveryId?.endsWith('/deletedsecrets/to-delete'),
        "deleted.recoveryId?.endsWith('/deletedsecrets/to-delete')",
      );
      assert.ok(deleted.deletedOn instanceof Date, 'deleted.deletedOn instanceof Date');
      assert.ok(deleted.scheduledPurgeDate instanceof Date, 'deleted.scheduledPurgeDate instanceof Date');
      assert.ok(
        deleted.scheduledPurgeDate.getTime() - deleted.deletedOn!.getTime() >= 89 * 86_400_000,
        'deleted.scheduledPurgeDate.getTime() - deleted.deletedOn!.getTime() >= 89 * 86_400_000',
      );

      const got = await client.getDeletedSecret('to-delete');
      assert.equal(got.name, 'to-delete');
      assert.equal(got.value, undefined);
      const listed: string[] = [];
      for await (const d of client.listDeletedSecrets()) listed.push(d.name);
      assert.deepEqual(listed, ['to-delete']);
      await assert.rejects(
        client.getSecret('to-delete'),
        (e: { statusCode?: number }) => e.statusCode === 404,
      );
      await assert.rejects(
        client.setSecret('to-delete', 'again'),
        (e: { statusCode?: number }) => e.statusCode === 409,
      );

      const rec = await client.beginRecoverDeletedSecret('to-delete', poll);
      const recovered = await rec.pollUntilDone();
      assert.equal(recovered.name, 'to-delete');
      assert.equal((await client.getSecret('to-delete')).value, 'bye');

      await (await client.beginDeleteSecret('to-delete', poll)).pollUntilDone();
      await client.purgeDeletedSecret('to-delete');
      await assert.rejects(
        client.getDeletedSecret('to-delete'),
        (e: { statusCode?: number }) => e.statusCode === 404,
      );
      await assert.rejects(
        client.getSecret('to-delete'),
        (e: { statusCode?: number }) => e.statusCode === 404,
      );
    });

    test('backup, purge, restore', async () => {
      const a = await client.setSecret('backed-up', 'one', { tags: { k: 'v' } });
      const b = await client.setSecret('backed-up', 'two');
      const blob = await client.backupSecret('backed-up');
      assert.ok(
        blob instanceof Uint8Array && blob.length > 50,
        'blob instanceof Uint8Array && blob.length > 50',
      );
      assert.ok(!Buffer.from(blob!).toString('latin1').includes('two'), 'the backup is encrypted');
      await assert.rejects(
        client.restoreSecretBackup(blob!),
        (e: { statusCode?: number }) => e.statusCode === 409,
      );
      await (await client.beginDeleteSecret('backed-up', poll)).pollUntilDone();
      await client.purgeDeletedSecret('backed-up');
      const restored = await client.restoreSecretBackup(blob!);
      assert.equal(restored.name, 'backed-up');
      assert.equal(restored.version, b.properties.version);
      assert.equal((await client.getSecret('backed-up')).value, 'two');
      const old = await client.getSecret('backed-up', { version: a.properties.version! });
      assert.equal(old.value, 'one');
      assert.deepEqual(old.properties.tags, { k: 'v' });
    });

    test('the purge job purges what is due (under the job lock on PostgreSQL)', async () => {
      await client.setSecret('purge-me', 'x');
      await (await client.beginDeleteSecret('purge-me', poll)).pollUntilDone();
      assert.ok(
        await s.services.jobs.runNow('vault-purge', Date.now() + 60_000),
        "await s.services.jobs.runNow('vault-purge', Date.now() + 60_000)",
      );
      assert.equal((await client.getDeletedSecret('purge-me')).name, 'purge-me', 'not due yet');
      assert.ok(
        await s.services.jobs.runNow('vault-purge', Date.now() + 91 * 86_400_000),
        "await s.services.jobs.runNow('vault-purge', Date.now() + 91 * 86_400_000)",
      );
      await assert.rejects(
        client.getDeletedSecret('purge-me'),
        (e: { statusCode?: number }) => e.statusCode === 404,
      );
    });
  });

describe('the JS SDK and the port-form challenge', () => {
  let s: TestServer;
  after(async () => {
    await s?.stop();
  });

  test('default options: the challenge names https://vault.localhost:{port}, the SDK gets a token for it', async () => {
    s = await startTestServer();
    const vault = await putVault(s, 'portvault');
    const sp = await vaultPrincipal(s, 'port-officer');
    await grant(s, sp.id, 'Key Vault Secrets Officer', vault.id);
    const seen: { challenge?: string; audience?: string } = {};
    const client = new SecretClient(s.vaultUrl('portvault'), sp.credential, {
      agent: s.agent,
      additionalPolicies: [
        {
          position: 'perRetry',
          policy: {
            name: 'observe',
            async sendRequest(req, next) {
              const auth = req.headers.get('authorization');
              if (auth) seen.audience = String(decodeJwt(auth.slice('Bearer '.length)).aud);
              const res = await next(req);
              seen.challenge ??= res.headers.get('www-authenticate');
              return res;
            },
          },
        },
      ],
    });
    await client.setSecret('port-form', 'works');
    assert.equal((await client.getSecret('port-form')).value, 'works');
    const port = new URL(s.info.authority).port;
    assert.match(seen.challenge ?? '', new RegExp(`resource="https://vault\\.localhost:${port}"$`));
    assert.equal(seen.audience, `https://vault.localhost:${port}`);
  });
});
