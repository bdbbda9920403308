import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { fuzzSeed } from './helpers/fuzz-seed.js';
import { putIdentity, uaiId } from './helpers/identity.js';
import { startTestApp, type TestServer } from './helpers/server.js';

// One seed for the whole file (the properties share state): replay a failure with LATCHKEY_FUZZ_SEED.
fuzzSeed();

/**
 * Random requests to the federated-credential routes (docs/federation.md): ARM
 * `…/userAssignedIdentities/{n}/federatedIdentityCredentials[/{name}]` and Graph
 * `/v1.0/applications/{id}/federatedIdentityCredentials[/{id or name}]`, as an admin who may do
 * everything. Never a 5xx, never a change when refused, answers bounded, errors in their API's shape.
 */
const GH = 'https://token.actions.githubusercontent.com';
const OFF_LIST = 'https://gitlab.com';
/** An answer holds at most 20 credentials of at most ~2 KB each. */
const MAX_ANSWER = 64 * 1024;

/** A digest of everything these routes can change. */
async function stateDigest(s: TestServer): Promise<string> {
  const h = createHash('sha256');
  for (const sql of [
    'SELECT * FROM federated_credentials ORDER BY 1',
    'SELECT * FROM app_federated_credentials ORDER BY 1',
    'SELECT id, enabled, updated_at FROM principals ORDER BY id',
    'SELECT * FROM user_identities ORDER BY 1',
  ])
    h.update(JSON.stringify(await s.services.db.all<Record<string, unknown>>(sql)));
  return h.digest('hex');
}

const long = (n: number) => 'x'.repeat(n);
const anyValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 2 }),
);
/**
 * A last path segment that is a dot-segment (`.`, `..`, `%2e%2e`, …) never reaches a server: every
 * URL parser (this test's client included) resolves it to the parent, so a DELETE of
 * `…/federatedIdentityCredentials/%2e%2e` would delete the application or identity itself and the
 * later requests would meet a 404 at random. Such names get a character more: still odd, never the parent.
 */
const notDotSegment = (n: string) => (/^(\.|%2e){1,2}$/i.test(n) ? `${n}.x` : n);
const nameArb = fc
  .oneof(
    { arbitrary: fc.constantFrom('fz-a', 'FZ-A', 'fz-b', 'fz-new', 'ab', long(120), long(121)), weight: 6 },
    // Fresh valid names (with ARM bodies weighted up below): with only the few names above, most
    // PUTs updated and a run created 3 to 9 credentials in 500 cases, so its "credentials were
    // created" count depended on the seed.
    { arbitrary: fc.stringMatching(/^fz-[a-z0-9]{3,8}$/), weight: 8 },
    fc.string({ maxLength: 30 }).map(encodeURIComponent),
    fc.constantFrom('%2e%2e', '%00', 'a%2Fb', '%ZZ', '-lead', '_x', 'a b', '%F0%9F%94%91'),
  )
  .map(notDotSegment);
const issuerArb = fc.oneof(
  { arbitrary: fc.constant(GH), weight: 6 },
  fc.constantFrom(
    OFF_LIST,
    `${GH}/`,
    'http://token.actions.githubusercontent.com',
    'https://user:pw@token.actions.githubusercontent.com',
    `${GH}?q=1`,
    `${GH}#f`,
    'https://127.0.0.1',
    `https://${long(700)}`,
    '',
  ),
  anyValue,
);
const subjectArb = fc.oneof(
  {
    arbitrary: fc.constantFrom('repo:org/repo:ref:refs/heads/main', 'repo:org/repo:pull_request'),
    weight: 4,
  },
  fc.string({ maxLength: 60 }),
  fc.constantFrom('', 'a\u0000b', 'line\nbreak', long(600), long(601), long(100_000)),
  anyValue,
);
const audiencesArb = fc.oneof(
  { arbitrary: fc.constant(['api://AzureADTokenExchange']), weight: 4 },
  fc.array(fc.oneof(fc.string({ maxLength: 30 }), anyValue), { maxLength: 3 }),
  fc.constantFrom([], [long(601)], ['a', 'b'], ['\u0007']),
  anyValue,
);
const descriptionArb = fc.oneof(fc.string({ maxLength: 40 }), fc.constant(long(601)), anyValue);
const fieldsArb = fc.oneof(
  // Mostly valid, so the run reaches creation and update (a run creates 6 to 17, short of the
  // 20-per-owner limit, which test/federation.test.ts checks on both APIs).
  {
    arbitrary: fc.record({
      issuer: fc.constant(GH),
      subject: fc.stringMatching(/^[a-z0-9]{1,12}$/).map((x) => `repo:org/${x}:ref:refs/heads/main`),
      audiences: fc.constant(['api://AzureADTokenExchange']),
      description: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(long(600))),
    }),
    weight: 3,
  },
  fc.record(
    { issuer: issuerArb, subject: subjectArb, audiences: audiencesArb, description: descriptionArb },
    { requiredKeys: [] },
  ),
);
/** ARM's `{properties: …}` and Graph's flat object (with `name`), plus raw JSON and broken text. */
const bodyArb = fc.oneof(
  { arbitrary: fieldsArb.map((p) => JSON.stringify({ properties: p })), weight: 6 },
  {
    arbitrary: fc
      .tuple(
        fieldsArb,
        fc.option(fc.oneof(nameArb.map(decodeURIComponentSafe), anyValue), { nil: undefined }),
      )
      .map(([p, name]) => JSON.stringify(name === undefined ? p : { ...p, name })),
    weight: 4,
  },
  fc.record({ properties: anyValue, name: anyValue }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{"properties":', '[]', 'null', '{"__proto__":{"issuer":"x"}}', 'not json', ''),
);

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

describe('federated-credential routes fuzzing (fast-check)', () => {
  let s: TestServer;
  let armToken: string;
  let graphToken: string;
  let appIds: string[];

  before(async () => {
    s = await startTestApp({ limits: { perAddressRate: 0 }, federation: { allowedIssuers: [GH] } });
    armToken = await s.adminToken();
    graphToken = await s.adminToken(s.info.authority);
    await putIdentity(s, 'fz-id');
    appIds = [];
    for (const displayName of ['fz-app', 'fz-app-2']) {
      const r = await s.request('POST', '/v1.0/applications', {
        headers: { authorization: `Bearer ${graphToken}` },
        json: { displayName },
      });
      assert.equal(r.status, 201, r.text);
      appIds.push(r.json.id as string);
    }
    // Seeds: one credential on the identity, one on the first application.
    const seeded = await s.request(
      'PUT',
      `${uaiId(s, 'fz-id')}/federatedIdentityCredentials/fz-a?api-version=2023-01-31`,
      {
        headers: { authorization: `Bearer ${armToken}` },
        json: { properties: { issuer: GH, subject: 'seed', audiences: ['api://AzureADTokenExchange'] } },
      },
    );
    assert.equal(seeded.status, 201, seeded.text);
    const seededApp = await s.request(
      'POST',
      `/v1.0/applications/${appIds[0]}/federatedIdentityCredentials`,
      {
        headers: { authorization: `Bearer ${graphToken}` },
        json: { name: 'fz-a', issuer: GH, subject: 'seed', audiences: ['api://AzureADTokenExchange'] },
      },
    );
    assert.equal(seededApp.status, 201, seededApp.text);
  });
  after(async () => {
    await s?.stop();
  });

  const armPathArb = () =>
    fc
      .tuple(
        fc.constantFrom('fz-id', 'fz-id', 'fz-id', 'no-such-id', 'FZ-ID', '%2e%2e'),
        fc.option(nameArb, { nil: undefined, freq: 6 }),
        fc.constantFrom('api-version=2023-01-31', 'api-version=2023-01-31', 'api-version=1999-01-01', ''),
      )
      .map(([identity, name, q]) => {
        const base = `${uaiId(s, 'fz-id').replace(/fz-id$/, identity)}/federatedIdentityCredentials`;
        return `${name === undefined ? base : `${base}/${name}`}${q ? `?${q}` : ''}`;
      });
  const graphPathArb = () =>
    fc
      .tuple(
        fc.oneof(
          { arbitrary: fc.constantFrom(...appIds), weight: 4 },
          fc.constantFrom(randomUUID(), 'not-a-guid', '%2e%2e', appIds[0]!.toUpperCase()),
        ),
        fc.oneof(nameArb, fc.uuid()),
      )
      .map(([app, fic]) => ({ base: `/v1.0/applications/${app}/federatedIdentityCredentials`, fic }));

  test('random requests: never a 5xx, bounded answers, shaped errors, never a change when refused', async (t) => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        // Mostly each API's own methods (ARM: GET/PUT/DELETE; Graph: GET/POST/PATCH/DELETE), sometimes the other's.
        fc.oneof(
          fc
            .tuple(fc.constantFrom('GET', 'PUT', 'PUT', 'PUT', 'DELETE', 'POST', 'PATCH'), armPathArb())
            .map(([method, path]) => ({ method, api: 'arm' as const, path })),
          fc
            .tuple(
              fc.constantFrom('GET', 'POST', 'POST', 'PATCH', 'PATCH', 'DELETE', 'PUT'),
              graphPathArb(),
              fc.integer({ min: 0, max: 5 }),
            )
            // POST (and a GET in two) to the collection, the rest to one credential; one in six the other way.
            .map(([method, { base, fic }, roll]) => {
              const collection = (method === 'POST' || (method === 'GET' && roll % 2 === 0)) !== (roll === 5);
              return { method, api: 'graph' as const, path: collection ? base : `${base}/${fic}` };
            }),
        ),
        bodyArb,
        fc.constantFrom('application/json', 'application/json', 'application/json', 'text/plain'),
        async ({ method, api, path }, body, contentType) => {
          const headers: Record<string, string> = {
            authorization: `Bearer ${api === 'arm' ? armToken : graphToken}`,
          };
          const sendBody = method !== 'GET' && body !== '';
          if (sendBody) {
            headers['content-type'] = contentType;
            headers['content-length'] = String(Buffer.byteLength(body));
          }
          const beforeDigest = await stateDigest(s);
          const r = await s.request(method, path, { headers, ...(sendBody ? { body } : {}) });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          const what = `${method} ${path.slice(0, 200)} ${body.slice(0, 200)} → ${r.status}`;
          assert.ok(r.status < 500, `${what} ${r.text.slice(0, 300)}`);
          assert.ok(r.text.length <= MAX_ANSWER, `${what}: an answer of ${r.text.length} characters`);
          if (r.status >= 400) {
            assert.equal(await stateDigest(s), beforeDigest, `${what} changed state`);
            assert.equal(
              typeof r.json?.error?.code,
              'string',
              `${what}: shaped error ${r.text.slice(0, 100)}`,
            );
            assert.ok(!/\n\s+at /.test(r.text), `${what}: no stack trace`);
            assert.ok(
              (r.json?.error?.message ?? '').length <= 2000,
              `${what}: an error message of ${String(r.json?.error?.message).length} characters`,
            );
          }
        },
      ),
      { numRuns: 500 },
    );
    t.diagnostic(`statuses: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}`);
    const reached = [200, 201, 204].reduce((n, code) => n + (statuses.get(code) ?? 0), 0);
    assert.ok(reached >= 20, `the run reached the operations: ${JSON.stringify([...statuses])}`);
    // Created: 6 to 17 in 500 cases (seeds 300–309); "at least 3" of the 3 to 9 before fresh names
    // were drawn sat on the edge (3 for seeds 108, 114, 115 of 100–118). One proves the path is reached.
    assert.ok((statuses.get(201) ?? 0) >= 1, `credentials were created: ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(400) ?? 0) >= 20, `validation was exercised: ${JSON.stringify([...statuses])}`);
    // The owners themselves are out of this run's reach (see notDotSegment): the next test needs them.
    for (const id of appIds) {
      const app = await s.request('GET', `/v1.0/applications/${id}`, {
        headers: { authorization: `Bearer ${graphToken}` },
      });
      assert.equal(app.status, 200, `application ${id} still there: ${app.text.slice(0, 200)}`);
    }
    const identity = await s.request('GET', `${uaiId(s, 'fz-id')}?api-version=2023-01-31`, {
      headers: { authorization: `Bearer ${armToken}` },
    });
    assert.equal(identity.status, 200, `identity still there: ${identity.text.slice(0, 200)}`);
  });

  test('an issuer off the allow-list is refused on both APIs, whatever else the body holds; nothing changes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(OFF_LIST, 'https://127.0.0.1:8443', 'https://169.254.169.254', `${GH}.evil.example`),
        fc.stringMatching(/^[\x21-\x7e]{1,60}$/),
        fc.boolean(),
        async (issuer, subject, graph) => {
          const beforeDigest = await stateDigest(s);
          const fields = { issuer, subject, audiences: ['api://AzureADTokenExchange'] };
          const r = graph
            ? await s.request('POST', `/v1.0/applications/${appIds[1]}/federatedIdentityCredentials`, {
                headers: { authorization: `Bearer ${graphToken}` },
                json: { name: 'off-list', ...fields },
              })
            : await s.request(
                'PUT',
                `${uaiId(s, 'fz-id')}/federatedIdentityCredentials/off-list?api-version=2023-01-31`,
                { headers: { authorization: `Bearer ${armToken}` }, json: { properties: fields } },
              );
          assert.equal(r.status, 400, `${issuer} via ${graph ? 'Graph' : 'ARM'}: ${r.text.slice(0, 200)}`);
          assert.match(String(r.json?.error?.message), /allowed federation issuers/, 'names the allow-list');
          assert.equal(await stateDigest(s), beforeDigest, 'nothing changed');
        },
      ),
      { numRuns: 60 },
    );
  });
});
