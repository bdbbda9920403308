// Two nodes vs one: secret GET throughput of `latchkey server` nodes sharing one PostgreSQL. One
// node under the whole load first; then a second node joins and each takes half the connections
// (two load generators at once, as behind a balancer). Needs PostgreSQL (LATCHKEY_BENCH_POSTGRES_URL,
// else LATCHKEY_TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/test): a fresh database
// is created and dropped. Skipped, with a note, when PostgreSQL is not reachable.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import pg from 'pg';
import { findRole } from '../../src/access/roles.js';
import { issueServerCert, makeTestCa } from '../../test/helpers/tls-ca.js';
import {
  type BenchContext,
  type ChildServer,
  cpuRow,
  type LoadResult,
  load,
  row,
  type Scenario,
  spawnLatchkey,
} from '../lib.js';

const VALUE_BYTES = 1024;
const vaultHost = 'bench.vault.localhost';
const path = '/secrets/bench-secret?api-version=7.5';
const CLI_CLIENT_ID = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const PG_URL =
  process.env.LATCHKEY_BENCH_POSTGRES_URL ??
  process.env.LATCHKEY_TEST_POSTGRES_URL ??
  'postgres://postgres@127.0.0.1:5432/test';

interface Ready {
  port: number;
}

/** One request to a node on 127.0.0.1 with a Host header (no certificate check: setup only). */
function call(
  port: number,
  method: string,
  path: string,
  o: { host?: string; token?: string; json?: unknown; form?: Record<string, string> } = {},
) {
  // biome-ignore lint/suspicious/noExplicitAny: setup responses are arbitrary JSON, read field by field
  return new Promise<{ status: number; text: string; json: any }>((resolve, reject) => {
    const headers: Record<string, string> = { host: o.host ?? 'localhost' };
    let body: string | undefined;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers['content-type'] = 'application/json';
    } else if (o.form) {
      body = new URLSearchParams(o.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const req = https.request(
      { host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false, servername: 'localhost' },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const must = (r: { status: number; text: string }, ok: number[], what: string) => {
  if (!ok.includes(r.status)) throw new Error(`${what}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
};

/** A fresh database on the PostgreSQL server, or undefined (with the reason) when it is unreachable. */
async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> } | { skip: string }> {
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
  } catch (e) {
    await admin.end().catch(() => {});
    return { skip: (e as Error).message };
  }
  const name = `lk_bench_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * A vault `bench` with the secret `bench-secret` (VALUE_BYTES) on a freshly bootstrapped node, and a
 * token of a Key Vault Secrets Officer for it (the same on every node sharing the database).
 */
export async function seed(port1: number, adminFile: string): Promise<string> {
  const admin = JSON.parse(readFileSync(adminFile, 'utf8')) as {
    tenantId: string;
    userName: string;
    password: string;
  };
  const tokenOf = async (form: Record<string, string>) => {
    const r = await call(port1, 'POST', `/${admin.tenantId}/oauth2/v2.0/token`, { form });
    must(r, [200], 'token');
    return r.json.access_token as string;
  };
  const adminToken = await tokenOf({
    grant_type: 'password',
    client_id: CLI_CLIENT_ID,
    username: admin.userName,
    password: admin.password,
    scope: 'https://management.latchkey.localhost/.default',
  });
  const subs = await call(port1, 'GET', '/subscriptions?api-version=2022-12-01', { token: adminToken });
  must(subs, [200], 'subscriptions');
  const vaultId = `/subscriptions/${subs.json.value[0].subscriptionId}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/bench`;
  must(
    await call(port1, 'PUT', `${vaultId}?api-version=2023-07-01`, {
      token: adminToken,
      json: {
        location: 'local',
        properties: { sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true },
      },
    }),
    [200, 201],
    'vault',
  );
  const sp = await call(port1, 'POST', '/api/directory/servicePrincipals', {
    token: adminToken,
    json: { displayName: 'bench-nodes' },
  });
  must(sp, [201], 'service principal');
  must(
    await call(
      port1,
      'PUT',
      `${vaultId}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`,
      {
        token: adminToken,
        json: {
          properties: {
            roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${findRole('Key Vault Secrets Officer')!.id}`,
            principalId: sp.json.servicePrincipal.id,
          },
        },
      },
    ),
    [201],
    'role assignment',
  );
  const token = await tokenOf({
    grant_type: 'client_credentials',
    client_id: sp.json.servicePrincipal.appId,
    client_secret: sp.json.credential.secretText,
    scope: 'https://vault.localhost/.default',
  });
  must(
    await call(port1, 'PUT', path, { host: vaultHost, token, json: { value: 's'.repeat(VALUE_BYTES) } }),
    [200],
    'secret set',
  );
  return token;
}

const scenario: Scenario = {
  name: 'nodes',
  description: `secret GET (${VALUE_BYTES} B) on two latchkey server nodes sharing PostgreSQL vs one node`,
  async run(ctx: BenchContext) {
    const db = await freshDatabase();
    if ('skip' in db) {
      ctx.log(`  skipped: PostgreSQL is not reachable (set LATCHKEY_BENCH_POSTGRES_URL): ${db.skip}`);
      return;
    }
    const dir = ctx.tmpDir('latchkey-bench-nodes-');
    const ca = await makeTestCa();
    const leaf = await issueServerCert(ca, ['localhost', '*.vault.localhost']);
    writeFileSync(join(dir, 'tls.pem'), leaf.certPem);
    writeFileSync(join(dir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'root.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    // Identical flags for both nodes; the load generator is one address, so per-address limits are off.
    const args = [
      'server',
      '--json',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--public-port',
      '443',
      '--root-key-file',
      join(dir, 'root.key'),
      '--tls-cert',
      join(dir, 'tls.pem'),
      '--tls-key',
      join(dir, 'tls.key'),
      '--storage',
      db.url,
      '--public-host',
      'localhost',
      '--vault-domain',
      'vault.localhost',
      '--log-level',
      'warn',
      '--bootstrap-admin',
      join(dir, 'admin.json'),
      '--tenant-domain',
      'bench.example',
      '--limit',
      'per-address-rate=0',
      '--limit',
      'per-principal-rate=0',
    ];
    const env = { LATCHKEY_CONFIG_DIR: dir };
    const started: ChildServer<Ready>[] = [];
    try {
      ctx.log('  starting node 1 (PostgreSQL) …');
      const one = await spawnLatchkey<Ready>(args, env);
      started.push(one);
      const port1 = one.info.port;
      const token = await seed(port1, join(dir, 'admin.json'));
      const spec = (port: number, server: ChildServer<Ready>) => ({
        url: `https://127.0.0.1:${port}${path}`,
        host: vaultHost,
        headers: { authorization: `Bearer ${token}` },
        serverPids: [server.child.pid],
      });

      const c = ctx.options.connections;
      ctx.log(`  one node: secret GET (${c} connections) …`);
      const single = await load(spec(port1, one), ctx.options);
      ctx.log('  starting node 2 on the same database …');
      const two = await spawnLatchkey<Ready>(args, env);
      started.push(two);
      const port2 = two.info.port;
      must(await call(port2, 'GET', path, { host: vaultHost, token }), [200], 'secret GET on node 2');
      ctx.log(`  two nodes: secret GET (${Math.ceil(c / 2)} connections each, at once) …`);
      const half = { ...ctx.options, connections: Math.max(1, Math.ceil(c / 2)) };
      const [a, b] = await Promise.all([load(spec(port1, one), half), load(spec(port2, two), half)]);
      const both: LoadResult = {
        rps: a.rps + b.rps,
        cpuUsPerRequest:
          (a.cpuUsPerRequest * a.requests + b.cpuUsPerRequest * b.requests) / (a.requests + b.requests),
        requests: a.requests + b.requests,
        non2xx: a.non2xx + b.non2xx,
        errors: a.errors + b.errors,
        latencyMs: {
          p50: Math.max(a.latencyMs.p50, b.latencyMs.p50),
          p90: Math.max(a.latencyMs.p90, b.latencyMs.p90),
          p99: Math.max(a.latencyMs.p99, b.latencyMs.p99),
          max: Math.max(a.latencyMs.max, b.latencyMs.max),
        },
      };
      const rec = (
        metric: string,
        value: number,
        unit: string,
        extra: Partial<Parameters<typeof row>[0]> = {},
      ) => ctx.record(row({ scenario: 'nodes', metric, value, unit, ...extra }));
      rec('one node secret GET throughput', single.rps, 'req/s');
      rec('one node secret GET latency p50', single.latencyMs.p50, 'ms');
      for (const c of cpuRow('nodes', 'one node secret GET', single)) ctx.record(c);
      for (const c of cpuRow('nodes', 'two nodes secret GET', both)) ctx.record(c);
      rec('two nodes secret GET throughput', both.rps, 'req/s', { baseline: single.rps });
      rec('two nodes secret GET latency p50 (slower node)', both.latencyMs.p50, 'ms');
      rec('two nodes / one node', both.rps / single.rps, 'ratio');
      // The same command and flags on SQLite (a data file of its own): the denominator of
      // "PostgreSQL node GET ÷ SQLite node GET", a node that differs from the first in its store only.
      ctx.log(`  one node on SQLite, the same flags: secret GET (${c} connections) …`);
      const sqliteAdmin = join(dir, 'admin-sqlite.json');
      const sqliteArgs = args.map((a, i) =>
        args[i - 1] === '--storage'
          ? `sqlite:${join(dir, 'sqlite', 'latchkey.db')}`
          : args[i - 1] === '--bootstrap-admin'
            ? sqliteAdmin
            : a,
      );
      const lite = await spawnLatchkey<Ready>(sqliteArgs, env);
      started.push(lite);
      const liteToken = await seed(lite.info.port, sqliteAdmin);
      const sqlite = await load(
        { ...spec(lite.info.port, lite), headers: { authorization: `Bearer ${liteToken}` } },
        ctx.options,
      );
      rec('one node on SQLite secret GET throughput', sqlite.rps, 'req/s');
      for (const c of cpuRow('nodes', 'one node on SQLite secret GET', sqlite)) ctx.record(c);
      rec('one node on PostgreSQL ÷ on SQLite', single.rps / sqlite.rps, 'ratio');
      for (const [label, r] of [
        ['one node', single],
        ['two nodes', both],
        ['SQLite node', sqlite],
      ] as const) {
        if (r.non2xx || r.errors) {
          rec(`${label} failed requests`, r.non2xx + r.errors, 'requests');
          ctx.log(`  WARNING: ${label}: ${r.non2xx} non-2xx responses, ${r.errors} connection errors`);
        }
      }
    } finally {
      for (const s of started.reverse()) await s.stop();
      await db
        .drop()
        .catch((e: unknown) => ctx.log(`  could not drop the bench database: ${(e as Error).message}`));
    }
  },
};

export default scenario;
