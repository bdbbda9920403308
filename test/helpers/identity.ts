import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealSettings } from '../../src/management/app-settings.js';
import type { TestServer } from './server.js';

/** Managed-identity test helpers: ARM calls as the admin, sessions and raw calls to the identity endpoint. */

export const WEB = 'api-version=2023-12-01';
export const MI = 'api-version=2023-01-31';

export const rgPath = (s: TestServer, rg = 'default') =>
  `/subscriptions/${s.info.subscriptionId}/resourceGroups/${rg}`;
export const appId = (s: TestServer, name: string, rg = 'default') =>
  `${rgPath(s, rg)}/providers/Microsoft.Web/sites/${name}`;
export const uaiId = (s: TestServer, name: string, rg = 'default') =>
  `${rgPath(s, rg)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;

/** An ARM call with the admin's management token (or `token`). */
export async function arm(
  s: TestServer,
  method: string,
  path: string,
  json?: unknown,
  token?: string,
  // biome-ignore lint/suspicious/noExplicitAny: ARM bodies are narrowed by the assertions that read them
): Promise<{ status: number; json: any; text: string }> {
  const sep = path.includes('?') ? '&' : '?';
  const version = path.includes('api-version') ? '' : `${sep}${path.includes('Microsoft.Web') ? WEB : MI}`;
  const r = await s.request(method, `${path}${version}`, {
    headers: { authorization: `Bearer ${token ?? (await s.adminToken())}` },
    ...(json !== undefined ? { json } : {}),
  });
  return { status: r.status, json: r.json, text: r.text };
}

export interface AppJson {
  id: string;
  name: string;
  identity: {
    type: string;
    principalId?: string;
    tenantId?: string;
    userAssignedIdentities?: Record<string, { principalId: string; clientId: string }>;
  };
  properties: { hostName: string };
}

/** PUT an app (fails the test on a non-2xx). */
export async function putApp(
  s: TestServer,
  name: string,
  body: Record<string, unknown> = {},
): Promise<AppJson> {
  const r = await arm(s, 'PUT', appId(s, name), body);
  if (r.status !== 200 && r.status !== 201) throw new Error(`PUT app ${name}: ${r.status} ${r.text}`);
  return r.json as AppJson;
}

export async function patchApp(s: TestServer, name: string, body: Record<string, unknown>): Promise<AppJson> {
  const r = await arm(s, 'PATCH', appId(s, name), body);
  if (r.status !== 200) throw new Error(`PATCH app ${name}: ${r.status} ${r.text}`);
  return r.json as AppJson;
}

export interface IdentityJson {
  id: string;
  name: string;
  properties: { principalId: string; clientId: string; tenantId: string };
}

export async function putIdentity(s: TestServer, name: string): Promise<IdentityJson> {
  const r = await arm(s, 'PUT', uaiId(s, name), { location: 'local' });
  if (r.status !== 200 && r.status !== 201) throw new Error(`PUT identity ${name}: ${r.status} ${r.text}`);
  return r.json as IdentityJson;
}

export async function putSettings(s: TestServer, app: string, properties: Record<string, string>) {
  const r = await arm(s, 'PUT', `${appId(s, app)}/config/appsettings`, { properties });
  if (r.status !== 200) throw new Error(`PUT settings: ${r.status} ${r.text}`);
}

/** Writes settings straight into the database, past the API's checks (what a bad row would hold). */
export async function plantSettings(s: TestServer, app: string, settings: Record<string, string>) {
  const a = await s.services.apps.byName(s.info.tenantId, app);
  if (!a) throw new Error(`no app ${app}`);
  await s.services.db.run('UPDATE apps SET settings_sealed = $1 WHERE id = $2', [
    sealSettings(s.services.sealer, a.tenantId, a.rowId, settings),
    a.rowId,
  ]);
}

/** The endpoint's state dir in `latchkey up`'s data dir. */
export const identityStateDir = (s: TestServer) => join(s.dataDir, 'identity');
export const controlSecret = (s: TestServer) =>
  readFileSync(join(identityStateDir(s), 'control.secret'), 'utf8').trim();

export interface SessionJson {
  sessionId: string;
  identityHeader: string;
  identityEndpoint: string;
  imdsAuthorityHost: string;
  msiEndpoint: string;
  env: Record<string, string>;
}

/** A plain-HTTP call to the identity endpoint (or `url` on it). */
export async function ep(
  s: TestServer,
  pathOrUrl: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  // biome-ignore lint/suspicious/noExplicitAny: endpoint bodies are narrowed by the assertions that read them
): Promise<{ status: number; json: any; headers: Headers }> {
  const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${s.info.identityEndpoint}${pathOrUrl}`;
  const r = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    body: init.body ?? null,
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: r.status, json, headers: r.headers };
}

/** Asks the control channel for a session (what `latchkey run` does); the raw answer. */
export const trySession = (s: TestServer, app: string) =>
  ep(s, '/control/sessions', {
    method: 'POST',
    headers: { authorization: `Bearer ${controlSecret(s)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ app }),
  });

/** Registers a `latchkey run`-style session for an app through the control channel. */
export async function session(s: TestServer, app: string): Promise<SessionJson> {
  const r = await trySession(s, app);
  if (r.status !== 201) throw new Error(`session for ${app}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json as SessionJson;
}

/** An App Service-protocol token request for `resource` with the session's header. */
export const appServiceToken = (
  s: TestServer,
  sess: SessionJson,
  resource = s.info.vaultResource,
  extra: Record<string, string> = {},
) =>
  ep(s, `/msi/token?${new URLSearchParams({ 'api-version': '2019-08-01', resource, ...extra })}`, {
    headers: { 'X-IDENTITY-HEADER': sess.identityHeader },
  });

/** An IMDS-protocol token request through the session's prefix (trailing slash, as MSAL sends it). */
export const imdsToken = (
  s: TestServer,
  sess: SessionJson,
  resource = s.info.vaultResource,
  extra: Record<string, string> = {},
  slash = '/',
) =>
  ep(
    s,
    `${sess.imdsAuthorityHost}/metadata/identity/oauth2/token${slash}?${new URLSearchParams({ 'api-version': '2018-02-01', resource, ...extra })}`,
    { headers: { Metadata: 'true' } },
  );

/** The claims of a JWT (no verification: the server verifies). */
export const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
