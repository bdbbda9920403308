import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { localhostLookup } from '../../src/cli/http.js';
import { ROLE_IDS, type RoleName } from '../helpers/access.js';

/**
 * Shared pieces of the reliability suite (test/reliability/*.test.ts).
 * `LATCHKEY_RELIABILITY=full` (npm run test:reliability) selects the full
 * configuration; otherwise the short form that runs inside `npm test`.
 */
export const FULL = process.env.LATCHKEY_RELIABILITY === 'full';
/** The short or the full figure, by mode. */
export const size = <T>(short: T, full: T): T => (FULL ? full : short);

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies, narrowed by the assertions that read them
  json: any;
  ms: number;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: string | Buffer;
  json?: unknown;
  form?: Record<string, string>;
  /** Per-request deadline; past it the request rejects with a "hang" error (default 10 s). */
  timeoutMs?: number;
}

/**
 * An HTTP(S) client for a server that may be a child process: trusts the dev
 * CA, resolves *.localhost to 127.0.0.1, and bounds every request in time.
 */
export function httpClient(base: string, ca: string, agentOptions: https.AgentOptions = {}) {
  const agent = new https.Agent({ ca, keepAlive: true, lookup: localhostLookup as never, ...agentOptions });
  const plain = new http.Agent({ keepAlive: true });
  const request = (method: string, url: string, o: RequestOptions = {}): Promise<Res> =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const headers: Record<string, string> = { ...o.headers };
      let body = o.body;
      if (o.json !== undefined) {
        body = JSON.stringify(o.json);
        headers['content-type'] ??= 'application/json';
      } else if (o.form) {
        body = new URLSearchParams(o.form).toString();
        headers['content-type'] ??= 'application/x-www-form-urlencoded';
      }
      // Node frames a DELETE/GET body only with an explicit length (else the bytes read as the next request).
      if (body !== undefined) headers['content-length'] ??= String(Buffer.byteLength(body));
      const full = /^https?:\/\//.test(url) ? url : `${base}${url}`;
      const mod = full.startsWith('https:') ? https : http;
      const req = mod.request(
        full,
        { method, headers, agent: full.startsWith('https:') ? agent : plain },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {}
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, ms: Date.now() - t0 });
          });
        },
      );
      req.setTimeout(o.timeoutMs ?? 10_000, () =>
        req.destroy(
          new Error(`hang: ${method} ${full.slice(0, 200)} gave no answer in ${o.timeoutMs ?? 10_000} ms`),
        ),
      );
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  return {
    agent,
    request,
    close() {
      agent.destroy();
      plain.destroy();
    },
  };
}
export type HttpClient = ReturnType<typeof httpClient>;

export interface ServerInfo {
  authority: string;
  tenantId: string;
  subscriptionId: string;
  managementResource: string;
  vaultResource: string;
}

/** The bootstrap admin's management token (password grant of the CLI client), through HTTP only. */
export async function adminToken(
  c: HttpClient,
  info: ServerInfo,
  admin: { userName: string; password: string },
  resource = info.managementResource,
): Promise<string> {
  const r = await c.request('POST', `/${info.tenantId}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'password',
      client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
      username: admin.userName,
      password: admin.password,
      scope: `${resource}/.default`,
    },
  });
  if (r.status !== 200) throw new Error(`admin token: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json.access_token as string;
}

/** A client-credentials token with a client secret. */
export async function clientToken(
  c: HttpClient,
  info: ServerInfo,
  sp: { appId: string; secret: string },
  resource = info.vaultResource,
): Promise<string> {
  const r = await c.request('POST', `/${info.tenantId}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'client_credentials',
      client_id: sp.appId,
      client_secret: sp.secret,
      scope: `${resource}/.default`,
    },
  });
  if (r.status !== 200) throw new Error(`client token: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json.access_token as string;
}

export const vaultArm = (info: ServerInfo, name: string) =>
  `/subscriptions/${info.subscriptionId}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/${name}`;

/**
 * Through the HTTP APIs only (the server may be a child process): a service
 * principal with a client secret, a vault, and a role for it at the vault.
 */
export async function provisionVaultWriter(
  c: HttpClient,
  info: ServerInfo,
  admin: string,
  vault: string,
  role: RoleName = 'Key Vault Secrets Officer',
): Promise<{ id: string; appId: string; secret: string; vaultId: string }> {
  const auth = { authorization: `Bearer ${admin}` };
  const sp = await c.request('POST', '/api/directory/servicePrincipals', {
    headers: auth,
    json: { displayName: `reliability-${vault}` },
  });
  if (sp.status !== 201) throw new Error(`service principal: ${sp.status} ${sp.text}`);
  const v = await c.request('PUT', `${vaultArm(info, vault)}?api-version=2023-07-01`, {
    headers: auth,
    // RBAC explicitly: before api-version 2026-02-01 a vault defaults to access policies (as in Azure).
    json: {
      location: 'local',
      properties: { sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true },
    },
  });
  if (v.status !== 200 && v.status !== 201) throw new Error(`vault: ${v.status} ${v.text}`);
  const ra = await c.request(
    'PUT',
    `${v.json.id}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`,
    {
      headers: auth,
      json: {
        properties: {
          roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS[role]}`,
          principalId: sp.json.servicePrincipal.id,
        },
      },
    },
  );
  if (ra.status !== 201) throw new Error(`role assignment: ${ra.status} ${ra.text}`);
  return {
    id: sp.json.servicePrincipal.id,
    appId: sp.json.servicePrincipal.appId,
    secret: sp.json.credential.secretText,
    vaultId: v.json.id,
  };
}

/** Resident set size of a process in bytes (Linux /proc), or undefined where unavailable. */
export async function rssOf(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
