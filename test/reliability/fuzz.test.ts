import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ROLE_IDS } from '../helpers/access.js';
import { fuzzSeed } from '../helpers/fuzz-seed.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { grant, putVault, vaultPrincipal, vaultToken } from '../helpers/vault.js';
import { FULL, type HttpClient, httpClient, type Res, size } from './lib.js';

// One seed for the whole file (the properties share state): replay a failure with LATCHKEY_FUZZ_SEED.
fuzzSeed();

/**
 * Fuzzing of every route family with fast-check: authority (token endpoint,
 * discovery, JWKS), the identity endpoint, the vault keys data plane (secrets
 * have their own fuzz in test/vault.fuzz.test.ts), and the management API
 * (ARM vaults, role assignments, directory, audit, provisioning keys,
 * subscriptions, identities, apps, hosts). Properties: never a 5xx, never a
 * hang, the process stays up, the error has the family's shape, and an error
 * answer changes nothing (digest of every table but the audit log).
 */

type Shape = 'azure' | 'oauth' | 'identity';

/**
 * Bookkeeping left out of the state digest: the audit chain head (part of the
 * audit log, which records refusals by design) and a provisioning key's use
 * counter (every authentication with the key is a use, whatever the answer).
 */
const SELECT: Record<string, string> = {
  meta: "SELECT * FROM meta WHERE key <> 'audit_head'",
  // The embedded identity endpoint's maintenance registers and retires certificates for the
  // identities placed on its host (tagged `latchkey-host:<id>`) on its own timer: an identity
  // an earlier case placed on the host gets its certificate while a later case runs.
  credentials: "SELECT * FROM credentials WHERE display_name NOT LIKE 'latchkey-host:%'",
  // Failed authentications are counted by design (the throttle, shared by every node).
  auth_failures: 'SELECT 1 AS excluded',
  provisioning_keys:
    'SELECT id, tenant_id, display_name, scopes, key_hash, expires_at, max_uses, allowed_cidrs, resource_group, state, grace_until, successor_id, predecessor_id, created_at, revoked_at FROM provisioning_keys',
};
interface Req {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

const RUNS = {
  authority: size(220, 1500),
  identity: size(150, 1000),
  keys: size(330, 2500),
  management: size(800, 5500),
};

/** Values that break validators: wrong types, huge strings, odd numbers, prototype keys. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.double(),
  fc.constantFrom('', ' ', '\u0000', '../..', 'x'.repeat(700), '__proto__', '-1', '1e309', 'NaN'),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
);

/** Mutations of a valid example: each field kept, replaced, or dropped, plus unknown fields; recursive. */
function mutate(example: unknown, depth = 0): fc.Arbitrary<unknown> {
  if (example === null || typeof example !== 'object' || depth > 3)
    return fc.oneof({ arbitrary: fc.constant(example), weight: 3 }, anyValue);
  if (Array.isArray(example)) {
    return fc.oneof(
      { arbitrary: fc.tuple(...example.map((e) => mutate(e, depth + 1))), weight: 3 },
      fc.constant([]),
      anyValue,
    );
  }
  const entries = Object.entries(example as Record<string, unknown>);
  const record = fc.record(
    Object.fromEntries(entries.map(([k, v]) => [k, mutate(v, depth + 1)])) as Record<
      string,
      fc.Arbitrary<unknown>
    >,
    { requiredKeys: [] },
  );
  return fc.oneof(
    { arbitrary: record, weight: 4 },
    { arbitrary: fc.constant(example), weight: 2 },
    fc
      .tuple(record, fc.string({ maxLength: 12 }), anyValue)
      .map(([r, k, v]) => ({ ...(r as object), [k]: v })),
    anyValue,
  );
}

/** A JSON body: mutations of the examples, random JSON, broken JSON, or none. */
const jsonBody = (...examples: unknown[]): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { arbitrary: fc.oneof(...examples.map((e) => mutate(e))).map((v) => JSON.stringify(v)), weight: 6 },
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.constantFrom('{', '[]', 'null', '"x"', '{"__proto__":{"admin":true}}', '{"a":1,"a":2}', '\u0000'),
    fc.string({ maxLength: 60 }),
  );

/** `arb` once in `n` draws, otherwise undefined. */
const rarely = <T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: n - 1 }, { arbitrary: arb, weight: 1 });
const seg = fc.string({ maxLength: 24 }).map(encodeURIComponent);
const pick = <T>(valid: T[], ...odd: fc.Arbitrary<T>[]): fc.Arbitrary<T> =>
  fc.oneof({ arbitrary: fc.constantFrom(...valid), weight: 5 }, ...odd);

// On both stores: the error paths (validation, refusals, constraint violations) and what "changes
// nothing" means differ between SQLite and PostgreSQL (types, constraint errors, transactions).
for (const store of ['sqlite', 'postgres'] as const)
  describe(`fuzzing every route family on ${store} (${FULL ? 'full' : 'short'})`, () => {
    let s: TestServer;
    let schema: TestSchema | undefined;
    let c: HttpClient;
    let tables: string[];
    const ids = {
      sub: '',
      tenant: '',
      spId: '',
      spAppId: '',
      spSecret: '',
      credKeyId: '',
      pkId: '',
      raId: '',
      keyVersion: '',
    };
    const tokens = { admin: '', vaultAdmin: '', graph: '', keys: '', provisioningKey: '' };
    const totals = { cases: 0, statuses: new Map<number, number>() };

    /** A digest of every table except the audit log (reads and refusals are audited by design). */
    const digest = async (): Promise<string> => {
      const parts: string[] = [];
      for (const t of tables) {
        const h = createHash('sha256');
        // Rows in a stable order (PostgreSQL's heap order is not one): each row's JSON, sorted.
        const rows = (
          await s.services.db.all<Record<string, unknown>>(SELECT[t] ?? `SELECT * FROM ${t}`)
        ).map((row) => JSON.stringify(row, (_k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v)));
        for (const row of rows.sort()) h.update(row);
        parts.push(`${t}:${h.digest('hex').slice(0, 16)}`);
      }
      return parts.join(' ');
    };
    /** The tables whose digest differs (for the failure message). */
    const changed = (a: string, b: string) => {
      const bs = new Set(b.split(' '));
      return a
        .split(' ')
        .filter((x) => !bs.has(x))
        .map((x) => x.split(':')[0])
        .join(', ');
    };

    before(async () => {
      if (store === 'postgres') schema = await createTestSchema();
      s = await startTestServer({
        ...(schema ? { storageUrl: schema.url } : {}),
        limits: {
          perAddressRate: 0,
          perPrincipalRate: 0,
          authFailureLimit: 1_000_000,
          authFailureDelayMs: 0,
        },
        identityEndpoint: { rateLimit: { perSecond: 100_000, concurrent: 1000 } },
      });
      c = httpClient(s.info.authority, s.ca);
      ids.sub = s.info.subscriptionId;
      ids.tenant = s.info.tenantId;
      tokens.admin = await s.adminToken();
      tokens.vaultAdmin = await s.adminToken(s.info.vaultResource);
      tokens.graph = await s.adminToken(s.info.authority);
      const v = await putVault(s, 'fuzzkeys');
      await putVault(s, 'fuzzmgmt');
      const sp = await vaultPrincipal(s, 'fuzz-keys');
      await grant(s, sp.id, 'Key Vault Administrator', v.id);
      tokens.keys = await vaultToken(s, sp);
      Object.assign(ids, { spId: sp.id, spAppId: sp.appId, spSecret: sp.secret });
      const creds = await c.request('GET', `/api/directory/servicePrincipals/${sp.id}/credentials`, {
        headers: { authorization: `Bearer ${tokens.admin}` },
      });
      ids.credKeyId = creds.json?.value?.[0]?.keyId ?? randomUUID();
      const pk = await c.request('POST', '/api/provisioning/keys', {
        headers: { authorization: `Bearer ${tokens.admin}` },
        json: { displayName: 'fuzz', scopes: ['vaults:write', 'audit:read'], expiresInSeconds: 3600 },
      });
      assert.equal(pk.status, 201, pk.text);
      ids.pkId = pk.json.id;
      tokens.provisioningKey = pk.json.key ?? pk.json.value ?? '';
      const key = await c.request('POST', `${s.vaultUrl('fuzzkeys')}/keys/k-ec/create?api-version=7.5`, {
        headers: { authorization: `Bearer ${tokens.keys}` },
        json: { kty: 'EC', crv: 'P-256' },
      });
      assert.equal(key.status, 200, key.text);
      ids.keyVersion = String(key.json.key.kid).split('/').pop()!;
      await c.request('POST', `${s.vaultUrl('fuzzkeys')}/keys/k-rsa/create?api-version=7.5`, {
        headers: { authorization: `Bearer ${tokens.keys}` },
        json: { kty: 'RSA', key_size: 2048 },
      });
      ids.raId = randomUUID();
      tables = (
        await s.services.db.all<{ name: string }>(
          schema
            ? `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = '${schema.schema}' AND table_type = 'BASE TABLE' AND table_name <> 'audit_events' ORDER BY table_name`
            : "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'audit_events' ORDER BY name",
        )
      ).map((r) => r.name);
      // The digest covers the same tables on both stores (an empty list would check nothing).
      for (const t of ['secrets', 'keys', 'vaults', 'principals', 'role_assignments', 'provisioning_keys'])
        assert.ok(tables.includes(t), `table ${t} in the digest (${tables.join(', ')})`);
    });
    after(async () => {
      c?.close();
      await s?.stop();
      await schema?.drop();
      const st = JSON.stringify([...totals.statuses].sort((a, b) => a[0] - b[0]));
      console.log(`# fuzz total: cases=${totals.cases} statuses=${st}`);
    });

    /** Sends one generated request and checks the properties. */
    const check = async (r: Req, shape: Shape, stats: Map<number, number>) => {
      const before = await digest();
      if (process.env.FUZZ_TRACE)
        console.error(
          `TRACE ${r.method} ${r.url} ${JSON.stringify(r.headers)} ${JSON.stringify(r.body ?? null)}`,
        );
      let res: Res;
      try {
        res = await c.request(r.method, r.url, {
          headers: r.headers,
          ...(r.body !== undefined ? { body: r.body } : {}),
          timeoutMs: 10_000,
        });
      } catch (e) {
        throw new Error(`${r.method} ${r.url}: ${(e as Error).message}`);
      }
      stats.set(res.status, (stats.get(res.status) ?? 0) + 1);
      totals.statuses.set(res.status, (totals.statuses.get(res.status) ?? 0) + 1);
      totals.cases++;
      const where = `${r.method} ${r.url} ${r.body?.slice(0, 200) ?? ''} → ${res.status} ${res.text.slice(0, 200)}`;
      assert.ok(res.status >= 200 && res.status < 500, where);
      if (res.status >= 400) {
        const afterDigest = await digest();
        assert.ok(
          afterDigest === before,
          `state changed (${changed(before, afterDigest)}) on an error answer: ${where}`,
        );
        assert.ok(!/\n\s+at |node_modules|\.ts:\d+/.test(res.text), `stack trace: ${where}`);
        if (r.method !== 'HEAD' && res.text) {
          if (shape === 'azure')
            assert.equal(typeof res.json?.error?.code, 'string', `Azure error shape: ${where}`);
          else if (shape === 'oauth' && ((r.method !== 'GET' && r.method !== 'POST') || res.status === 404))
            // Methods and paths the authority does not serve fall through to the main app's router (Azure shape).
            assert.ok(
              typeof res.json?.error === 'string' || typeof res.json?.error?.code === 'string',
              where,
            );
          else assert.equal(typeof res.json?.error, 'string', `${shape} error shape: ${where}`);
        }
      }
    };

    const run = async (
      t: { diagnostic(m: string): void },
      name: string,
      arb: fc.Arbitrary<Req>,
      shape: Shape,
      numRuns: number,
    ) => {
      const stats = new Map<number, number>();
      const out = await fc.check(
        fc.asyncProperty(arb, (r) => check(r, shape, stats)),
        { numRuns, endOnFailure: true },
      );
      if (out.failed) {
        const why =
          out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
        throw new Error(`${name}: ${why}\n(seed ${out.seed}, path ${out.counterexamplePath})`);
      }
      // The process is still up and serving.
      assert.equal((await c.request('GET', '/healthz')).status, 200);
      t.diagnostic(
        `${name}: cases=${numRuns} statuses=${JSON.stringify([...stats].sort((a, b) => a[0] - b[0]))}`,
      );
      return stats;
    };

    const authHeader = (kind: string): Record<string, string> =>
      kind === 'admin'
        ? { authorization: `Bearer ${tokens.admin}` }
        : kind === 'graph'
          ? { authorization: `Bearer ${tokens.graph}` }
          : kind === 'vaultAdmin'
            ? { authorization: `Bearer ${tokens.vaultAdmin}` }
            : kind === 'keys'
              ? { authorization: `Bearer ${tokens.keys}` }
              : kind === 'pk'
                ? { authorization: `ProvisioningKey ${tokens.provisioningKey}` }
                : kind === 'garbage'
                  ? { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJvaWQiOiJ4In0.' }
                  : kind === 'basic'
                    ? { authorization: 'Basic YTpi' }
                    : {};

    test('authority: token endpoint, discovery, JWKS, instance discovery', async (t) => {
      const tenant = pick([ids.tenant, 'latchkey.localhost', 'common', 'organizations'], seg, fc.uuid());
      const form = fc
        .record(
          {
            grant_type: pick(
              [
                'client_credentials',
                'password',
                'refresh_token',
                'authorization_code',
                'urn:ietf:params:oauth:grant-type:device_code',
              ],
              fc.string({ maxLength: 30 }),
            ),
            client_id: pick([ids.spAppId, '04b07795-8ddb-461a-bbee-02f9e1bf7b46'], fc.uuid(), fc.string()),
            client_secret: pick([ids.spSecret], fc.string({ maxLength: 80 })),
            scope: pick(
              [
                `${s.info.vaultResource}/.default`,
                `${s.info.managementResource}/.default`,
                'openid offline_access',
              ],
              fc.string({ maxLength: 100 }),
            ),
            client_assertion: fc.oneof(fc.string({ maxLength: 200 }), fc.constant('a.b.c')),
            client_assertion_type: fc.constantFrom(
              'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
              'x',
            ),
            username: pick(['admin@latchkey.localhost'], fc.string({ maxLength: 40 })),
            password: fc.string({ maxLength: 40 }),
            refresh_token: fc.string({ maxLength: 100 }),
            device_code: fc.oneof(fc.constant('lkd~x'), fc.string({ maxLength: 100 })),
            client_info: fc.constantFrom('1', '0', ''),
            extra: fc.string({ maxLength: 20 }),
          },
          { requiredKeys: [] },
        )
        .map((f) => new URLSearchParams(f as Record<string, string>).toString());
      const arb: fc.Arbitrary<Req> = fc.oneof(
        {
          weight: 6,
          arbitrary: fc
            .tuple(
              tenant,
              fc.constantFrom(
                '/oauth2/v2.0/token',
                '/oauth2/token',
                '/oauth2/v2.0/devicecode',
                '/oauth2/devicecode',
              ),
              fc.oneof({ arbitrary: form, weight: 5 }, fc.string({ maxLength: 100 }), fc.constant('')),
              fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain'),
              fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT'),
            )
            .map(([tn, p, body, ct, method]) => ({
              method,
              url: `/${tn}${p}?client-request-id=${randomUUID()}`,
              headers: { 'content-type': ct },
              ...(method === 'GET' ? {} : { body }),
            })),
        },
        {
          weight: 3,
          arbitrary: fc
            .tuple(
              tenant,
              fc.constantFrom(
                '/v2.0/.well-known/openid-configuration',
                '/.well-known/openid-configuration',
                '/discovery/v2.0/keys',
                '/discovery/keys',
              ),
              fc.option(seg, { nil: undefined }),
            )
            .map(([tn, p, q]) => ({ method: 'GET', url: `/${tn}${p}${q ? `?${q}` : ''}`, headers: {} })),
        },
        {
          weight: 1,
          arbitrary: fc
            .tuple(fc.string({ maxLength: 100 }), fc.constantFrom('1.1', '1.0', ''))
            .map(([ae, v]) => ({
              method: 'GET',
              url: `/common/discovery/instance?api-version=${v}&authorization_endpoint=${encodeURIComponent(ae)}`,
              headers: {},
            })),
        },
      );
      await run(t, 'authority', arb, 'oauth', RUNS.authority);
    });

    test('identity endpoint (IMDS, App Service, Cloud Shell protocols)', async (t) => {
      const base = s.info.identityEndpoint;
      assert.ok(base, 'latchkey up runs an identity endpoint');
      const query = fc
        .record(
          {
            'api-version': pick(['2018-02-01', '2019-08-01'], fc.string({ maxLength: 12 })),
            resource: pick([s.info.vaultResource, s.info.managementResource], fc.string({ maxLength: 80 })),
            client_id: fc.oneof(fc.uuid(), fc.string({ maxLength: 40 })),
            object_id: fc.uuid(),
            mi_res_id: fc.string({ maxLength: 80 }),
            msi_res_id: fc.string({ maxLength: 80 }),
          },
          { requiredKeys: [] },
        )
        .map((q) => new URLSearchParams(q as Record<string, string>).toString());
      const arb: fc.Arbitrary<Req> = fc
        .tuple(
          fc.constantFrom('GET', 'GET', 'POST', 'PUT', 'DELETE'),
          fc.oneof(
            {
              arbitrary: fc.constantFrom(
                '/metadata/identity/oauth2/token',
                '/metadata/identity/oauth2/token/',
                '/msi/token',
                `/s/${randomUUID()}/metadata/identity/oauth2/token`,
              ),
              weight: 5,
            },
            fc.constantFrom('/', '/control/sessions', '/metadata/../msi/token', '//msi/token', '/%2e%2e/x'),
            seg.map((x) => `/${x}`),
          ),
          query,
          fc.record({
            metadata: fc.constantFrom('true', 'true', 'true', 'false', 'TRUE', '', undefined),
            'x-identity-header': rarely(
              fc.string({ maxLength: 40 }).filter((x) => /^[\x21-\x7e]*$/.test(x)),
              3,
            ),
            'x-forwarded-for': rarely(fc.constant('10.0.0.1'), 8),
            host: rarely(fc.constantFrom('evil.example', 'localhost', '[::1]'), 6),
          }),
          fc.oneof(fc.constant(undefined), query, fc.string({ maxLength: 50 })),
        )
        .map(([method, path, q, headers, body]) => ({
          method,
          url: `${base}${path}?${q}`,
          headers: {
            ...(Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<
              string,
              string
            >),
            ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          },
          ...(body !== undefined && method !== 'GET' ? { body } : {}),
        }));
      await run(t, 'identity endpoint', arb, 'identity', RUNS.identity);
    });

    test('vault data plane: keys, crypto operations, rotation policy, rng', async (t) => {
      const base = s.vaultUrl('fuzzkeys');
      const kname = pick(['k-ec', 'k-rsa', 'K-EC', 'new-key', 'gone'], seg, fc.constant('x'.repeat(128)));
      const kver = pick([ids.keyVersion, ''], fc.stringMatching(/^[0-9a-f]{32}$/), seg);
      const b64 = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64url'));
      const digest32 = fc
        .uint8Array({ minLength: 32, maxLength: 32 })
        .map((b) => Buffer.from(b).toString('base64url'));
      const op = fc.constantFrom('encrypt', 'decrypt', 'sign', 'verify', 'wrapkey', 'unwrapkey', 'nope');
      const path = fc.oneof(
        fc.constant('/keys'),
        kname.map((n) => `/keys/${n}`),
        kname.map((n) => `/keys/${n}/create`),
        fc.tuple(kname, kver).map(([n, v]) => `/keys/${n}/${v}`),
        fc.tuple(kname, kver, op).map(([n, v, o]) => `/keys/${n}/${v}/${o}`),
        kname.map((n) => `/keys/${n}/versions`),
        kname.map((n) => `/keys/${n}/rotate`),
        kname.map((n) => `/keys/${n}/rotationpolicy`),
        kname.map((n) => `/keys/${n}/backup`),
        fc.constant('/keys/restore'),
        fc.constant('/deletedkeys'),
        kname.map((n) => `/deletedkeys/${n}`),
        kname.map((n) => `/deletedkeys/${n}/recover`),
        fc.constant('/rng'),
      );
      const body = jsonBody(
        {
          kty: 'EC',
          crv: 'P-256',
          key_ops: ['sign', 'verify'],
          attributes: { enabled: true },
          tags: { a: 'b' },
        },
        { kty: 'RSA', key_size: 2048, key_ops: ['encrypt', 'decrypt', 'wrapKey'] },
        { kty: 'oct-HSM', key_size: 256 },
        { alg: 'RSA-OAEP', value: 'aGVsbG8' },
        { alg: 'ES256', value: Buffer.alloc(32, 1).toString('base64url') },
        { alg: 'ES256', digest: Buffer.alloc(32, 1).toString('base64url'), value: 'AAAA' },
        { attributes: { enabled: false, exp: 2_000_000_000 }, tags: { t: '1' }, key_ops: ['sign'] },
        {
          lifetimeActions: [{ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Rotate' } }],
          attributes: { expiryTime: 'P90D' },
        },
        { count: 16 },
        { value: 'AAAA' },
      ).chain((b) =>
        b === undefined
          ? fc.constant(b)
          : fc.oneof(
              { arbitrary: fc.constant(b), weight: 4 },
              b64.map((v) => b.replace(/"AAAA"/, JSON.stringify(v))),
              digest32.map(() => b),
            ),
      );
      const arb: fc.Arbitrary<Req> = fc
        .tuple(
          fc.constantFrom('GET', 'GET', 'POST', 'POST', 'POST', 'PUT', 'PATCH', 'DELETE'),
          path,
          pick(
            ['api-version=7.5', 'api-version=7.4', 'api%2Dversion=2025-07-01'],
            fc.constantFrom('', 'api-version=1'),
          ),
          fc.constantFrom('keys', 'keys', 'keys', 'keys', 'vaultAdmin', 'none', 'garbage'),
          body,
        )
        .map(([method, p, q, auth, b]) => ({
          method,
          url: `${base}${p}?${q}`,
          headers: {
            ...authHeader(auth),
            ...(b !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(b !== undefined && method !== 'GET' ? { body: b } : {}),
        }));
      await run(t, 'vault keys', arb, 'azure', RUNS.keys);
    });

    test('management API: ARM vaults, role assignments, directory, audit, provisioning keys, ARM resources', async (t) => {
      const sub = pick([ids.sub], fc.uuid(), seg);
      const rg = pick(['default', 'DEFAULT', 'nope'], seg);
      const vault = pick(
        ['fuzzmgmt', 'fuzzkeys', 'fuzz-new', 'FUZZMGMT'],
        seg,
        fc.constant('a'),
        fc.constant('x'.repeat(30)),
      );
      const guid = pick([ids.raId, ids.spId], fc.uuid(), seg);
      const arm = (p: string) => `/subscriptions/{sub}/resourceGroups/{rg}/providers/${p}`;
      const roleDef = `/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS['Key Vault Reader']}`;
      // [methods, path template, body examples]
      const routes: [string[], string, unknown[]][] = [
        [
          ['PUT', 'PATCH', 'GET', 'DELETE'],
          arm('Microsoft.KeyVault/vaults/{vault}'),
          [
            {
              location: 'local',
              tags: { env: 'fuzz' },
              properties: {
                sku: { family: 'A', name: 'standard' },
                tenantId: s.info.tenantId,
                enableRbacAuthorization: true,
                softDeleteRetentionInDays: 7,
                enablePurgeProtection: false,
                accessPolicies: [],
              },
            },
          ],
        ],
        [
          ['PUT'],
          arm('Microsoft.KeyVault/vaults/{vault}/accessPolicies/{kind}'),
          [
            {
              properties: {
                accessPolicies: [
                  {
                    tenantId: s.info.tenantId,
                    objectId: ids.spId,
                    permissions: { secrets: ['get', 'list'], keys: ['get'], certificates: [] },
                  },
                ],
              },
            },
          ],
        ],
        [['GET'], '/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults', []],
        [['GET'], arm('Microsoft.KeyVault/vaults'), []],
        [['GET'], '/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults', []],
        [
          ['GET', 'POST'],
          '/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{vault}',
          [],
        ],
        [
          ['POST'],
          '/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{vault}/purge',
          [],
        ],
        [
          ['PUT', 'GET', 'DELETE'],
          '{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}',
          [
            {
              properties: {
                roleDefinitionId: roleDef,
                principalId: ids.spId,
                principalType: 'ServicePrincipal',
              },
            },
          ],
        ],
        [['GET'], '{scope}/providers/Microsoft.Authorization/roleAssignments', []],
        [['GET'], '{scope}/providers/Microsoft.Authorization/roleDefinitions', []],
        [['GET'], `/providers/Microsoft.Authorization/roleDefinitions/{role}`, []],
        [['GET'], '/api/access/principals/{guid}', []],
        [['GET'], '/api/account', []],
        [
          ['GET', 'POST'],
          '/api/directory/servicePrincipals',
          [
            {
              displayName: 'fuzz-sp',
              identifierUri: 'api://fuzz',
              credential: { type: 'Password', years: 1 },
            },
            { displayName: 'fuzz-sp2', credential: null },
          ],
        ],
        [['GET', 'PATCH', 'DELETE'], '/api/directory/servicePrincipals/{guid}', [{ accountEnabled: true }]],
        [
          ['GET', 'POST'],
          '/api/directory/servicePrincipals/{guid}/credentials',
          [
            { type: 'Password', displayName: 'c', days: 30, append: true },
            { type: 'AsymmetricX509Cert', certificate: 'MIIB' },
          ],
        ],
        [['DELETE'], '/api/directory/servicePrincipals/{guid}/credentials/{keyId}', []],
        [['GET'], '/api/authority/signingKeys', []],
        [['GET'], '/api/audit', []],
        [['POST'], '/api/audit/verify', []],
        [
          ['GET', 'POST'],
          '/api/provisioning/keys',
          [
            {
              displayName: 'fuzz-pk',
              scopes: ['vaults:write'],
              expiresInSeconds: 600,
              maxUses: 3,
              allowedCidrs: ['127.0.0.1/32'],
              resourceGroup: 'default',
            },
          ],
        ],
        [['GET'], '/api/provisioning/keys/{pk}', []],
        [['POST'], '/api/provisioning/keys/{pk}/rotate', [{ graceSeconds: 60, expiresInSeconds: 3600 }]],
        [['POST'], '/api/provisioning/keys/{pk}/revoke', []],
        [['GET'], '/subscriptions', []],
        [['GET'], '/tenants', []],
        [['GET'], '/metadata/endpoints', []],
        [['GET'], '/subscriptions/{sub}/resources', []],
        [['GET'], '/subscriptions/{sub}/resourceGroups/{rg}/resources', []],
        [['GET'], '/v1.0/me', []],
        [['GET'], '/v1.0/users', []],
        [['GET'], '/v1.0/users/{guid}', []],
        [['GET'], '/v1.0/servicePrincipals', []],
        [['GET'], '/v1.0/servicePrincipals/{guid}', []],
        [['POST'], '/v1.0/directoryObjects/getByIds', [{ ids: [ids.spId], types: ['servicePrincipal'] }]],
        [
          ['GET', 'POST'],
          '/v1.0/applications',
          [{ displayName: 'fuzz-graph-app', identifierUris: ['api://fuzz-g'] }],
        ],
        [['GET', 'PATCH', 'DELETE'], '/v1.0/applications/{guid}', [{ displayName: 'fuzz-graph-app' }]],
        [['POST'], '/v1.0/applications/{guid}/addPassword', [{ passwordCredential: { displayName: 'f' } }]],
        [['POST'], '/v1.0/applications/{guid}/removePassword', [{ keyId: ids.credKeyId }]],
        [['POST', 'DELETE'], '/v1.0/servicePrincipals', [{ appId: ids.spAppId }]],
        [['GET'], '/subscriptions/{sub}', []],
        [['GET'], '/subscriptions/{sub}/resourcegroups', []],
        [
          ['GET', 'PUT'],
          '/subscriptions/{sub}/resourcegroups/{rg}',
          [{ location: 'local', tags: { a: 'b' } }],
        ],
        [
          ['PUT', 'GET', 'DELETE'],
          arm('Microsoft.ManagedIdentity/userAssignedIdentities/{name}'),
          [{ location: 'local', tags: { a: 'b' } }],
        ],
        [['GET'], arm('Microsoft.ManagedIdentity/userAssignedIdentities'), []],
        [
          ['PUT', 'PATCH', 'GET', 'DELETE'],
          arm('Microsoft.Web/sites/{name}'),
          [{ location: 'local', identity: { type: 'SystemAssigned' }, properties: {} }],
        ],
        [['PUT'], arm('Microsoft.Web/sites/{name}/config/appsettings'), [{ properties: { A: 'b' } }]],
        [['POST'], arm('Microsoft.Web/sites/{name}/config/appsettings/list'), []],
        [['PUT', 'GET', 'DELETE'], arm('Microsoft.Latchkey/hosts/{name}'), [{ properties: {} }]],
        [['GET'], '/api/hosts/{guid}/identities', []],
        [['GET', 'POST'], '/api/hosts/{guid}/certificates', [{ certificate: 'MIIB' }]],
      ];
      const fill = fc.record({
        sub,
        rg,
        vault,
        guid,
        kind: pick(['add', 'replace', 'remove'], seg),
        loc: pick(['local'], seg),
        role: pick([ROLE_IDS.Reader, ROLE_IDS.Owner], fc.uuid(), seg),
        keyId: pick([ids.credKeyId], fc.uuid(), seg),
        pk: pick([ids.pkId], fc.uuid(), seg),
        name: pick(['fuzz-res', 'fuzz-res2'], seg),
        scope: pick(
          [
            '',
            `/subscriptions/${ids.sub}`,
            `/subscriptions/${ids.sub}/resourceGroups/default`,
            `/subscriptions/${ids.sub}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/fuzzmgmt`,
          ],
          seg.map((x) => `/${x}`),
          fc.constant(
            `/subscriptions/${ids.sub}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/nope`,
          ),
        ),
      });
      const query = fc
        .record(
          {
            'api-version': pick(
              ['2023-07-01', '2022-04-01', '2023-01-31', '2022-03-01'],
              fc.string({ maxLength: 12 }),
            ),
            $filter: fc.oneof(
              fc.constant(`principalId eq '${ids.spId}'`),
              fc.constant('atScope()'),
              fc.constant("resourceType eq 'Microsoft.KeyVault/vaults' and name eq 'fuzzkeys'"),
              fc.constant(`servicePrincipalNames/any(c:c eq '${ids.spAppId}')`),
              fc.constant("startswith(displayName,'fuzz') or userPrincipalName eq 'x'"),
              fc.string({ maxLength: 60 }),
            ),
            $top: fc.oneof(fc.integer({ min: -2, max: 1001 }).map(String), fc.string({ maxLength: 6 })),
            top: fc.oneof(fc.integer({ min: -2, max: 1000 }).map(String), fc.string({ maxLength: 6 })),
            skiptoken: fc.oneof(fc.base64String({ maxLength: 20 }), fc.string({ maxLength: 20 })),
            operation: fc.string({ maxLength: 30 }),
            from: fc.oneof(
              fc.date().map((d) => (Number.isNaN(d.getTime()) ? 'x' : d.toISOString())),
              fc.string({ maxLength: 20 }),
            ),
            vault: fc.string({ maxLength: 30 }),
          },
          { requiredKeys: [] },
        )
        .map((q) => new URLSearchParams(q as Record<string, string>).toString());
      const routeArb = fc.integer({ min: 0, max: routes.length - 1 }).chain((i) => {
        const [methods, template, examples] = routes[i]!;
        return fc.tuple(
          fc.oneof(
            { arbitrary: fc.constantFrom(...methods), weight: 8 },
            fc.constantFrom('GET', 'PUT', 'POST', 'PATCH', 'DELETE', 'HEAD'),
          ),
          fc.constant(template),
          examples.length
            ? jsonBody(...examples)
            : fc.option(
                fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
                { nil: undefined },
              ),
        );
      });
      const arb: fc.Arbitrary<Req> = fc
        .tuple(
          routeArb,
          fill,
          query,
          fc.oneof(
            { arbitrary: fc.constant('admin'), weight: 12 },
            { arbitrary: fc.constant('graph'), weight: 2 },
            fc.constantFrom('pk', 'keys', 'none', 'garbage', 'basic'),
          ),
          fc.constantFrom(
            'application/json',
            'application/json',
            'application/json',
            'text/plain',
            'application/json; charset=utf-8',
          ),
        )
        .map(([[method, template, body], f, q, auth, ct]) => ({
          method,
          url: `${template.replace(/\{(\w+)\}/g, (_m, k: string) => String((f as Record<string, string>)[k]))}?${q}`,
          headers: { ...authHeader(auth), ...(body !== undefined ? { 'content-type': ct } : {}) },
          ...(body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body } : {}),
        }));
      const stats = await run(t, 'management', arb, 'azure', RUNS.management);
      // The run reached the operations, not only the front door.
      assert.ok((stats.get(200) ?? 0) + (stats.get(201) ?? 0) > 20, JSON.stringify([...stats]));
      assert.ok((stats.get(400) ?? 0) > 20, '(stats.get(400) ?? 0) > 20');
    });
  });
