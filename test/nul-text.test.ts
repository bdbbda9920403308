import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { putIdentity, uaiId } from './helpers/identity.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import { grant, putVault, vaultPrincipal, vaultToken } from './helpers/vault.js';

const GH = 'https://token.actions.githubusercontent.com';
const CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';

/**
 * Text holding NUL (U+0000) where a client may put it. PostgreSQL cannot store NUL in text, and a
 * secret's contentType, a federated credential's description or a token request's username
 * holding one was a 500 there (while SQLite stored it): on both stores it is now a 400 in the
 * API's own shape, and nothing is written.
 */
for (const store of ['sqlite', 'postgres'] as const) {
  describe(`NUL in request text (${store})`, () => {
    let s: TestServer;
    let schema: TestSchema | undefined;
    before(async () => {
      schema = store === 'postgres' ? await createTestSchema() : undefined;
      s = await startTestApp({
        ...(schema ? { storageUrl: schema.url } : {}),
        federation: { allowedIssuers: [GH] },
      });
    });
    after(async () => {
      await s?.stop();
      await schema?.drop();
    });

    test("a secret's contentType: 400 BadParameter, no version written", async () => {
      const v = await putVault(s, 'nulvault');
      const sp = await vaultPrincipal(s, 'nul-officer');
      await grant(s, sp.id, 'Key Vault Secrets Officer', v.id);
      const headers = { authorization: `Bearer ${await vaultToken(s, sp)}` };
      const r = await s.request('PUT', `${s.vaultUrl('nulvault')}/secrets/nul-s?api-version=7.5`, {
        headers,
        json: { value: 'v', contentType: 'text/a\u0000b' },
      });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.code, 'BadParameter', r.text);
      const got = await s.request('GET', `${s.vaultUrl('nulvault')}/secrets/nul-s?api-version=7.5`, {
        headers,
      });
      assert.equal(got.status, 404, 'no version written');
      // A value may hold NUL: it is stored encrypted, as bytes.
      const ok = await s.request('PUT', `${s.vaultUrl('nulvault')}/secrets/nul-s?api-version=7.5`, {
        headers,
        json: { value: 'a\u0000b' },
      });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.value, 'a\u0000b');
    });

    test("a federated credential's description: 400 BadParameter, nothing created", async () => {
      await putIdentity(s, 'nul-id');
      const headers = { authorization: `Bearer ${await s.adminToken()}` };
      const url = `${uaiId(s, 'nul-id')}/federatedIdentityCredentials/nul-fic?api-version=2023-01-31`;
      const r = await s.request('PUT', url, {
        headers,
        json: {
          properties: {
            issuer: GH,
            subject: 's',
            audiences: ['api://AzureADTokenExchange'],
            description: 'a\u0000b',
          },
        },
      });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.code, 'BadParameter', r.text);
      assert.equal((await s.request('GET', url, { headers })).status, 404, 'nothing created');
    });

    test("a token request's username: 400 invalid_request (OAuth shape), not a server_error", async () => {
      const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'password',
          client_id: CLI,
          username: 'a\u0000b@latchkey.localhost',
          password: 'x',
          scope: `${s.info.vaultResource}/.default`,
        },
      });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error, 'invalid_request', r.text);
    });
  });
}
