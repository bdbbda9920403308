import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { fuzzSeed } from './helpers/fuzz-seed.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, vaultPrincipal, vaultToken } from './helpers/vault.js';

// One seed for the whole file (the properties share state): replay a failure with LATCHKEY_FUZZ_SEED.
fuzzSeed();

/** A digest of everything a certificates request can change (certificates and their keys and secrets). */
async function stateDigest(s: TestServer): Promise<string> {
  const h = createHash('sha256');
  for (const sql of [
    'SELECT vault_id, name_lower, current_version, deleted_at FROM certificates ORDER BY vault_id, name_lower',
    'SELECT vault_id, name_lower, version, x5t, tags, enabled FROM certificate_versions ORDER BY vault_id, name_lower, version',
    'SELECT * FROM certificate_policies ORDER BY vault_id, name_lower',
    'SELECT vault_id, name_lower, request_id, operation FROM certificate_requests ORDER BY vault_id, name_lower',
    'SELECT * FROM certificate_issuers ORDER BY vault_id, name_lower',
    'SELECT vault_id, name_lower, current_version, deleted_at FROM keys ORDER BY vault_id, name_lower',
    'SELECT vault_id, name_lower, current_version, deleted_at FROM secrets ORDER BY vault_id, name_lower',
  ])
    h.update(JSON.stringify(await s.services.db.all<Record<string, unknown>>(sql)));
  return h.digest('hex');
}

const nameArb = fc.oneof(
  { arbitrary: fc.constantFrom('fz-a', 'FZ-A', 'fz-del', 'fz-new', 'fz-req', 'x'.repeat(128)), weight: 6 },
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.constantFrom('%2e%2e', '%00', 'a%2Fb', '%ZZ', 'pending', 'policy', 'issuers', 'versions'),
);
const pathArb = fc.oneof(
  fc.constant('/certificates'),
  nameArb.map((n) => `/certificates/${n}`),
  nameArb.map((n) => `/certificates/${n}/create`),
  nameArb.map((n) => `/certificates/${n}/import`),
  nameArb.map((n) => `/certificates/${n}/pending`),
  nameArb.map((n) => `/certificates/${n}/pending/merge`),
  nameArb.map((n) => `/certificates/issuers/${n}`),
  nameArb.map((n) => `/certificates/${n}/policy`),
  nameArb.map((n) => `/certificates/${n}/versions`),
  nameArb.map((n) => `/certificates/${n}/backup`),
  fc
    .tuple(
      nameArb,
      fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), fc.string({ maxLength: 40 }).map(encodeURIComponent)),
    )
    .map(([n, v]) => `/certificates/${n}/${v}`),
  fc.constant('/deletedcertificates'),
  nameArb.map((n) => `/deletedcertificates/${n}`),
  nameArb.map((n) => `/deletedcertificates/${n}/recover`),
  fc.constantFrom('/certificates/issuers', '/certificates/contacts', '/certificates/restore'),
);
const anyValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.double(),
);
const policyArb = fc.record(
  {
    key_props: fc.oneof(
      fc.record(
        {
          kty: fc.oneof(fc.constantFrom('EC', 'RSA', 'EC-HSM', 'oct'), anyValue),
          crv: fc.oneof(fc.constantFrom('P-256', 'P-384', 'P-256K', 'X25519'), anyValue),
          key_size: fc.oneof(fc.constantFrom(256, 1024, 2048, 99999), anyValue),
          exportable: fc.oneof(fc.boolean(), anyValue),
        },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    secret_props: fc.oneof(
      fc.record({ contentType: fc.oneof(fc.constantFrom('application/x-pem-file', 'text/x'), anyValue) }),
      anyValue,
    ),
    x509_props: fc.oneof(
      fc.record(
        {
          subject: fc.oneof(
            fc.constantFrom('CN=fz', 'CN=a, O=b', 'CN=', '=x', 'not a name'),
            fc.string({ maxLength: 60 }),
          ),
          sans: fc.oneof(
            fc.record(
              {
                dns_names: fc.array(
                  fc.oneof(fc.constantFrom('a.example', '*.b', '-bad'), fc.string({ maxLength: 20 })),
                  { maxLength: 3 },
                ),
                emails: fc.array(fc.string({ maxLength: 20 }), { maxLength: 2 }),
                upns: fc.array(fc.string({ maxLength: 20 }), { maxLength: 2 }),
              },
              { requiredKeys: [] },
            ),
            anyValue,
          ),
          ekus: fc.oneof(
            fc.array(fc.oneof(fc.constant('1.3.6.1.5.5.7.3.1'), fc.string({ maxLength: 12 })), {
              maxLength: 3,
            }),
            anyValue,
          ),
          key_usage: fc.oneof(
            fc.array(fc.constantFrom('digitalSignature', 'keyCertSign', 'fly'), { maxLength: 3 }),
            anyValue,
          ),
          validity_months: fc.oneof(fc.integer({ min: -2, max: 1300 }), anyValue),
        },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    lifetime_actions: fc.oneof(
      fc.array(
        fc.record({
          trigger: fc.record(
            { lifetime_percentage: fc.oneof(fc.integer({ min: -1, max: 120 }), anyValue) },
            { requiredKeys: [] },
          ),
          action: fc.record({
            action_type: fc.oneof(fc.constantFrom('AutoRenew', 'EmailContacts', 'Nope'), anyValue),
          }),
        }),
        { maxLength: 2 },
      ),
      anyValue,
    ),
    issuer: fc.oneof(
      fc.record({
        name: fc.oneof(fc.constantFrom('Self', 'self', 'Unknown', 'Latchkey', 'Other'), anyValue),
      }),
      anyValue,
    ),
  },
  { requiredKeys: [] },
);
const bodyArb = fc.oneof(
  {
    arbitrary: fc
      .record(
        {
          policy: policyArb,
          tags: fc.oneof(
            fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
            anyValue,
          ),
        },
        { requiredKeys: [] },
      )
      .map((b) => JSON.stringify(b)),
    weight: 5,
  },
  fc
    .record(
      {
        value: fc.oneof(
          fc.base64String({ maxLength: 300 }),
          fc.constant('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'),
          anyValue,
        ),
        pwd: anyValue,
      },
      { requiredKeys: [] },
    )
    .map((b) => JSON.stringify(b)),
  // Merge (x5c: base64 DER certificates) and cancel bodies.
  fc
    .record(
      {
        x5c: fc.oneof(
          fc.array(fc.oneof(fc.base64String({ maxLength: 200 }), anyValue), { maxLength: 12 }),
          fc.constant(['MAA=', 'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t']),
          anyValue,
        ),
        attributes: fc.oneof(fc.record({ enabled: anyValue }), anyValue),
        tags: anyValue,
      },
      { requiredKeys: [] },
    )
    .map((b) => JSON.stringify(b)),
  fc.record({ cancellation_requested: anyValue }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
  // Issuer bodies (PUT/PATCH /certificates/issuers/{name}).
  fc
    .record(
      {
        provider: fc.oneof(fc.constantFrom('Latchkey', 'latchkey', 'DigiCert'), anyValue),
        credentials: fc.oneof(fc.record({ account_id: anyValue, pwd: anyValue }), anyValue),
        org_details: fc.oneof(
          fc.record({
            id: anyValue,
            admin_details: fc.oneof(fc.array(fc.record({ email: anyValue }), { maxLength: 12 }), anyValue),
          }),
          anyValue,
        ),
        attributes: fc.oneof(fc.record({ enabled: anyValue }), anyValue),
      },
      { requiredKeys: [] },
    )
    .map((b) => JSON.stringify(b)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{"policy":', '[]', 'null', '{"__proto__":{"x":1}}'),
);

/** Random certificates requests by a Certificates Officer: never a 5xx, never a change when refused. */
describe('certificates fuzzing (fast-check)', () => {
  let s: TestServer;
  let token: string;
  let base: string;

  before(async () => {
    s = await startTestServer({ limits: { perAddressRate: 0 } });
    const v = await putVault(s, 'certfuzz');
    const sp = await vaultPrincipal(s, 'cert-fuzz-officer');
    await grant(s, sp.id, 'Key Vault Certificates Officer', v.id);
    token = await vaultToken(s, sp);
    base = s.vaultUrl('certfuzz');
    const auth = { authorization: `Bearer ${token}` };
    const policy = { issuer: { name: 'Self' }, key_props: { kty: 'EC' }, x509_props: { subject: 'CN=fz' } };
    for (const n of ['fz-a', 'fz-del']) {
      const r = await s.request('POST', `${base}/certificates/${n}/create?api-version=7.5`, {
        json: { policy },
        headers: auth,
      });
      assert.equal(r.status, 202, r.text);
    }
    await s.request('DELETE', `${base}/certificates/fz-del?api-version=7.5`, { headers: auth });
    // A request waiting for its merge (issuer Unknown).
    const req = await s.request('POST', `${base}/certificates/fz-req/create?api-version=7.5`, {
      json: { policy: { ...policy, issuer: { name: 'Unknown' } } },
      headers: auth,
    });
    assert.equal(req.status, 202, req.text);
    const iss = await s.request('PUT', `${base}/certificates/issuers/fz-a?api-version=7.5`, {
      json: { provider: 'Latchkey' },
      headers: auth,
    });
    assert.equal(iss.status, 200, iss.text);
  });
  after(async () => {
    await s?.stop();
  });

  test('random requests: never a 5xx, Azure-shaped errors, never a change when refused', async (t) => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PATCH', 'PUT', 'DELETE'),
        pathArb,
        bodyArb,
        async (method, path, body) => {
          const headers: Record<string, string> = { authorization: `Bearer ${token}` };
          const sendBody = method !== 'GET';
          if (sendBody) {
            headers['content-type'] = 'application/json';
            headers['content-length'] = String(Buffer.byteLength(body));
          }
          const beforeDigest = await stateDigest(s);
          const r = await s.request(method, `${base}${path}?api-version=7.5`, {
            headers,
            ...(sendBody ? { body } : {}),
          });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          assert.ok(r.status < 500, `${method} ${path} ${body} → ${r.status} ${r.text.slice(0, 300)}`);
          if (r.status >= 400) {
            assert.equal(await stateDigest(s), beforeDigest, `${method} ${path} → ${r.status} changed state`);
            assert.equal(typeof r.json?.error?.code, 'string', `Azure-shaped error: ${r.text.slice(0, 100)}`);
            assert.ok(!/\n\s+at /.test(r.text), 'no stack trace');
          }
        },
      ),
      { numRuns: 400 },
    );
    t.diagnostic(`statuses: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}`);
    assert.ok((statuses.get(200) ?? 0) > 10, 'the run reached the operations');
    assert.ok((statuses.get(400) ?? 0) > 50, '(statuses.get(400) ?? 0) > 50');
  });

  test('restore of a changed backup blob: 400 with the one message, or 409 for the unchanged blob; no change', async () => {
    const auth = { authorization: `Bearer ${token}` };
    // Its own certificate: the random requests above may have deleted any of the fixtures.
    const made = await s.request('POST', `${base}/certificates/fz-restore-src/create?api-version=7.5`, {
      json: {
        policy: { issuer: { name: 'Self' }, key_props: { kty: 'EC' }, x509_props: { subject: 'CN=fz' } },
      },
      headers: auth,
    });
    assert.equal(made.status, 202, made.text);
    const b = await s.request('POST', `${base}/certificates/fz-restore-src/backup?api-version=7.5`, {
      headers: auth,
    });
    assert.equal(b.status, 200, b.text);
    const blob = Buffer.from(b.json.value as string, 'base64url');
    const restore = (value: unknown) =>
      s.request('POST', `${base}/certificates/restore?api-version=7.5`, { json: { value }, headers: auth });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.tuple(fc.nat(blob.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
            const c = Buffer.from(blob);
            c[i] = c[i]! ^ x;
            return c.toString('base64url');
          }),
          fc.nat(blob.length - 1).map((n) => blob.subarray(0, n).toString('base64url')),
          fc.uint8Array({ maxLength: 64 }).map((x) => Buffer.concat([blob, x]).toString('base64url')),
          fc.constant(blob.toString('base64')),
          fc.string({ maxLength: 80 }),
          anyValue,
        ),
        async (value) => {
          const beforeDigest = await stateDigest(s);
          const r = await restore(value);
          assert.ok([400, 409].includes(r.status), `${r.status} ${r.text.slice(0, 200)}`);
          if (r.status === 400 && typeof value === 'string' && /^[A-Za-z0-9+/_-]+={0,2}$/.test(value))
            assert.equal(r.json.error.message, 'Backup blob contains invalid or corrupt version.');
          assert.equal(await stateDigest(s), beforeDigest);
        },
      ),
      { numRuns: 150 },
    );
  });
});
