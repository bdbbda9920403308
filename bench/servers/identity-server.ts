// Child process for bench/scenarios/identity.ts. One JSON line on stdout when ready:
//   up <dataDir> <resources>     — `latchkey up` whose built-in identity endpoint has its rate limit
//       lifted (one load generator would otherwise get 429s past 20 requests/s); an app with a
//       system-assigned identity on the local host and a session for it; <resources> extra token
//       audiences (service principals with an application ID URI) for cold-token measurements.
//   agent <dataDir> <resources>  — the same, but the app is placed on a second host served by a
//       `latchkey agent` process (enrolled here; rate limit lifted), as on a workload host.
//   bare <bodyBytes>             — a bare node:http server on 127.0.0.1 answering every request with
//       a JSON body of that size: the baseline.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enrollHost } from '../../src/identity-endpoint/enroll.js';
import { startUp } from '../../src/server/up.js';

const [mode, arg1, arg2] = process.argv.slice(2);
// The agent runs with this process's node flags (the bench's server flags, as bin/latchkey.js's
// shebang sets them, and LATCHKEY_BENCH_NODE_FLAGS), less tsx's loader when the sources are run.
const nodeFlags = process.execArgv.filter(
  (a, i, all) => !(a === '--import' && all[i + 1] === 'tsx') && !(a === 'tsx' && all[i - 1] === '--import'),
);
const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latchkey.js');
const UNLIMITED = ['--rate-limit', '100000', '--max-concurrent', '100000'];

/** Waits for the first JSON line a child prints. */
function readyLine<T>(child: ChildProcess): Promise<T> {
  return new Promise((res, rej) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (c: Buffer) => {
      err += c;
    });
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) res(JSON.parse(line) as T);
    });
    child.on('exit', (code) => rej(new Error(`exited ${code}: ${err}`)));
  });
}

if (mode === 'bare') {
  const size = Number(arg1);
  if (!Number.isInteger(size) || size < 16) throw new Error('usage: identity-server.ts bare <bodyBytes>');
  const body = JSON.stringify({ access_token: 'x'.repeat(size - 20) });
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
      });
      res.end(body);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else if ((mode === 'up' || mode === 'agent') && arg1) {
  const dataDir = arg1;
  const resources = Number(arg2 ?? 10);
  const up = await startUp({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    identityPort: mode === 'up' ? 0 : null,
    logLevel: 'warn',
    identityEndpoint: { rateLimit: { perSecond: 1e9, concurrent: 1e6 } },
  });
  const s = up.services;
  const tenantId = up.info.tenantId;
  const admin = (await s.principals.list(tenantId, 'user'))[0]!;
  const caller = { tenantId, oid: admin.id, appId: null, kind: 'user' as const };
  const meta = { requestId: 'bench', clientIp: '127.0.0.1' };
  let agent: ChildProcess | undefined;
  let stateDir = join(dataDir, 'identity');
  let endpoint = up.info.identityEndpoint;
  if (mode === 'agent') {
    // Enrol a second host through the management API, as `latchkey agent --enroll` does.
    const ca = readFileSync(up.info.caCertPath, 'utf8');
    const password = JSON.parse(readFileSync(up.info.adminCredentialsPath, 'utf8')).password as string;
    const port = new URL(up.info.authority).port;
    const token = (
      await s.tokenEndpoint.token({
        tenant: tenantId,
        form: {
          grant_type: 'password',
          client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
          username: admin.userName!,
          password,
          scope: `${s.config.managementResource}/.default`,
        },
        issuerBase: `https://localhost:${port}`,
        clientIp: '127.0.0.1',
      })
    ).access_token;
    const call = <T>(method: string, path: string, body?: unknown) =>
      new Promise<T>((res, rej) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = https.request(
          `${up.info.authority}${path}`,
          {
            method,
            ca,
            headers: {
              authorization: `Bearer ${token}`,
              ...(payload ? { 'content-type': 'application/json' } : {}),
            },
          },
          (r) => {
            let text = '';
            r.on('data', (c: Buffer) => {
              text += c;
            });
            r.on('end', () =>
              (r.statusCode ?? 500) < 300 ? res(JSON.parse(text) as T) : rej(new Error(text)),
            );
          },
        );
        req.on('error', rej);
        req.end(payload);
      });
    stateDir = join(dataDir, 'agent');
    await enrollHost(
      { server: up.info.authority, call },
      {
        stateDir,
        hostName: 'bench-host',
        subscriptionId: up.info.subscriptionId,
        resourceGroup: 'default',
        caFile: up.info.caCertPath,
      },
    );
    agent = spawn(
      process.execPath,
      [...nodeFlags, BIN, 'agent', '--json', '--port', '0', '--state-dir', stateDir, ...UNLIMITED],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    endpoint = (await readyLine<{ identityEndpoint: string }>(agent)).identityEndpoint;
  }
  await s.apps.createOrUpdate(caller, meta, {
    subscriptionId: up.info.subscriptionId,
    resourceGroup: 'default',
    name: 'bench-app',
    identity: { type: 'SystemAssigned' },
    ...(mode === 'agent' ? { host: 'bench-host' } : {}),
  });
  const audiences: string[] = [];
  for (let i = 0; i < resources; i++) {
    const sp = await s.principals.createServicePrincipal(tenantId, {
      displayName: `bench-api-${i}`,
      identifierUri: `api://bench-api-${i}`,
    });
    audiences.push(sp.identifierUri!);
  }
  const secret = readFileSync(join(stateDir, 'control.secret'), 'utf8').trim();
  const r = await fetch(`${endpoint}/control/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ app: 'bench-app' }),
  });
  if (r.status !== 201) throw new Error(`session: HTTP ${r.status} ${await r.text()}`);
  const session = (await r.json()) as { identityHeader: string };
  process.stdout.write(
    `${JSON.stringify({ endpoint, identityHeader: session.identityHeader, vaultResource: s.vaultResource, audiences })}\n`,
  );
  process.on('SIGTERM', () => {
    agent?.kill('SIGTERM');
    void up.close().then(() => process.exit(0));
  });
} else throw new Error('usage: identity-server.ts up|agent <dataDir> [resources] | bare <bodyBytes>');
