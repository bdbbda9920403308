// One server under the bench's load, for profiling (issue 19; docs/performance.md):
//   node --import tsx bench/profile.ts get|get-server|floor|set|sign|sign-rsa|sign-get|secret|assertion|assertion-es256|tokens [seconds]
// get: a secret GET on the `secrets` scenario's Latchkey server; floor: the same on its floor; set:
// a secret SET (PUT of a new version) on that server, as the scenario's SET;
// get-server: the same GET on `latchkey server` on SQLite with the `nodes` scenario's flags;
// sign: ES256 (sign-rsa: RS256) sign on `latchkey up`, as the `keys` scenario; sign-get: a secret GET
// and the ES256 sign on that one server, in alternating windows (PROFILE_WINDOWS pairs); secret / assertion /
// assertion-es256: client_credentials tokens with a client secret / a fresh PS256 client assertion
// (signed ahead, PROFILE_ASSERTION_RATE per second of the run, 3,000 by default) / a fresh ES256
// one (signed per request), as `tokens`; tokens: the three in turn on one server. 32 keep-alive
// connections, 2 s of warm-up, then the measured window; prints one JSON line (req/s, server CPU
// µs per request). Run the server with LATCHKEY_BENCH_NODE_FLAGS (e.g. `--cpu-prof
// --cpu-prof-dir=DIR`, or `--perf-basic-prof` with PROFILE_PERF), and attach during the window:
//   PROFILE_PERF=FILE    perf record -g on the server (on-CPU samples only)
//   PROFILE_STRACE=1     strace -c -f on the server (system calls per request)
//   PROFILE_INSTR=FILE   perf stat: instructions per request (needs hardware counters)
//   PROFILE_PIN=1        as the bench's --pin: this process on core 0, the server on the others
//   PROFILE_WINDOWS=N    (get, floor, set, the token modes) N measured windows in a row on the same server, a line each:
//                        tells the server's own drift from the machine's (docs/performance.md, session 13)
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { issueServerCert, makeTestCa } from '../test/helpers/tls-ca.js';
import { assertionBodies, assertionCertificate, presignedAssertionBodies } from './client-assertions.js';
import {
  type LoadSpec,
  load,
  pinCores,
  pinningFor,
  REPO_ROOT,
  spawnBenchServer,
  spawnLatchkey,
  startBenchServer,
  tempDirs,
} from './lib.js';
import { seed } from './scenarios/nodes.js';

const [mode = 'get', secondsText = '8'] = process.argv.slice(2);
const options = { durationS: Number(secondsText), warmupS: 2, connections: 32, repeats: 1 };
const CRYPTO_OFFICER = '14b46e9e-c2b7-41b4-b07b-48a6ebf60603';
const KV_ADMINISTRATOR = '00482a5a-887f-4fb3-b363-3b7fe8e74483';

/** Starts the tool the environment asks for on the server; the returned function stops it. */
function attach(pid: number | undefined): (() => Promise<void>) | undefined {
  const e = process.env;
  const argv =
    pid === undefined
      ? undefined
      : e.PROFILE_INSTR
        ? ['perf', 'stat', '-x', ',', '-e', 'instructions,task-clock', '-o', e.PROFILE_INSTR, '-p', `${pid}`]
        : e.PROFILE_PERF
          ? ['perf', 'record', '-F', '999', '-g', '-o', e.PROFILE_PERF, '-p', `${pid}`]
          : e.PROFILE_STRACE
            ? ['strace', '-c', '-f', '-p', `${pid}`]
            : undefined;
  if (!argv) return undefined;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
  return () =>
    new Promise<void>((r) => {
      child.on('exit', () => r());
      child.kill('SIGINT');
    });
}

/** Warm-up, then the measured window with the tool attached; one JSON line (`label`: its mode). */
async function measure(spec: LoadSpec, pid: number | undefined, label = mode) {
  await load(spec, { ...options, durationS: options.warmupS, warmupS: 0 });
  const stop = attach(pid);
  const r = await load(spec, { ...options, warmupS: 0 });
  await stop?.();
  const instr = process.env.PROFILE_INSTR
    ? Number(/^([\d.]+),[^,]*,instructions/m.exec(readFileSync(process.env.PROFILE_INSTR, 'utf8'))?.[1])
    : Number.NaN;
  console.log(
    JSON.stringify({
      mode: label,
      rps: Math.round(r.rps),
      cpuUsPerRequest: Math.round(r.cpuUsPerRequest),
      requests: r.requests,
      failed: r.non2xx + r.errors,
      ...(Number.isFinite(instr) ? { kInstructionsPerRequest: Math.round(instr / r.requests / 1000) } : {}),
    }),
  );
}

async function secretGet(dataDir: string) {
  const script = join(REPO_ROOT, 'bench', 'servers', 'secrets-server.ts');
  const lk = await spawnBenchServer<{ port: number; vaultHost: string; token: string }>(script, [
    'latchkey',
    dataDir,
    '1',
  ]);
  const { vaultHost, token } = lk.info;
  const path = '/secrets/bench-secret?api-version=7.5';
  const authorization = `Bearer ${token}`;
  const set = await load(
    {
      url: `https://127.0.0.1:${lk.info.port}${path}`,
      host: vaultHost,
      method: 'PUT',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ value: 's'.repeat(1024) }),
    },
    { ...options, durationS: 0.2, warmupS: 0, connections: 1 },
  );
  if (set.non2xx || set.errors) throw new Error('secret set failed');
  let server = lk;
  let port = lk.info.port;
  if (mode === 'floor') {
    await lk.stop();
    const floor = await spawnBenchServer<{ port: number }>(script, ['floor', dataDir, '1024', '1']);
    server = { ...floor, info: { ...lk.info, port: floor.info.port } };
    port = floor.info.port;
  }
  try {
    const spec: LoadSpec =
      mode === 'set'
        ? {
            // As the `secrets` scenario's SET: a new version of one secret per request.
            url: `https://127.0.0.1:${port}/secrets/bench-set?api-version=7.5`,
            host: vaultHost,
            method: 'PUT',
            headers: { authorization, 'content-type': 'application/json' },
            body: JSON.stringify({ value: 's'.repeat(1024) }),
            serverPids: [server.child.pid],
          }
        : {
            url: `https://127.0.0.1:${port}${path}`,
            host: vaultHost,
            headers: { authorization },
            serverPids: [server.child.pid],
          };
    const windows = Math.max(1, Number(process.env.PROFILE_WINDOWS ?? 1) || 1);
    for (let w = 0; w < windows; w++) await measure(spec, server.child.pid);
  } finally {
    await server.stop();
  }
}

/** `latchkey server` on SQLite, seeded and started as the `nodes` scenario's SQLite node. */
async function serverGet(dataDir: string) {
  const ca = await makeTestCa();
  const leaf = await issueServerCert(ca, ['localhost', '*.vault.localhost']);
  writeFileSync(join(dataDir, 'tls.pem'), leaf.certPem);
  writeFileSync(join(dataDir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
  writeFileSync(join(dataDir, 'root.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  mkdirSync(join(dataDir, 'sqlite'), { mode: 0o700 });
  const admin = join(dataDir, 'admin.json');
  const lk = await spawnLatchkey<{ port: number }>(
    [
      'server',
      '--json',
      ...['--host', '127.0.0.1', '--port', '0', '--public-port', '443'],
      ...['--root-key-file', join(dataDir, 'root.key')],
      ...['--tls-cert', join(dataDir, 'tls.pem'), '--tls-key', join(dataDir, 'tls.key')],
      ...['--storage', `sqlite:${join(dataDir, 'sqlite', 'latchkey.db')}`],
      ...['--public-host', 'localhost', '--vault-domain', 'vault.localhost', '--log-level', 'warn'],
      ...['--bootstrap-admin', admin, '--tenant-domain', 'bench.example'],
      ...['--limit', 'per-address-rate=0', '--limit', 'per-principal-rate=0'],
    ],
    { LATCHKEY_CONFIG_DIR: dataDir },
  );
  try {
    const token = await seed(lk.info.port, admin);
    await measure(
      {
        url: `https://127.0.0.1:${lk.info.port}/secrets/bench-secret?api-version=7.5`,
        host: 'bench.vault.localhost',
        headers: { authorization: `Bearer ${token}` },
        serverPids: [lk.child.pid],
      },
      lk.child.pid,
    );
  } finally {
    await lk.stop();
  }
}

async function sign(dataDir: string, alg: 'ES256' | 'RS256', withGet = false) {
  const s = await startBenchServer(dataDir);
  try {
    const admin = await s.adminToken();
    const vaultPath = `/subscriptions/${s.info.subscriptionId}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/benchkeys`;
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
    if (v.status !== 200 && v.status !== 201) throw new Error(`create vault: HTTP ${v.status}`);
    const app = await s.createServicePrincipal('bench-keys');
    await s.request(
      'PUT',
      `${vaultPath}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`,
      {
        token: admin,
        json: {
          properties: {
            // sign-get also sets and reads a secret: Key Vault Administrator (keys and secrets).
            roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${withGet ? KV_ADMINISTRATOR : CRYPTO_OFFICER}`,
            principalId: app.objectId,
          },
        },
      },
    );
    const t = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: app.appId,
        client_secret: app.secret!,
        scope: `${s.info.vaultResource}/.default`,
      },
    });
    const host = `benchkeys.vault.localhost:${s.hostPort.split(':')[1]}`;
    const headers = { authorization: `Bearer ${t.json.access_token}`, 'content-type': 'application/json' };
    const created = await vaultPost(s.hostPort, host, s.ca, '/keys/bench/create?api-version=7.5', headers, {
      ...(alg === 'ES256' ? { kty: 'EC', crv: 'P-256' } : { kty: 'RSA', key_size: 2048 }),
    });
    // As the `keys` scenario: the key id with its version (PROFILE_UNVERSIONED=1: `/keys/{name}/sign`).
    const keyPath = process.env.PROFILE_UNVERSIONED ? '/keys/bench' : new URL(created.key.kid).pathname;
    const digest = createHash('sha256').update('benchmark message').digest();
    const signSpec: LoadSpec = {
      url: `https://${s.hostPort}${keyPath}/sign?api-version=7.5`,
      host,
      method: 'POST',
      headers,
      body: JSON.stringify({ alg, value: digest.toString('base64url') }),
      serverPids: [s.pid],
    };
    if (!withGet) {
      await measure(signSpec, s.pid);
      return;
    }
    // sign-get: a secret GET (1 KiB value, as `secrets`) on the same server, windows alternating.
    const secretUrl = `https://${s.hostPort}/secrets/bench-secret?api-version=7.5`;
    const put = await load(
      { url: secretUrl, host, method: 'PUT', headers, body: JSON.stringify({ value: 's'.repeat(1024) }) },
      { ...options, durationS: 0.2, warmupS: 0, connections: 1 },
    );
    if (put.non2xx || put.errors) throw new Error('secret set failed');
    const getSpec: LoadSpec = {
      url: secretUrl,
      host,
      headers: { authorization: headers.authorization },
      serverPids: [s.pid],
    };
    const windows = Math.max(1, Number(process.env.PROFILE_WINDOWS ?? 1) || 1);
    for (let w = 0; w < windows; w++) {
      await measure(getSpec, s.pid, 'get-up');
      await measure(signSpec, s.pid, 'sign');
    }
  } finally {
    await s.stop();
  }
}

type TokenKind = 'secret' | 'assertion' | 'assertion-es256';

/**
 * client_credentials tokens on `latchkey up`, with a client secret or a fresh assertion each (as
 * `tokens`); `kinds` run in turn on the one server, PROFILE_WINDOWS times (mode `tokens`: all three,
 * interleaved, so that the ratios compare windows of the same server minutes apart at most).
 */
async function tokens(dataDir: string, kinds: readonly TokenKind[]) {
  const s = await startBenchServer(dataDir);
  try {
    const tokenPath = `/${s.info.tenantId}/oauth2/v2.0/token`;
    const tokenUrl = `${s.info.authority}${tokenPath}`;
    const scope = `${s.info.vaultResource}/.default`;
    const windows = Math.max(1, Number(process.env.PROFILE_WINDOWS ?? 1) || 1);
    const specs: [TokenKind, LoadSpec][] = [];
    for (const kind of kinds) {
      let body: string | undefined;
      let nextBody: (() => string) | undefined;
      if (kind === 'secret') {
        const app = await s.createServicePrincipal('profile-secret');
        body = new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: app.appId,
          client_secret: app.secret!,
          scope,
        }).toString();
      } else {
        const cert = await assertionCertificate(`profile-${kind}`, kind === 'assertion' ? 'PS256' : 'ES256');
        const app = await s.createServicePrincipal(`profile-${kind}`, cert.pem);
        nextBody = assertionBodies(cert, app.appId, tokenUrl, scope);
        if (kind === 'assertion') {
          const perSecond = Number(process.env.PROFILE_ASSERTION_RATE ?? 3_000);
          const perWindow = perSecond * (options.warmupS + options.durationS);
          const count = Math.ceil(windows * perWindow) + 2 * options.connections;
          ({ nextBody } = await presignedAssertionBodies(cert, app.appId, tokenUrl, scope, count));
        }
      }
      const probe = await s.request('POST', tokenPath, {
        form: Object.fromEntries(new URLSearchParams(body ?? nextBody!())),
      });
      if (probe.status !== 200) throw new Error(`token request failed: HTTP ${probe.status} ${probe.text}`);
      specs.push([
        kind,
        {
          url: `https://${s.hostPort}${tokenPath}`,
          host: new URL(s.info.authority).host,
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          ...(body !== undefined ? { body } : {}),
          ...(nextBody ? { nextBody } : {}),
          serverPids: [s.pid],
        },
      ]);
    }
    for (let w = 0; w < windows; w++) for (const [kind, spec] of specs) await measure(spec, s.pid, kind);
  } finally {
    await s.stop();
  }
}

/** A JSON POST to the vault host over HTTPS (setup only). */
function vaultPost(
  hostPort: string,
  host: string,
  ca: string,
  path: string,
  headers: Record<string, string>,
  json: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: a Key Vault response body
): Promise<any> {
  const [hostname, port] = hostPort.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: hostname,
        port,
        path,
        method: 'POST',
        ca,
        servername: 'localhost',
        headers: { ...headers, host },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200)
            reject(new Error(`POST ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve(JSON.parse(text));
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(json));
  });
}

if (process.env.PROFILE_PIN) pinCores(pinningFor(cpus().length));
const dirs = tempDirs();
try {
  const dataDir = dirs.make('latchkey-profile-');
  if (mode === 'get' || mode === 'floor' || mode === 'set') await secretGet(dataDir);
  else if (mode === 'get-server') await serverGet(dataDir);
  else if (mode === 'sign' || mode === 'sign-rsa') await sign(dataDir, mode === 'sign' ? 'ES256' : 'RS256');
  else if (mode === 'sign-get') await sign(dataDir, 'ES256', true);
  else if (mode === 'secret' || mode === 'assertion' || mode === 'assertion-es256')
    await tokens(dataDir, [mode]);
  else if (mode === 'tokens') await tokens(dataDir, ['secret', 'assertion', 'assertion-es256']);
  else
    throw new Error(
      'usage: bench/profile.ts get|get-server|floor|set|sign|sign-rsa|sign-get|secret|assertion|assertion-es256|tokens [seconds]',
    );
} finally {
  dirs.cleanup();
}
