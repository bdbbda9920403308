import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import type { TestServer } from './server.js';

/** Options every official credential needs against a test server (HTTPS with the dev CA, no instance discovery). */
export const credentialOptions = (s: TestServer, extra: Record<string, unknown> = {}) => ({
  authorityHost: s.info.authority,
  disableInstanceDiscovery: true,
  agent: s.agent,
  ...extra,
});

/** A pipeline policy that records the form body of every token request an official credential sends. */
export function captureTokenRequests(): { policy: PipelinePolicy; forms: URLSearchParams[] } {
  const forms: URLSearchParams[] = [];
  const policy: PipelinePolicy = {
    name: 'captureTokenRequests',
    async sendRequest(req, next) {
      if (req.url.includes('/oauth2/') && typeof req.body === 'string')
        forms.push(new URLSearchParams(req.body));
      return next(req);
    },
  };
  return { policy, forms };
}

/** The server's JWKS as a jose key resolver (fetched through the test server, which trusts the dev CA). */
export async function localJwks(s: TestServer, tenant = s.info.tenantId): Promise<JWTVerifyGetKey> {
  const r = await s.request('GET', `/${tenant}/discovery/v2.0/keys`);
  if (r.status !== 200) throw new Error(`JWKS: ${r.status}`);
  return createLocalJWKSet(r.json);
}

export interface CreatedPrincipal {
  id: string;
  appId: string;
  secret?: string;
  keyId?: string;
}

/** Creates a service principal through the directory API (with a client secret unless `credential` says otherwise). */
export async function createServicePrincipal(
  s: TestServer,
  body: { displayName: string; identifierUri?: string; credential?: unknown },
  token?: string,
): Promise<CreatedPrincipal> {
  const t = token ?? (await s.adminToken());
  const r = await s.request('POST', '/api/directory/servicePrincipals', {
    headers: { authorization: `Bearer ${t}` },
    json: body,
  });
  if (r.status !== 201) throw new Error(`create service principal: ${r.status} ${r.text}`);
  return {
    id: r.json.servicePrincipal.id,
    appId: r.json.servicePrincipal.appId,
    secret: r.json.credential?.secretText,
    keyId: r.json.credential?.keyId,
  };
}

/** client_credentials with a secret, straight at the token endpoint. */
export function secretTokenRequest(
  s: TestServer,
  p: { appId: string; secret: string },
  scope = `${s.info.vaultResource}/.default`,
  tenant = s.info.tenantId,
) {
  return s.request('POST', `/${tenant}/oauth2/v2.0/token`, {
    form: { grant_type: 'client_credentials', client_id: p.appId, client_secret: p.secret, scope },
  });
}

/** The OAuth error body shape (RFC 6749 §5.2 plus Entra's fields); throws when it does not hold. */
export function assertOAuthError(
  r: { status: number; json: unknown; text: string; headers: Record<string, unknown> },
  status: number,
  error: string,
): void {
  const where = `${r.status} ${r.text.slice(0, 300)}`;
  if (r.status !== status) throw new Error(`expected status ${status}, got ${where}`);
  const b = r.json as Record<string, unknown> | undefined;
  if (!b || typeof b !== 'object') throw new Error(`not JSON: ${where}`);
  if (b.error !== error) throw new Error(`expected error ${error}, got ${where}`);
  for (const k of ['error_description', 'timestamp', 'trace_id', 'correlation_id']) {
    if (typeof b[k] !== 'string' || (b[k] as string).length === 0) throw new Error(`missing ${k}: ${where}`);
  }
  if (!Array.isArray(b.error_codes)) throw new Error(`missing error_codes: ${where}`);
  if (/\bat \S+ \(|node_modules|\.ts:\d+/.test(r.text)) throw new Error(`stack trace leaked: ${where}`);
  if (!String(r.headers['content-type']).startsWith('application/json'))
    throw new Error(`not JSON: ${where}`);
}
