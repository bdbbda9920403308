import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { localhostLookup } from '../../src/cli/http.js';
import { createVaultApp } from '../../src/http/vault-app.js';
import { bootstrapDefaults } from '../../src/server/bootstrap.js';
import { loadDevConfig } from '../../src/server/dev.js';
import { createLogger } from '../../src/server/logger.js';
import { createMainApp } from '../../src/server/main-app.js';
import { createServices } from '../../src/server/services.js';
import { startUp, type UpHandle, type UpOptions } from '../../src/server/up.js';

export interface TestServer extends UpHandle {
  dataDir: string;
  ca: string;
  /** An https.Agent that trusts the dev CA and resolves *.localhost to 127.0.0.1 (pass as `agent` to Azure SDK clients). */
  agent: https.Agent;
  admin: { userName: string; password: string; tenantId: string };
  vaultUrl(name: string): string;
  /** JSON over HTTPS to the server (or a vault host), trusting the dev CA. */
  request(
    method: string,
    url: string,
    opts?: {
      headers?: Record<string, string>;
      body?: string | Buffer;
      json?: unknown;
      form?: Record<string, string>;
    },
  ): Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    text: string;
    // biome-ignore lint/suspicious/noExplicitAny: response bodies are arbitrary JSON, narrowed by the assertions that read them
    json: any;
  }>;
  adminToken(resource?: string): Promise<string>;
  stop(): Promise<void>;
}

type Send = (
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: string | Buffer | undefined,
) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>;

/** Starts a real `latchkey up` in-process on port 0 with a fresh data dir. */
export async function startTestServer(opts: Partial<UpOptions> = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'latchkey-test-'));
  const handle = await startUp({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    identityPort: 0,
    logLevel: 'silent' as never,
    ...opts,
  });
  const ca = readFileSync(handle.info.caCertPath, 'utf8');
  const agent = new https.Agent({ ca, keepAlive: true, lookup: localhostLookup as never });
  const send: Send = (method, url, headers, body) =>
    new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  return testClient(handle, { dataDir, ca, agent, send, ownDataDir: !opts.dataDir });
}

/**
 * The same stack as `startTestServer` (config, services, the main and vault apps, bootstrap),
 * without a listener: requests go through Fastify's `inject()`, routed by Host as the HTTPS
 * listener routes them (src/http/listen.ts). For route rules (authorization, validation, error
 * shapes); anything that needs the wire (TLS, official clients, the identity endpoint, background
 * jobs, connection limits, proxies) uses `startTestServer`. `agent` and the URLs in `info` point at
 * port 1, where nothing listens: a test that reaches for the wire fails loudly.
 */
export async function startTestApp(opts: Partial<UpOptions> = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'latchkey-test-'));
  const port = 1;
  const { config, warnings } = await loadDevConfig({
    dataDir,
    host: '127.0.0.1',
    port,
    logLevel: 'silent' as never,
    ...opts,
  });
  const logger = createLogger(config.logLevel) as unknown as FastifyBaseLogger;
  const services = await createServices(config, opts.clock ? { clock: opts.clock } : {});
  services.setBoundPort(port);
  const main = await createMainApp(services, logger);
  const vault = await createVaultApp(services, logger);
  const adminCredentialsPath = join(config.dataDir, 'admin-credentials.json');
  const authority = `https://${config.publicHost}:${port}`;
  const boot = await bootstrapDefaults(services, { adminCredentialsPath, authority });
  const tenant = await services.tenants.require(boot.tenantId);
  const handle: UpHandle = {
    info: {
      authority,
      tenantId: tenant.id,
      tenantDomain: tenant.domain ?? '',
      subscriptionId: boot.subscriptionId,
      managementUrl: authority,
      managementResource: config.managementResource,
      vaultUrlTemplate: `https://{name}.${config.vaultDomain}:${port}`,
      vaultResource: services.vaultResource,
      identityEndpoint: null,
      caCertPath: config.tls.caCertPath!,
      adminCredentialsPath,
      dataDir: config.dataDir,
      warnings,
    },
    services,
    idle: async () => {},
    async close() {
      await Promise.all([main.app.close(), vault.app.close()]);
      await services.close();
    },
  };
  const suffix = `.${config.vaultDomain}`;
  const send: Send = async (method, url, headers, body) => {
    const host = url.host.toLowerCase();
    const app = host.replace(/:\d+$/, '').endsWith(suffix) ? vault.app : main.app;
    const res = await app.inject({
      method: method as 'GET',
      url: `${url.pathname}${url.search}`,
      headers: { host, ...headers },
      ...(body !== undefined ? { payload: body } : {}),
    });
    const out: Record<string, string | string[] | undefined> = {};
    for (const [k, v] of Object.entries(res.headers)) out[k] = typeof v === 'number' ? String(v) : v;
    return { status: res.statusCode, headers: out, text: res.body };
  };
  const ca = readFileSync(handle.info.caCertPath, 'utf8');
  const agent = new https.Agent({ ca, lookup: localhostLookup as never });
  return testClient(handle, { dataDir, ca, agent, send, ownDataDir: !opts.dataDir });
}

function testClient(
  handle: UpHandle,
  o: { dataDir: string; ca: string; agent: https.Agent; send: Send; ownDataDir: boolean },
): TestServer {
  const { dataDir, ca, agent, send } = o;
  const admin = JSON.parse(readFileSync(handle.info.adminCredentialsPath, 'utf8')) as TestServer['admin'];
  const port = new URL(handle.info.authority).port;
  const request: TestServer['request'] = async (method, url, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    let body = o.body;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers['content-type'] ??= 'application/json';
    } else if (o.form) {
      body = new URLSearchParams(o.form).toString();
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
    }
    const full = url.startsWith('https://') ? url : `${handle.info.authority}${url}`;
    const r = await send(method, new URL(full), headers, body);
    let json: unknown;
    try {
      json = r.text ? JSON.parse(r.text) : undefined;
    } catch {}
    return { ...r, json };
  };
  const tokens = new Map<string, string>();
  return {
    ...handle,
    dataDir,
    ca,
    agent,
    admin,
    vaultUrl: (name) => `https://${name}.vault.localhost:${port}`,
    request,
    async adminToken(resource = handle.info.managementResource) {
      const hit = tokens.get(resource);
      if (hit) return hit;
      const r = await request('POST', `/${admin.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'password',
          client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
          username: admin.userName,
          password: admin.password,
          scope: `${resource}/.default`,
        },
      });
      if (r.status !== 200) throw new Error(`admin token: ${r.status} ${r.text}`);
      tokens.set(resource, r.json.access_token);
      return r.json.access_token as string;
    },
    async stop() {
      agent.destroy();
      await handle.close();
      if (o.ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
