// The per-tenant federation issuer allow-list (docs/federation.md, "Per-tenant issuer allow-list"):
// route rules through inject() (who may read and set it, validation, another tenant's is a 404),
// enforcement when a federated credential is created or updated (ARM and Graph), and at exchange:
// narrowing the list refuses the next exchange of a credential naming a removed issuer (AADSTS700211)
// before any fetch of that issuer; random requests to the route (fast-check). Two nodes on
// PostgreSQL: test/federation.test.ts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { generateKeyPair, SignJWT } from 'jose';
import { fakeClock } from '../src/lib/clock.js';
import { assignRole, servicePrincipal, type TestPrincipal } from './helpers/access.js';
import { arm, putIdentity, uaiId } from './helpers/identity.js';
import { startTestApp, type TestServer } from './helpers/server.js';

const EXCHANGE_AUD = 'api://AzureADTokenExchange';
const SUB = 'repo:org/repo:ref:refs/heads/main';
// Never fetched by the route tests; at exchange, port 1 refuses the connection at once.
const A = 'https://127.0.0.1:1/issuer-a';
const B = 'https://127.0.0.1:1/issuer-b';
const NOT_SERVER = 'https://127.0.0.1:1/issuer-c';

const clock = fakeClock();
let s: TestServer;
let contributor: TestPrincipal;
let reader: TestPrincipal;

const settingsPath = (tenant: string) => `/api/tenants/${tenant}/settings/federation`;
async function settings(method: 'GET' | 'PUT', tenant: string, json?: unknown, token?: string) {
  return s.request(method, settingsPath(tenant), {
    headers: { authorization: `Bearer ${token ?? (await s.adminToken())}` },
    ...(json !== undefined ? { json } : {}),
  });
}
async function setIssuers(list: string[] | null) {
  const r = await settings('PUT', s.info.tenantId, { allowedIssuers: list });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
const putFic = (identity: string, name: string, issuer: string, subject = SUB) =>
  arm(s, 'PUT', `${uaiId(s, identity)}/federatedIdentityCredentials/${name}`, {
    properties: { issuer, subject, audiences: [EXCHANGE_AUD] },
  });

before(async () => {
  s = await startTestApp({
    clock,
    limits: { authFailureLimit: 10_000, authFailureSlowAfter: 10_000 },
    federation: { allowedIssuers: [A, B], fetchTimeoutMs: 1000 },
  });
  contributor = await servicePrincipal(s, 'tenant-contributor');
  await assignRole(s, contributor.id, 'Contributor', '/');
  reader = await servicePrincipal(s, 'tenant-reader');
  await assignRole(s, reader.id, 'Reader', '/');
});
after(async () => {
  await s?.stop();
});

describe('the tenant settings route', () => {
  test("the tenant admin reads and sets the list; it can only narrow the server's; audited", async () => {
    const initial = await settings('GET', s.info.tenantId);
    assert.equal(initial.status, 200, initial.text);
    assert.equal(initial.headers['cache-control'], 'no-store');
    assert.deepEqual(initial.json, {
      tenantId: s.info.tenantId,
      allowedIssuers: null,
      serverAllowedIssuers: [A, B],
      effectiveIssuers: [A, B],
    });
    assert.deepEqual(await setIssuers([A, A]), {
      tenantId: s.info.tenantId,
      allowedIssuers: [A],
      serverAllowedIssuers: [A, B],
      effectiveIssuers: [A],
    });
    // By domain too (the tenant's own).
    const byDomain = await settings('GET', s.info.tenantDomain);
    assert.equal(byDomain.status, 200, byDomain.text);
    assert.deepEqual(byDomain.json.allowedIssuers, [A]);
    // An issuer the server does not allow can never be added.
    const widen = await settings('PUT', s.info.tenantId, { allowedIssuers: [A, NOT_SERVER] });
    assert.equal(widen.status, 400, widen.text);
    assert.match(widen.json.error.message, /not on this server's list.*can only narrow/);
    assert.deepEqual((await settings('GET', s.info.tenantId)).json.allowedIssuers, [A], 'unchanged');
    // Validation of the body.
    for (const body of [
      {},
      { allowedIssuers: 'x' },
      { allowedIssuers: [A], extra: 1 },
      { allowedIssuers: ['x'.repeat(601)] },
      { allowedIssuers: Array.from({ length: 51 }, (_, n) => `${A}${n}`) },
    ]) {
      const r = await settings('PUT', s.info.tenantId, body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
    }
    assert.deepEqual((await setIssuers([])).effectiveIssuers, []);
    assert.deepEqual((await setIssuers(null)).effectiveIssuers, [A, B]);
    await s.services.audit.drain();
    const events = await s.services.audit.list({
      tenantId: s.info.tenantId,
      operation: 'TenantFederationIssuersSet',
    });
    assert.deepEqual(
      events.map((e) => [e.status, e.target, e.details?.allowedIssuers ?? null]).reverse(),
      [
        [200, `/tenants/${s.info.tenantId}`, A],
        [200, `/tenants/${s.info.tenantId}`, ''],
        [200, `/tenants/${s.info.tenantId}`, null],
      ],
      'each change is audited (a refused one changes nothing)',
    );
  });

  test('a Contributor or Reader at the root is refused (403), reading as well as setting', async () => {
    for (const p of [contributor, reader]) {
      const t = await p.token(s.info.managementResource);
      const get = await settings('GET', s.info.tenantId, undefined, t);
      assert.equal(get.status, 403, get.text);
      const put = await settings('PUT', s.info.tenantId, { allowedIssuers: [A] }, t);
      assert.equal(put.status, 403, put.text);
    }
    assert.equal((await settings('GET', s.info.tenantId)).json.allowedIssuers, null, 'unchanged');
  });

  test("another tenant's settings are a 404, as are a tenant that does not exist and an anonymous call", async () => {
    const other = await s.services.tenants.create({ displayName: 'other', domain: 'other-fed.example' });
    for (const ref of [other.id, 'other-fed.example', randomUUID(), 'nope.example']) {
      const get = await settings('GET', ref);
      assert.equal(get.status, 404, `${ref}: ${get.text}`);
      const put = await settings('PUT', ref, { allowedIssuers: [] });
      assert.equal(put.status, 404, `${ref}: ${put.text}`);
    }
    assert.equal(
      await s.services.tenantIssuers.tenantList(other.id),
      null,
      "the other tenant's list untouched",
    );
    const anon = await s.request('GET', settingsPath(s.info.tenantId));
    assert.equal(anon.status, 401, anon.text);
  });

  test("one tenant's list does not narrow another's", async () => {
    const other = await s.services.tenants.create({ displayName: 'other-2' });
    await setIssuers([A]);
    try {
      assert.equal(await s.services.tenantIssuers.refusal(s.info.tenantId, B), 'tenant');
      assert.equal(await s.services.tenantIssuers.refusal(other.id, B), undefined);
      assert.equal(await s.services.tenantIssuers.refusal(other.id, NOT_SERVER), 'server');
    } finally {
      await setIssuers(null);
    }
  });
});

describe('enforced when a federated credential is written', () => {
  test('ARM create and update refuse an issuer the tenant took off; the server list still bounds', async () => {
    await putIdentity(s, 'tenant-fic');
    assert.equal((await putFic('tenant-fic', 'on-b', B)).status, 201);
    await setIssuers([A]);
    try {
      const create = await putFic('tenant-fic', 'new-b', B, 'other-subject');
      assert.equal(create.status, 400, create.text);
      assert.match(create.json.error.message, /not on this tenant's list of allowed federation issuers/);
      const update = await putFic('tenant-fic', 'on-b', B, 'changed-subject');
      assert.equal(update.status, 400, `an update naming the removed issuer: ${update.text}`);
      assert.equal((await putFic('tenant-fic', 'on-a', A)).status, 201, 'an issuer still allowed');
      const server = await putFic('tenant-fic', 'on-c', NOT_SERVER);
      assert.equal(server.status, 400, server.text);
      assert.match(server.json.error.message, /not on this server's list/);
    } finally {
      await setIssuers(null);
    }
  });

  test('Graph create and PATCH refuse an issuer the tenant took off', async () => {
    const headers = { authorization: `Bearer ${await s.adminToken(s.info.authority)}` };
    const app = await s.request('POST', '/v1.0/applications', {
      headers,
      json: { displayName: 'tenant-app' },
    });
    assert.equal(app.status, 201, app.text);
    const base = `/v1.0/applications/${app.json.id}/federatedIdentityCredentials`;
    const body = (name: string, issuer: string) => ({
      name,
      issuer,
      subject: SUB,
      audiences: [EXCHANGE_AUD],
    });
    const onA = await s.request('POST', base, { headers, json: body('on-a', A) });
    assert.equal(onA.status, 201, onA.text);
    await setIssuers([A]);
    try {
      const create = await s.request('POST', base, { headers, json: body('on-b', B) });
      assert.equal(create.status, 400, create.text);
      assert.match(create.json.error.message, /this tenant's list/);
      const patch = await s.request('PATCH', `${base}/${onA.json.id}`, { headers, json: { issuer: B } });
      assert.equal(patch.status, 400, patch.text);
    } finally {
      await setIssuers(null);
    }
  });
});

describe('enforced in provisioning manifests', () => {
  test('a manifest naming an issuer the tenant took off fails its dry run and its apply; nothing changes', async () => {
    const headers = { authorization: `Bearer ${await s.adminToken()}` };
    const manifest = (issuer: string) => ({
      apiVersion: 'latchkey/v1',
      tenant: s.info.tenantDomain,
      identities: [{ name: 'man-fic', federatedCredentials: [{ name: 'ci-main', issuer, subject: SUB }] }],
    });
    await setIssuers([A]);
    try {
      for (const dryRun of [true, false]) {
        const r = await s.request('POST', `/api/provisioning/apply?dryRun=${dryRun}`, {
          headers,
          json: manifest(B),
        });
        assert.equal(r.status, 400, `dryRun=${dryRun}: ${r.text}`);
        assert.match(r.json.error.message, /not on this tenant's list of allowed federation issuers/);
      }
      const absent = await arm(s, 'GET', uaiId(s, 'man-fic'));
      assert.equal(absent.status, 404, 'the refused apply created nothing');
      const ok = await s.request('POST', '/api/provisioning/apply?dryRun=true', {
        headers,
        json: manifest(A),
      });
      assert.equal(ok.status, 200, ok.text);
    } finally {
      await setIssuers(null);
    }
  });
});

describe('enforced at exchange', () => {
  test('narrowing the list refuses the next exchange naming a removed issuer (700211), before any fetch', async () => {
    const id = await putIdentity(s, 'tenant-exchange');
    assert.equal((await putFic('tenant-exchange', 'on-b', B)).status, 201);
    const key = await generateKeyPair('RS256');
    const now = Math.floor(clock.now() / 1000);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(B)
      .setSubject(SUB)
      .setAudience(EXCHANGE_AUD)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(key.privateKey);
    const exchange = () =>
      s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: id.properties.clientId,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
          scope: `${s.info.vaultResource}/.default`,
        },
      });
    // While the issuer is allowed, the exchange goes on to fetch its keys (port 1: unreachable).
    const before = s.services.federation.fetchCount();
    const reached = await exchange();
    assert.deepEqual(reached.json.error_codes, [50166], reached.text);
    assert.equal(s.services.federation.fetchCount(), before + 1, 'the allowed issuer was fetched');
    await setIssuers([A]);
    clock.advance(10_000); // past the failure backoff, so only the list can refuse without a fetch
    try {
      const r = await exchange();
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json.error, 'invalid_client');
      assert.equal(r.json.access_token, undefined, 'no token');
      assert.deepEqual(r.json.error_codes, [700211], r.text);
      assert.match(r.json.error_description, /not on this tenant's list of allowed federation issuers/);
      assert.equal(s.services.federation.fetchCount(), before + 1, 'no fetch for a removed issuer');
    } finally {
      await setIssuers(null);
    }
    await s.services.audit.drain();
    const refusals = (
      await s.services.audit.list({ tenantId: s.info.tenantId, operation: 'FederatedTokenExchange' })
    ).filter((e) => e.details?.error === 700211 && e.details?.claimedIssuer === B);
    assert.equal(refusals.length, 1, 'the refused exchange is audited with the presented issuer');
  });
});

describe('the tenant settings route, fuzzed (fast-check)', () => {
  test('random requests: never a 5xx, shaped errors, no change when refused, the stored list always within the server list', async (t) => {
    const rows = () =>
      s.services.db.all<{ tenant_id: string; federation_issuers: string | null }>(
        'SELECT tenant_id, federation_issuers FROM tenant_settings ORDER BY tenant_id',
      );
    const other = await s.services.tenants.create({
      displayName: 'fuzz-other',
      domain: 'fuzz-other.example',
    });
    const adminToken = await s.adminToken();
    const contributorToken = await contributor.token(s.info.managementResource);
    const anyValue = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
    );
    const issuerArb = fc.oneof(
      { arbitrary: fc.constantFrom(A, B), weight: 6 },
      fc.constantFrom(NOT_SERVER, `${A}/`, A.toUpperCase(), '', 'x'.repeat(601), 'https://169.254.169.254'),
      anyValue,
    );
    const bodyArb = fc.oneof(
      {
        arbitrary: fc
          .option(fc.array(issuerArb, { maxLength: 6 }), { nil: null, freq: 5 })
          .map((allowedIssuers) => JSON.stringify({ allowedIssuers })),
        weight: 6,
      },
      fc
        .record({ allowedIssuers: anyValue, extra: anyValue }, { requiredKeys: [] })
        .map((b) => JSON.stringify(b)),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.constantFrom(
        '{"allowedIssuers":',
        'null',
        '[]',
        '{"__proto__":{"allowedIssuers":[]}}',
        'not json',
        '',
      ),
    );
    const tenantArb = fc.oneof(
      { arbitrary: fc.constant(s.info.tenantId), weight: 6 },
      fc.constantFrom(
        s.info.tenantDomain,
        s.info.tenantId.toUpperCase(),
        other.id,
        'fuzz-other.example',
        randomUUID(),
        '%2e%2e',
        '%00',
        'x'.repeat(300),
      ),
      fc.string({ minLength: 1, maxLength: 20 }).map(encodeURIComponent),
    );
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'PUT', 'PUT', 'POST', 'DELETE', 'PATCH'),
        tenantArb,
        bodyArb,
        fc.constantFrom('admin', 'admin', 'admin', 'contributor'),
        async (method, tenant, body, who) => {
          const headers: Record<string, string> = {
            authorization: `Bearer ${who === 'admin' ? adminToken : contributorToken}`,
          };
          const sendBody = method !== 'GET' && body !== '';
          if (sendBody) headers['content-type'] = 'application/json';
          const before = JSON.stringify(await rows());
          const r = await s.request(method, settingsPath(tenant), { headers, ...(sendBody ? { body } : {}) });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          const what = `${who} ${method} ${tenant.slice(0, 60)} ${body.slice(0, 160)} → ${r.status}`;
          assert.ok(r.status < 500, `${what} ${r.text.slice(0, 300)}`);
          assert.ok(r.text.length <= 16_384, `${what}: an answer of ${r.text.length} characters`);
          const after = await rows();
          if (r.status >= 400) {
            assert.equal(JSON.stringify(after), before, `${what} changed state`);
            assert.equal(
              typeof r.json?.error?.code,
              'string',
              `${what}: shaped error ${r.text.slice(0, 100)}`,
            );
            assert.ok(!/\n\s+at /.test(r.text), `${what}: no stack trace`);
          }
          for (const row of after) {
            assert.equal(
              row.tenant_id,
              s.info.tenantId,
              `${what}: only the caller's own tenant has settings`,
            );
            const list =
              row.federation_issuers === null ? [] : (JSON.parse(row.federation_issuers) as string[]);
            assert.ok(
              list.every((i) => i === A || i === B),
              `${what}: the stored list ${row.federation_issuers} is within the server's`,
            );
          }
        },
      ),
      { numRuns: 300 },
    );
    t.diagnostic(`statuses: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}`);
    for (const code of [200, 400, 403, 404])
      assert.ok((statuses.get(code) ?? 0) >= 5, `the run reached ${code}: ${JSON.stringify([...statuses])}`);
    await setIssuers(null);
  });
});
