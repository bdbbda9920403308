import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeJwt } from 'jose';
import {
  assertOAuthError,
  type CreatedPrincipal,
  createServicePrincipal,
  secretTokenRequest,
} from './helpers/authority.js';
import { startTestApp, type TestServer } from './helpers/server.js';

const CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Row counts of every table a token request could touch. */
async function snapshot(s: TestServer): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of [
    'used_assertions',
    'refresh_tokens',
    'principals',
    'credentials',
    'signing_keys',
    'tenants',
  ]) {
    out[t] = (await s.services.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t}`))!.n;
  }
  return out;
}

describe('token endpoint', () => {
  let s: TestServer;
  let app: CreatedPrincipal;
  let vaultScope: string;
  let mgmtScope: string;
  let tokenPath: string;

  before(async () => {
    // The bad-input matrix fails many times from one address: keep the throttle out of the way (tested below).
    s = await startTestApp({ limits: { authFailureLimit: 10_000, authFailureSlowAfter: 10_000 } });
    app = await createServicePrincipal(s, { displayName: 'token-endpoint-app' });
    vaultScope = `${s.info.vaultResource}/.default`;
    mgmtScope = `${s.info.managementResource}/.default`;
    tokenPath = `/${s.info.tenantId}/oauth2/v2.0/token`;
  });
  after(async () => {
    await s?.stop();
  });

  describe('bad input: OAuth-shaped 4xx, never a 5xx, nothing changes', () => {
    const cc = () => ({
      grant_type: 'client_credentials',
      client_id: app.appId,
      client_secret: app.secret!,
      scope: vaultScope,
    });
    const without = (k: string) => {
      const f: Record<string, string> = cc();
      delete f[k];
      return f;
    };
    type Case = {
      name: string;
      status: number;
      error: string;
      code?: number;
      send: () => ReturnType<TestServer['request']>;
    };
    const form = (f: Record<string, string>, path?: string) => () =>
      s.request('POST', path ?? tokenPath, { form: f });
    const raw =
      (body: string | Buffer, headers: Record<string, string> = FORM, path?: string) =>
      () =>
        s.request('POST', path ?? tokenPath, { body, headers });
    const cases: Case[] = [
      {
        name: 'missing grant_type',
        status: 400,
        error: 'invalid_request',
        code: 900144,
        send: () => form(without('grant_type'))(),
      },
      {
        name: 'missing client_id',
        status: 400,
        error: 'invalid_request',
        code: 900144,
        send: () => form(without('client_id'))(),
      },
      {
        name: 'missing scope',
        status: 400,
        error: 'invalid_request',
        code: 900144,
        send: () => form(without('scope'))(),
      },
      {
        name: 'empty grant_type',
        status: 400,
        error: 'invalid_request',
        send: () => form({ ...cc(), grant_type: '' })(),
      },
      {
        name: 'unknown grant type',
        status: 400,
        error: 'unsupported_grant_type',
        code: 70003,
        send: () => form({ ...cc(), grant_type: 'urn:evil' })(),
      },
      {
        name: 'authorization_code without redirect_uri and code_verifier (test/authorize.test.ts has the flow)',
        status: 400,
        error: 'invalid_request',
        send: () => form({ ...cc(), grant_type: 'authorization_code', code: 'x' })(),
      },
      {
        name: 'oversized client_secret',
        status: 400,
        error: 'invalid_request',
        send: () => form({ ...cc(), client_secret: 'x'.repeat(20_000) })(),
      },
      {
        name: 'oversized scope',
        status: 400,
        error: 'invalid_request',
        send: () => form({ ...cc(), scope: 'y'.repeat(20_000) })(),
      },
      {
        name: 'duplicated grant_type',
        status: 400,
        error: 'invalid_request',
        code: 90015,
        send: () => raw(`${new URLSearchParams(cc())}&grant_type=password`)(),
      },
      {
        name: 'duplicated client_secret',
        status: 400,
        error: 'invalid_request',
        code: 90015,
        send: () => raw(`${new URLSearchParams(cc())}&client_secret=other`)(),
      },
      {
        name: 'JSON body instead of a form',
        status: 415,
        error: 'invalid_request',
        send: () => s.request('POST', tokenPath, { json: cc() }),
      },
      {
        name: 'no content type',
        status: 415,
        error: 'invalid_request',
        send: () => raw(new URLSearchParams(cc()).toString(), {})(),
      },
      {
        name: 'octet-stream body',
        status: 415,
        error: 'invalid_request',
        send: raw(Buffer.from([0, 1, 2, 255]), { 'content-type': 'application/octet-stream' }),
      },
      {
        name: 'garbage bytes as a form',
        status: 400,
        error: 'invalid_request',
        send: raw(Buffer.from([0xff, 0xfe, 0x00, 0x25, 0x25, 0x3d, 0x26, 0xc3])),
      },
      {
        name: 'broken percent-encoding',
        status: 400,
        error: 'unsupported_grant_type',
        send: raw('grant_type=%E0%A4%A&client_id=%'),
      },
      {
        name: 'prototype keys',
        status: 400,
        error: 'invalid_request',
        send: raw('__proto__=x&constructor=y&toString=z'),
      },
      {
        name: 'body over the token endpoint limit (64 KiB)',
        status: 413,
        error: 'invalid_request',
        send: raw(`a=${'x'.repeat(70_000)}`),
      },
      {
        name: 'body over the server limit',
        status: 413,
        error: 'invalid_request',
        send: raw(`a=${'x'.repeat(400_000)}`),
      },
      {
        name: 'unknown tenant (GUID)',
        status: 400,
        error: 'invalid_request',
        code: 90002,
        send: () => form(cc(), `/${randomUUID()}/oauth2/v2.0/token`)(),
      },
      {
        name: 'unknown tenant (domain)',
        status: 400,
        error: 'invalid_request',
        code: 90002,
        send: () => form(cc(), '/nope.example/oauth2/v2.0/token')(),
      },
      {
        name: 'tenant segment not valid UTF-8',
        status: 400,
        error: 'invalid_request',
        send: () => form(cc(), '/%ff%00/oauth2/v2.0/token')(),
      },
      {
        name: 'tenant segment too long',
        status: 414,
        error: 'invalid_request',
        send: () => form(cc(), `/${'a'.repeat(500)}/oauth2/v2.0/token`)(),
      },
      {
        name: 'non-GUID client id',
        status: 400,
        error: 'unauthorized_client',
        code: 700016,
        send: () => form({ ...cc(), client_id: 'not-a-guid' })(),
      },
      {
        name: 'unknown client id',
        status: 400,
        error: 'unauthorized_client',
        code: 700016,
        send: () => form({ ...cc(), client_id: randomUUID() })(),
      },
      {
        name: 'the CLI (a public client) with a secret',
        status: 400,
        error: 'unauthorized_client',
        send: () => form({ ...cc(), client_id: CLI })(),
      },
      {
        name: 'no client authentication',
        status: 401,
        error: 'invalid_client',
        code: 7000218,
        send: () => form(without('client_secret'))(),
      },
      {
        name: 'wrong secret',
        status: 401,
        error: 'invalid_client',
        code: 7000215,
        send: () => form({ ...cc(), client_secret: 'lks~wrong' })(),
      },
      {
        name: 'secret and assertion together',
        status: 400,
        error: 'invalid_request',
        code: 90014,
        send: () => form({ ...cc(), client_assertion: 'a.b.c', client_assertion_type: ASSERTION_TYPE })(),
      },
      {
        name: 'assertion with the wrong assertion type',
        status: 400,
        error: 'invalid_request',
        send: () =>
          form({
            ...without('client_secret'),
            client_assertion: 'a.b.c',
            client_assertion_type: 'password',
          })(),
      },
      {
        name: 'malformed assertion',
        status: 401,
        error: 'invalid_client',
        code: 700027,
        send: () =>
          form({
            ...without('client_secret'),
            client_assertion: 'x'.repeat(100),
            client_assertion_type: ASSERTION_TYPE,
          })(),
      },
      {
        name: 'scope for an unknown resource',
        status: 400,
        error: 'invalid_scope',
        code: 500011,
        send: () => form({ ...cc(), scope: 'https://graph.microsoft.com/.default' })(),
      },
      {
        name: 'scope for an unknown api:// app',
        status: 400,
        error: 'invalid_scope',
        code: 500011,
        send: () => form({ ...cc(), scope: `api://${randomUUID()}/.default` })(),
      },
      {
        name: 'scope without /.default (app)',
        status: 400,
        error: 'invalid_scope',
        send: () => form({ ...cc(), scope: `${s.info.vaultResource}/user_impersonation` })(),
      },
      {
        name: 'two resource scopes',
        status: 400,
        error: 'invalid_scope',
        code: 70011,
        send: () => form({ ...cc(), scope: `${vaultScope} ${mgmtScope}` })(),
      },
      {
        name: 'only OIDC scopes',
        status: 400,
        error: 'invalid_scope',
        send: () => form({ ...cc(), scope: 'openid profile offline_access' })(),
      },
      {
        name: 'eleven scopes',
        status: 400,
        error: 'invalid_scope',
        send: () => form({ ...cc(), scope: Array(11).fill(vaultScope).join(' ') })(),
      },
      {
        name: 'GET on the token endpoint',
        status: 405,
        error: 'invalid_request',
        code: 900561,
        send: () => s.request('GET', tokenPath),
      },
      {
        name: 'password grant without a password',
        status: 400,
        error: 'invalid_request',
        send: () =>
          form({ grant_type: 'password', client_id: CLI, username: s.admin.userName, scope: mgmtScope })(),
      },
      {
        name: 'password grant for a confidential client',
        status: 400,
        error: 'unauthorized_client',
        send: () =>
          form({
            grant_type: 'password',
            client_id: app.appId,
            username: s.admin.userName,
            password: s.admin.password,
            scope: mgmtScope,
          })(),
      },
      {
        name: 'password grant with a wrong password',
        status: 400,
        error: 'invalid_grant',
        code: 50126,
        send: () =>
          form({
            grant_type: 'password',
            client_id: CLI,
            username: s.admin.userName,
            password: 'wrong-password-123',
            scope: mgmtScope,
          })(),
      },
      {
        name: 'password grant for an unknown user',
        status: 400,
        error: 'invalid_grant',
        code: 50126,
        send: () =>
          form({
            grant_type: 'password',
            client_id: CLI,
            username: 'nobody@latchkey.localhost',
            password: 'wrong-password-123',
            scope: mgmtScope,
          })(),
      },
      {
        name: 'refresh_token grant with a bogus token',
        status: 400,
        error: 'invalid_grant',
        code: 70008,
        send: () => form({ grant_type: 'refresh_token', client_id: CLI, refresh_token: 'lkr~bogus' })(),
      },
      {
        name: 'refresh_token grant without a token',
        status: 400,
        error: 'invalid_request',
        send: () => form({ grant_type: 'refresh_token', client_id: CLI })(),
      },
    ];

    for (const c of cases) {
      test(c.name, async () => {
        const before = await snapshot(s);
        const r = await c.send();
        assertOAuthError(r, c.status, c.error);
        if (c.code !== undefined) assert.deepEqual(r.json.error_codes, [c.code]);
        assert.equal(r.headers['cache-control'], 'no-store');
        assert.ok(!r.text.includes(app.secret!), 'no secret in the answer');
        assert.match(r.json.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
        assert.deepEqual(await snapshot(s), before);
      });
    }

    test('the correlation id echoes client-request-id; the trace id is the request id', async () => {
      const id = randomUUID();
      const r = await s.request('POST', tokenPath, {
        form: without('grant_type'),
        headers: { 'client-request-id': id },
      });
      assert.equal(r.json.correlation_id, id);
      assert.equal(r.json.trace_id, r.headers['x-ms-request-id']);
      assert.ok(
        r.json.error_description.includes(`Trace ID: ${r.json.trace_id}`),
        "r.json.error_description.includes('Trace ID: {r.json.trace_id}')",
      );
    });

    test('a body refused on an OAuth path no route takes is answered in OAuth shape (fuzz seed 2009431498)', async () => {
      // `/./oauth2/...` is normalised to `/oauth2/...`, which no route serves; broken JSON is refused first.
      for (const path of ['/./oauth2/v2.0/devicecode', '/./oauth2/v2.0/token', '/%2e/oauth2/token']) {
        const r = await s.request('POST', path, {
          headers: { 'content-type': 'application/json' },
          body: '{',
        });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error, 'invalid_request', `${path}: ${r.text}`);
      }
      // Elsewhere the Azure shape stays.
      const arm = await s.request('POST', '/subscriptions/x/nothing', {
        headers: { 'content-type': 'application/json' },
        body: '{',
      });
      assert.equal(typeof arm.json.error.code, 'string', arm.text);
    });

    test('random forms never produce a 5xx or change anything (property)', async () => {
      const before = await snapshot(s);
      const key = fc.oneof(
        fc.constantFrom(
          'grant_type',
          'client_id',
          'client_secret',
          'scope',
          'client_assertion',
          'client_assertion_type',
          'username',
          'password',
          'refresh_token',
          'resource',
        ),
        fc.string({ maxLength: 12 }),
      );
      const value = fc.oneof(
        fc.constantFrom(
          'client_credentials',
          'password',
          'refresh_token',
          app.appId,
          vaultScope,
          CLI,
          ASSERTION_TYPE,
          '',
        ),
        fc.string({ maxLength: 40 }),
        fc.uuid(),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(key, value), { maxLength: 8 }), async (pairs) => {
          const body = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
          const r = await s.request('POST', tokenPath, { body, headers: FORM });
          if (r.status === 200) return; // a random form may be a valid request (not with these values, but be fair)
          assert.ok(r.status >= 400 && r.status < 500, `${r.status} for ${body}: ${r.text}`);
          assert.equal(typeof r.json?.error, 'string');
        }),
        { numRuns: 60 },
      );
      assert.deepEqual(await snapshot(s), before);
    });
  });

  describe('scopes and resources', () => {
    test('vault and management resources (with or without a trailing slash)', async () => {
      for (const [scope, aud] of [
        [vaultScope, s.info.vaultResource],
        [`${s.info.vaultResource}//.default`, s.info.vaultResource],
        [mgmtScope, s.info.managementResource],
        [`${s.info.managementResource.toUpperCase()}/.default`, s.info.managementResource],
      ] as const) {
        const r = await secretTokenRequest(s, { appId: app.appId, secret: app.secret! }, scope);
        assert.equal(r.status, 200, `${scope}: ${r.text}`);
        assert.equal(decodeJwt(r.json.access_token).aud, aud);
      }
    });

    test('a registered application ID URI (api://...) and api://{appId} are resources', async () => {
      const api = await createServicePrincipal(s, {
        displayName: 'my-api',
        identifierUri: 'api://latchkey-test-api',
      });
      const r = await secretTokenRequest(
        s,
        { appId: app.appId, secret: app.secret! },
        'api://latchkey-test-api/.default',
      );
      assert.equal(r.status, 200, r.text);
      assert.equal(decodeJwt(r.json.access_token).aud, 'api://latchkey-test-api');
      const byAppId = await secretTokenRequest(
        s,
        { appId: app.appId, secret: app.secret! },
        `api://${api.appId}/.default`,
      );
      assert.equal(byAppId.status, 200, byAppId.text);
      assert.equal(decodeJwt(byAppId.json.access_token).aud, 'api://latchkey-test-api');
      const noUri = await createServicePrincipal(s, { displayName: 'no-uri-api' });
      const r2 = await secretTokenRequest(
        s,
        { appId: app.appId, secret: app.secret! },
        `api://${noUri.appId}/.default`,
      );
      assert.equal(r2.status, 200, r2.text);
      assert.equal(decodeJwt(r2.json.access_token).aud, `api://${noUri.appId}`);
    });

    test('no application may take a built-in resource as its ID URI (the vault with any port, the management API)', async () => {
      const port = new URL(s.info.authority).port;
      for (const identifierUri of [
        s.info.vaultResource,
        `${s.info.vaultResource}:${port}/`,
        `${s.info.vaultResource.toUpperCase()}:1`,
        s.info.managementResource,
      ]) {
        const r = await s.request('POST', '/api/directory/servicePrincipals', {
          headers: { authorization: `Bearer ${await s.adminToken()}` },
          json: { displayName: 'squatter', identifierUri },
        });
        assert.equal(r.status, 400, `${identifierUri}: ${r.text}`);
        assert.equal(r.json.error.code, 'BadParameter');
      }
      // A look-alike is an ordinary URI.
      await createServicePrincipal(s, {
        displayName: 'look-alike',
        identifierUri: `${s.info.vaultResource}:${port}/api`,
      });
    });

    test('the v1 endpoint takes resource= instead of scope=', async () => {
      const r = await s.request('POST', `/${s.info.tenantId}/oauth2/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: app.appId,
          client_secret: app.secret!,
          resource: s.info.vaultResource,
        },
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(decodeJwt(r.json.access_token).aud, s.info.vaultResource);
    });
  });

  test('access-token lifetimes are drawn from 60–90 minutes (randomised)', async () => {
    const lifetimes = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const r = await secretTokenRequest(s, { appId: app.appId, secret: app.secret! });
      assert.equal(r.status, 200);
      const c = decodeJwt(r.json.access_token);
      assert.equal(c.exp! - c.iat!, r.json.expires_in);
      assert.ok(r.json.expires_in >= 3600 && r.json.expires_in <= 5400, String(r.json.expires_in));
      lifetimes.add(r.json.expires_in);
    }
    assert.ok(lifetimes.size > 1, 'not a fixed lifetime');
  });

  describe('client secrets', () => {
    test('several secrets per principal all work; deleting one stops only it; a reset replaces them', async () => {
      const p = await createServicePrincipal(s, { displayName: 'multi-secret' });
      const admin = { authorization: `Bearer ${await s.adminToken()}` };
      const add = async (append: boolean) => {
        const r = await s.request('POST', `/api/directory/servicePrincipals/${p.id}/credentials`, {
          headers: admin,
          json: { type: 'Password', append, displayName: 'extra' },
        });
        assert.equal(r.status, 201, r.text);
        assert.match(r.json.secretText, /^lks~/);
        return { keyId: r.json.keyId as string, secret: r.json.secretText as string };
      };
      const second = await add(true);
      const third = await add(true);
      for (const secret of [p.secret!, second.secret, third.secret]) {
        assert.equal((await secretTokenRequest(s, { appId: p.appId, secret })).status, 200);
      }
      const list = await s.request('GET', `/api/directory/servicePrincipals/${p.id}/credentials`, {
        headers: admin,
      });
      assert.equal(list.json.value.length, 3);
      assert.ok(!list.text.includes(second.secret), 'secrets are shown once, never listed');
      const del = await s.request(
        'DELETE',
        `/api/directory/servicePrincipals/${p.id}/credentials/${second.keyId}`,
        {
          headers: admin,
        },
      );
      assert.equal(del.status, 204);
      assertOAuthError(
        await secretTokenRequest(s, { appId: p.appId, secret: second.secret }),
        401,
        'invalid_client',
      );
      assert.equal((await secretTokenRequest(s, { appId: p.appId, secret: p.secret! })).status, 200);
      assert.equal((await secretTokenRequest(s, { appId: p.appId, secret: third.secret })).status, 200);
      const fourth = await add(false);
      assertOAuthError(
        await secretTokenRequest(s, { appId: p.appId, secret: p.secret! }),
        401,
        'invalid_client',
      );
      assertOAuthError(
        await secretTokenRequest(s, { appId: p.appId, secret: third.secret }),
        401,
        'invalid_client',
      );
      assert.equal((await secretTokenRequest(s, { appId: p.appId, secret: fourth.secret })).status, 200);
    });

    test('an expired secret is refused; the principal’s other secret still works', async () => {
      const p = await createServicePrincipal(s, { displayName: 'expiring' });
      const other = await s.services.credentials.addSecret(s.info.tenantId, p.id, { days: 1 });
      assert.equal((await secretTokenRequest(s, { appId: p.appId, secret: p.secret! })).status, 200);
      await s.services.db.run('UPDATE credentials SET end_at = $1 WHERE id = $2', [
        Date.now() - 1000,
        p.keyId!,
      ]);
      // SQL behind the code's back: tell the caches, as every change made through the code does.
      s.services.bus.publish('credential', p.id);
      const r = await secretTokenRequest(s, { appId: p.appId, secret: p.secret! });
      assertOAuthError(r, 401, 'invalid_client');
      assert.deepEqual(r.json.error_codes, [7000215]);
      assert.equal((await secretTokenRequest(s, { appId: p.appId, secret: other.secretText })).status, 200);
    });

    test('a secret is stored as a hash only', async () => {
      const row = await s.services.db.get<{ secret_hash: Buffer; hint: string }>(
        'SELECT secret_hash, hint FROM credentials WHERE id = $1',
        [app.keyId!],
      );
      assert.equal(row!.secret_hash.length, 32);
      assert.ok(
        !row!.secret_hash.toString('latin1').includes(app.secret!),
        "!row!.secret_hash.toString('latin1').includes(app.secret!)",
      );
      assert.ok(app.secret!.startsWith(row!.hint), 'app.secret!.startsWith(row!.hint)');
      assert.ok(row!.hint.length <= 8, 'row!.hint.length <= 8');
    });
  });

  describe('password grant and refresh tokens', () => {
    const userName = 'dev@latchkey.localhost';
    const password = 'correct horse battery staple';
    let userId: string;
    before(async () => {
      userId = (
        await s.services.principals.createUser(s.info.tenantId, { userName, displayName: 'Dev', password })
      ).id;
    });
    const passwordGrant = (scope = `${mgmtScope} offline_access`) =>
      s.request('POST', tokenPath, {
        form: { grant_type: 'password', client_id: CLI, username: userName.toUpperCase(), password, scope },
      });
    const refresh = (token: string, clientId = CLI, scope?: string) =>
      s.request('POST', tokenPath, {
        form: {
          grant_type: 'refresh_token',
          client_id: clientId,
          refresh_token: token,
          ...(scope ? { scope } : {}),
        },
      });
    const refreshCount = async () =>
      (await s.services.db.get<{ n: number }>(
        'SELECT COUNT(*) AS n FROM refresh_tokens WHERE principal_id = $1 AND used_at IS NULL',
        [userId],
      ))!.n;

    test('a user gets a user token (idtyp user, scp, name) and a refresh token with offline_access', async () => {
      const r = await passwordGrant();
      assert.equal(r.status, 200, r.text);
      assert.match(r.json.refresh_token, /^lkr~/);
      assert.equal(r.json.scope, `${s.info.managementResource}/user_impersonation`);
      const c = decodeJwt(r.json.access_token);
      assert.equal(c.idtyp, 'user');
      assert.equal(c.oid, userId);
      assert.equal(c.preferred_username, userName);
      assert.equal(c.scp, 'user_impersonation');
      assert.equal(c.azp, CLI);
      const noOffline = await passwordGrant(mgmtScope);
      assert.equal(noOffline.status, 200);
      assert.equal(noOffline.json.refresh_token, undefined);
    });

    test('refresh rotates: the new token works, the used one is refused (and revokes its successor), the count of live tokens stays put', async () => {
      const first = (await passwordGrant()).json.refresh_token as string;
      const before = await refreshCount();
      const r = await refresh(first);
      assert.equal(r.status, 200, r.text);
      assert.notEqual(r.json.refresh_token, first);
      assert.equal(decodeJwt(r.json.access_token).oid, userId);
      assert.equal(await refreshCount(), before);
      // a refresh token for another resource
      const vault = await refresh(r.json.refresh_token, CLI, `${s.info.vaultResource}/.default`);
      assert.equal(vault.status, 200, vault.text);
      assert.equal(decodeJwt(vault.json.access_token).aud, s.info.vaultResource);
      const reuse = await refresh(first);
      assertOAuthError(reuse, 400, 'invalid_grant');
      assertOAuthError(await refresh(vault.json.refresh_token), 400, 'invalid_grant');
      assert.equal(await refreshCount(), before - 1);
    });

    test('a refresh token is bound to its client', async () => {
      const rt = (await passwordGrant()).json.refresh_token as string;
      assertOAuthError(await refresh(rt, randomUUID()), 400, 'invalid_grant');
      assert.equal((await refresh(rt)).status, 200);
    });

    test('two concurrent uses of one refresh token: exactly one wins', async () => {
      const rt = (await passwordGrant()).json.refresh_token as string;
      const results = await Promise.all([refresh(rt), refresh(rt), refresh(rt)]);
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 400, 400]);
      // the same race without HTTP in between, so the requests really interleave
      const rt2 = (await passwordGrant()).json.refresh_token as string;
      const ctx = {
        tenant: s.info.tenantId,
        form: { grant_type: 'refresh_token', client_id: CLI, refresh_token: rt2 },
        issuerBase: s.info.authority,
        clientIp: '192.0.2.1',
      };
      const settled = await Promise.allSettled([1, 2, 3, 4].map(() => s.services.tokenEndpoint.token(ctx)));
      assert.equal(settled.filter((x) => x.status === 'fulfilled').length, 1);
    });

    test('a disabled user can neither sign in nor refresh; enabling again does not revive the refresh token', async () => {
      const rt = (await passwordGrant()).json.refresh_token as string;
      await s.services.principals.setEnabled(s.info.tenantId, userId, false);
      try {
        assertOAuthError(await passwordGrant(), 400, 'invalid_grant');
        assertOAuthError(await refresh(rt), 400, 'invalid_grant');
      } finally {
        await s.services.principals.setEnabled(s.info.tenantId, userId, true);
      }
      assertOAuthError(await refresh(rt), 400, 'invalid_grant');
      assert.equal((await refresh((await passwordGrant()).json.refresh_token)).status, 200);
    });
  });
});

describe('failed client authentication is slowed, then refused with 429', () => {
  let s: TestServer;
  const delayMs = 150;
  before(async () => {
    s = await startTestApp({
      limits: {
        authFailureLimit: 3,
        authFailureSlowAfter: 1,
        authFailureDelayMs: delayMs,
        authFailureWindowMs: 60_000,
      },
    });
  });
  after(async () => {
    await s?.stop();
  });

  test('slowed after the first failure, 429 + Retry-After at the limit, even for the right secret', async () => {
    const p = await createServicePrincipal(s, { displayName: 'throttled' });
    const timed = async (secret: string) => {
      const t0 = performance.now();
      const r = await secretTokenRequest(s, { appId: p.appId, secret });
      return { r, ms: performance.now() - t0 };
    };
    const a = await timed('lks~wrong-1');
    assertOAuthError(a.r, 401, 'invalid_client');
    const b = await timed('lks~wrong-2');
    assertOAuthError(b.r, 401, 'invalid_client');
    assert.ok(b.ms >= delayMs - 5, `second failure slowed (${b.ms} ms)`);
    const c = await timed('lks~wrong-3');
    assertOAuthError(c.r, 401, 'invalid_client');
    assert.ok(c.ms >= 2 * delayMs - 5, `third failure slowed more (${c.ms} ms)`);
    for (const secret of ['lks~wrong-4', p.secret!]) {
      const r = await secretTokenRequest(s, { appId: p.appId, secret });
      assertOAuthError(r, 429, 'temporarily_unavailable');
      assert.deepEqual(r.json.error_codes, [50053]);
      const retry = Number(r.headers['retry-after']);
      assert.ok(
        Number.isInteger(retry) && retry >= 1 && retry <= 60,
        `Retry-After ${r.headers['retry-after']}`,
      );
    }
    // One client's failures do not lock out the other clients behind the same address:
    // an address gets five times a client's budget (NAT, CI runners).
    const passwordGrant = () =>
      s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'password',
          client_id: CLI,
          username: s.admin.userName,
          password: s.admin.password,
          scope: `${s.info.managementResource}/.default`,
        },
      });
    assert.equal((await passwordGrant()).status, 200);
    // Failures across many clients from one address reach the address's limit (3 × 5 = 15).
    for (let i = 0; i < 4; i++) {
      const appId = crypto.randomUUID();
      for (let j = 0; j < 3; j++) await secretTokenRequest(s, { appId, secret: 'lks~wrong' });
    }
    const pw = await passwordGrant();
    assertOAuthError(pw, 429, 'temporarily_unavailable');
  });
});

describe('concurrent password guesses count while they are checked (throttle guard)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestApp({
      limits: { authFailureLimit: 3, authFailureSlowAfter: 100, authFailureWindowMs: 60_000 },
    });
  });
  after(async () => {
    await s?.stop();
  });

  test('13 at once, the right password last: at most the limit are checked, the rest are 429', async () => {
    const attempt = (password: string) =>
      s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'password',
          client_id: CLI,
          username: s.admin.userName,
          password,
          scope: `${s.info.managementResource}/.default`,
        },
      });
    const guesses = Array.from({ length: 12 }, (_, i) => `wrong-${i}`);
    const answers = await Promise.all([...guesses, s.admin.password].map(attempt));
    const statuses = answers.map((r) => r.status);
    // Before the guard, every request passed the throttle's check before the first scrypt ended:
    // 12 × 400 and a 200 for the right password, whatever the limit.
    assert.ok(statuses.filter((c) => c !== 429).length <= 3, `statuses ${statuses.join(' ')}`);
    assert.notEqual(statuses.at(-1), 200, 'the right password, past the limit, is refused');
    assert.ok(statuses.filter((c) => c === 429).length >= 10, `statuses ${statuses.join(' ')}`);
  });
});
