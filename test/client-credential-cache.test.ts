import assert from 'node:assert/strict';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { createChangeCache } from '../src/lib/change-cache.js';
import { fakeClock } from '../src/lib/clock.js';
import type { ChangeTopic, RelayableChangeBus } from '../src/lib/events.js';
import { assertOAuthError, createServicePrincipal, secretTokenRequest } from './helpers/authority.js';
import { selfSignedRsaCert, type TestCertificate } from './helpers/certs.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestApp, type TestServer } from './helpers/server.js';

/**
 * Issue 19, hot spot 2: the token endpoint's lookups (tenant, application, credentials) come from
 * memory, and a revocation still counts on the very next request, on the node that made it and on
 * every other node sharing the database.
 */

describe('change cache: unit', () => {
  test('bounded, least recently used first, expires, and a read under way during a drop is not kept', () => {
    const clock = fakeClock(0);
    const stats = { hits: 0, misses: 0 };
    const c = createChangeCache<string>({ clock, max: 2, maxAgeMs: 1000, stats });
    c.put('a', 'A', c.mark());
    c.put('b', 'B', c.mark());
    assert.equal(c.get('a'), 'A');
    c.put('c', 'C', c.mark());
    assert.equal(c.size, 2);
    assert.equal(c.get('b'), undefined, 'b was the least recently used');
    clock.advance(1000);
    assert.equal(c.get('a'), undefined, 'stale after maxAgeMs');
    const mark = c.mark();
    c.dropWhere((v) => v === 'C');
    c.put('d', 'D', mark);
    assert.equal(c.get('d'), undefined, 'read before the drop: not cached');
    assert.deepEqual(stats, { hits: 1, misses: 3 });
    // evict forgets one entry without spoiling reads under way (a re-read, not a change).
    c.put('e', 'E', c.mark());
    const m2 = c.mark();
    c.evict('e');
    assert.equal(c.size, 0);
    c.put('f', 'F', m2);
    assert.equal(c.get('f'), 'F');
  });
});

const admin = async (s: TestServer) => ({ authorization: `Bearer ${await s.adminToken()}` });

/** client_credentials with an RFC 7523 assertion signed by `cert` (a new jti each time). */
async function assertionRequest(s: TestServer, appId: string, cert: TestCertificate) {
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({
    aud: `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/token`,
    iss: appId,
    sub: appId,
    jti: randomUUID(),
    nbf: now,
    exp: now + 600,
  })
    .setProtectedHeader({ alg: 'RS256', 'x5t#S256': cert.x5tS256 })
    .sign(createPrivateKey(cert.keyPem));
  return s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'client_credentials',
      client_id: appId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: `${s.info.vaultResource}/.default`,
    },
  });
}

async function addCertificate(s: TestServer, id: string, cert: TestCertificate): Promise<string> {
  const r = await s.request('POST', `/api/directory/servicePrincipals/${id}/credentials`, {
    headers: await admin(s),
    json: { type: 'AsymmetricX509Cert', append: true, certificate: cert.certPem },
  });
  assert.equal(r.status, 201, r.text);
  return r.json.keyId as string;
}

async function removeCredential(s: TestServer, id: string, keyId: string) {
  const r = await s.request('DELETE', `/api/directory/servicePrincipals/${id}/credentials/${keyId}`, {
    headers: await admin(s),
  });
  assert.equal(r.status, 204, r.text);
}

async function setEnabled(s: TestServer, id: string, enabled: boolean) {
  const r = await s.request('PATCH', `/api/directory/servicePrincipals/${id}`, {
    headers: await admin(s),
    json: { accountEnabled: enabled },
  });
  assert.equal(r.status, 200, r.text);
}

const cacheHits = (s: TestServer) => ({
  client: s.services.metrics.caches.client.hits,
  credential: s.services.metrics.caches.credential.hits,
  tenant: s.services.metrics.caches.tenant.hits,
});

/**
 * The revocation cases, run with `a` making every change and `b` answering the token requests
 * (the same node, or another node on the same PostgreSQL database).
 */
function revocationCases(nodes: () => { a: TestServer; b: TestServer }) {
  let cert: TestCertificate;
  before(async () => {
    cert = await selfSignedRsaCert('cache-client');
  });

  test('a removed client secret is refused on the very next request', async () => {
    const { a, b } = nodes();
    const p = await createServicePrincipal(a, { displayName: 'cache-secret' });
    const before = cacheHits(b);
    for (let i = 0; i < 3; i++)
      assert.equal((await secretTokenRequest(b, { appId: p.appId, secret: p.secret! })).status, 200);
    const hits = cacheHits(b);
    assert.ok(hits.client > before.client, 'the application came from memory');
    assert.ok(hits.credential > before.credential, 'its credentials came from memory');
    assert.ok(hits.tenant > before.tenant, 'the tenant came from memory');
    await removeCredential(a, p.id, p.keyId!);
    const r = await secretTokenRequest(b, { appId: p.appId, secret: p.secret! });
    assertOAuthError(r, 401, 'invalid_client');
    assert.deepEqual(r.json.error_codes, [7000215]);
  });

  test('a removed certificate is refused on the very next request', async () => {
    const { a, b } = nodes();
    const p = await createServicePrincipal(a, { displayName: 'cache-cert' });
    const keyId = await addCertificate(a, p.id, cert);
    for (let i = 0; i < 3; i++) assert.equal((await assertionRequest(b, p.appId, cert)).status, 200);
    await removeCredential(a, p.id, keyId);
    const r = await assertionRequest(b, p.appId, cert);
    assertOAuthError(r, 401, 'invalid_client');
    assert.match(r.json.error_description, /not registered for this client/);
  });

  test('a disabled application is refused on the very next request (secret and certificate)', async () => {
    const { a, b } = nodes();
    const p = await createServicePrincipal(a, { displayName: 'cache-disable' });
    await addCertificate(a, p.id, cert);
    for (let i = 0; i < 2; i++) {
      assert.equal((await secretTokenRequest(b, { appId: p.appId, secret: p.secret! })).status, 200);
      assert.equal((await assertionRequest(b, p.appId, cert)).status, 200);
    }
    await setEnabled(a, p.id, false);
    assertOAuthError(
      await secretTokenRequest(b, { appId: p.appId, secret: p.secret! }),
      400,
      'unauthorized_client',
    );
    assertOAuthError(await assertionRequest(b, p.appId, cert), 400, 'unauthorized_client');
    // Enabled again: works at once (a refusal is never served from memory).
    await setEnabled(a, p.id, true);
    assert.equal((await secretTokenRequest(b, { appId: p.appId, secret: p.secret! })).status, 200);
  });

  test('a deleted application is refused on the very next request', async () => {
    const { a, b } = nodes();
    const p = await createServicePrincipal(a, { displayName: 'cache-delete' });
    for (let i = 0; i < 2; i++)
      assert.equal((await secretTokenRequest(b, { appId: p.appId, secret: p.secret! })).status, 200);
    const r = await a.request('DELETE', `/api/directory/servicePrincipals/${p.id}`, {
      headers: await admin(a),
    });
    assert.equal(r.status, 204, r.text);
    assertOAuthError(
      await secretTokenRequest(b, { appId: p.appId, secret: p.secret! }),
      400,
      'unauthorized_client',
    );
  });

  test('a credential added after the cache was filled works at once', async () => {
    const { a, b } = nodes();
    const p = await createServicePrincipal(a, { displayName: 'cache-add' });
    assert.equal((await secretTokenRequest(b, { appId: p.appId, secret: p.secret! })).status, 200);
    const r = await a.request('POST', `/api/directory/servicePrincipals/${p.id}/credentials`, {
      headers: await admin(a),
      json: { type: 'Password', append: true },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(
      (await secretTokenRequest(b, { appId: p.appId, secret: r.json.secretText as string })).status,
      200,
    );
    await addCertificate(a, p.id, cert);
    assert.equal((await assertionRequest(b, p.appId, cert)).status, 200);
  });

  test('a client of another tenant is never found through the cache', async () => {
    const { a, b } = nodes();
    const p = await createServicePrincipal(a, { displayName: 'cache-tenant' });
    assert.equal((await secretTokenRequest(b, { appId: p.appId, secret: p.secret! })).status, 200);
    const t = await a.services.tenants.create({ displayName: 'Other', domain: `o${Date.now()}.example` });
    const r = await secretTokenRequest(b, { appId: p.appId, secret: p.secret! }, undefined, t.id);
    assertOAuthError(r, 400, 'unauthorized_client');
  });
}

describe('client credential cache: one node (SQLite)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestApp();
  });
  after(async () => {
    await s?.stop();
  });
  revocationCases(() => ({ a: s, b: s }));
});

describe('client credential cache: two nodes on one PostgreSQL', () => {
  let schema: TestSchema;
  let a: TestServer;
  let b: TestServer;
  /** Node B's change notifications from A, held back while `late` (as on a loaded machine). */
  let late = false;
  const held: [ChangeTopic, string][] = [];
  before(async () => {
    schema = await createTestSchema();
    a = await startTestApp({ storageUrl: schema.url });
    b = await startTestApp({ storageUrl: schema.url, dataDir: a.dataDir });
    const busB = b.services.bus as RelayableChangeBus;
    const deliver = busB.deliver.bind(busB);
    busB.deliver = (t, i) => {
      if (late) held.push([t, i]);
      else deliver(t, i);
    };
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    await schema?.drop();
  });

  describe('notifications on time', () => {
    revocationCases(() => ({ a, b }));
  });

  describe('notifications late: a cached answer is confirmed against the database', () => {
    before(() => {
      late = true;
    });
    after(() => {
      late = false;
      const busB = b.services.bus as RelayableChangeBus;
      for (const [t, i] of held.splice(0)) busB.deliver(t, i);
    });
    revocationCases(() => ({ a, b }));
  });
});
