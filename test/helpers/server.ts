import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localhostLookup } from '../../src/cli/http.js';
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
  const admin = JSON.parse(readFileSync(handle.info.adminCredentialsPath, 'utf8')) as TestServer['admin'];
  const port = new URL(handle.info.authority).port;
  const request: TestServer['request'] = (method, url, o = {}) =>
    new Promise((resolve, reject) => {
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
      const req = https.request(full, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
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
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
