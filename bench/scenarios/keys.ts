// Key Vault signing through the vault (HTTPS, token check, authorization, key
// lookup, audit record, signature) against raw node:crypto signing in this
// process: what the full path costs over the signature itself.
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import https from 'node:https';
import {
  type BenchContext,
  type BenchServer,
  cpuRow,
  type HttpResult,
  type LoadResult,
  type LoadSpec,
  load,
  loadBracketed,
  opsPerSecond,
  row,
  type Scenario,
} from '../lib.js';

const CRYPTO_OFFICER = '14b46e9e-c2b7-41b4-b07b-48a6ebf60603';
const SECRETS_OFFICER = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7';
/** The secret GET measured beside the ES256 sign (1 KiB, as the `secrets` scenario's). */
const SECRET_PATH = '/secrets/bench-secret?api-version=7.5';
const VAULT = 'benchkeys';

/** JSON over HTTPS to the vault host (Host header routing; the dev certificate is for localhost). */
function vaultRequest(
  s: BenchServer,
  method: string,
  path: string,
  token: string,
  json?: unknown,
): Promise<HttpResult> {
  const port = s.hostPort.split(':')[1];
  const body = json === undefined ? undefined : JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        ca: s.ca,
        servername: 'localhost',
        headers: {
          host: `${VAULT}.vault.localhost:${port}`,
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {}
          resolve({ status: res.statusCode ?? 0, text, json: parsed });
        });
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const tokens = new WeakMap<BenchServer, Promise<string>>();
/** The vault, a Crypto Officer and its token: once per server (later rounds reuse them). */
function setup(s: BenchServer): Promise<string> {
  let t = tokens.get(s);
  if (!t) {
    t = createVault(s);
    tokens.set(s, t);
  }
  return t;
}

async function createVault(s: BenchServer) {
  const admin = await s.adminToken();
  const vaultPath = `/subscriptions/${s.info.subscriptionId}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/${VAULT}`;
  const v = await s.request('PUT', `${vaultPath}?api-version=2023-07-01`, {
    token: admin,
    json: {
      location: 'local',
      properties: {
        sku: { family: 'A', name: 'standard' },
        tenantId: s.info.tenantId,
        enableRbacAuthorization: true,
      },
    },
  });
  if (v.status !== 200 && v.status !== 201)
    throw new Error(`create vault: HTTP ${v.status} ${v.text.slice(0, 200)}`);
  const app = await s.createServicePrincipal('bench-keys');
  // Crypto Officer for the signs, Secrets Officer for the secret GET measured beside them.
  for (const role of [CRYPTO_OFFICER, SECRETS_OFFICER]) {
    const ra = await s.request(
      'PUT',
      `${vaultPath}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`,
      {
        token: admin,
        json: {
          properties: {
            roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${role}`,
            principalId: app.objectId,
          },
        },
      },
    );
    if (ra.status !== 201) throw new Error(`role assignment: HTTP ${ra.status} ${ra.text.slice(0, 200)}`);
  }
  const t = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'client_credentials',
      client_id: app.appId,
      client_secret: app.secret!,
      scope: `${s.info.vaultResource}/.default`,
    },
  });
  if (t.status !== 200) throw new Error(`vault token: HTTP ${t.status} ${t.text.slice(0, 200)}`);
  const token = t.json.access_token as string;
  const put = await vaultRequest(s, 'PUT', SECRET_PATH, token, { value: 's'.repeat(1024) });
  if (put.status !== 200) throw new Error(`secret set: HTTP ${put.status} ${put.text.slice(0, 200)}`);
  return token;
}

async function measure(ctx: BenchContext, s: BenchServer, token: string, alg: 'ES256' | 'RS256') {
  const create = await vaultRequest(
    s,
    'POST',
    `/keys/bench-${alg}/create?api-version=7.5`,
    token,
    alg === 'ES256' ? { kty: 'EC', crv: 'P-256' } : { kty: 'RSA', key_size: 2048 },
  );
  if (create.status !== 200)
    throw new Error(`create key: HTTP ${create.status} ${create.text.slice(0, 200)}`);
  const kid = new URL(create.json.key.kid as string);
  const digest = createHash('sha256').update('benchmark message').digest();
  const body = JSON.stringify({ alg, value: digest.toString('base64url') });
  const path = `${kid.pathname}/sign?api-version=7.5`;
  const probe = await vaultRequest(s, 'POST', path, token, JSON.parse(body));
  if (probe.status !== 200) throw new Error(`sign: HTTP ${probe.status} ${probe.text.slice(0, 200)}`);

  // Baseline: the same signature with node:crypto in this process (no HTTP, no database).
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  ctx.log(`  raw ${alg} signing (node:crypto) …`);
  const raw = await opsPerSecond(
    () =>
      sign(
        'sha256',
        Buffer.from('benchmark message'),
        alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey,
      ),
    2_000,
  );
  ctx.record(row({ scenario: 'keys', metric: `raw ${alg} sign (node:crypto)`, value: raw, unit: 'ops/s' }));

  const port = s.hostPort.split(':')[1];
  const host = `${VAULT}.vault.localhost:${port}`;
  const signSpec: LoadSpec = {
    url: `https://${s.hostPort}${path}`,
    host,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
    serverPids: [s.pid],
  };
  let r: LoadResult;
  if (alg === 'ES256') {
    // The target sign ÷ GET compares two operations of one vault: the GET on this server, by the
    // same caller, half before and half after the sign (loadBracketed), not another server's GET
    // measured minutes away (docs/performance.md, session 18).
    ctx.log(
      `  secret GET, half before and half after: ${alg} sign through the vault (${ctx.options.connections} connections) …`,
    );
    const getSpec: LoadSpec = {
      url: `https://${s.hostPort}${SECRET_PATH}`,
      host,
      headers: { authorization: `Bearer ${token}` },
      serverPids: [s.pid],
    };
    const bracketed = await loadBracketed(getSpec, signSpec, ctx.options);
    r = bracketed.subject;
    const get = bracketed.baseline;
    ctx.record(
      row({
        scenario: 'keys',
        metric: 'secret GET beside the ES256 sign throughput',
        value: get.rps,
        unit: 'req/s',
      }),
    );
    for (const c of cpuRow('keys', 'secret GET beside the ES256 sign', get)) ctx.record(c);
    if (get.non2xx || get.errors) {
      ctx.record(
        row({
          scenario: 'keys',
          metric: 'secret GET beside the ES256 sign failed requests',
          value: get.non2xx + get.errors,
          unit: 'requests',
        }),
      );
      ctx.log(`  WARNING: secret GET: ${get.non2xx} non-2xx responses, ${get.errors} connection errors`);
    }
  } else {
    ctx.log(`  ${alg} sign through the vault (${ctx.options.connections} connections) …`);
    r = await load(signSpec, ctx.options);
  }
  ctx.record(
    row({
      scenario: 'keys',
      metric: `vault ${alg} sign throughput`,
      value: r.rps,
      unit: 'ops/s',
      baseline: raw,
    }),
  );
  for (const c of cpuRow('keys', `vault ${alg} sign`, r)) ctx.record(c);
  ctx.record(
    row({ scenario: 'keys', metric: `vault ${alg} sign latency p50`, value: r.latencyMs.p50, unit: 'ms' }),
  );
  ctx.record(
    row({ scenario: 'keys', metric: `vault ${alg} sign latency p99`, value: r.latencyMs.p99, unit: 'ms' }),
  );
  if (r.non2xx || r.errors) {
    ctx.record(
      row({
        scenario: 'keys',
        metric: `vault ${alg} sign failed requests`,
        value: r.non2xx + r.errors,
        unit: 'requests',
      }),
    );
    ctx.log(`  WARNING: ${alg}: ${r.non2xx} non-2xx responses, ${r.errors} connection errors`);
  }
}

const scenario: Scenario = {
  name: 'keys',
  description: 'sign operations per second through the vault (ES256, RS256) vs raw node:crypto signing',
  async run(ctx) {
    const s = await ctx.server();
    const token = await setup(s);
    await measure(ctx, s, token, 'ES256');
    await measure(ctx, s, token, 'RS256');
  },
};

export default scenario;
