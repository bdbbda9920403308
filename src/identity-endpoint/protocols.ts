import type { IncomingHttpHeaders } from 'node:http';
import type { IssuedToken } from './control-plane.js';

/**
 * The managed-identity wire protocols (PROTOCOLS.md §2), as pure functions:
 * which protocol a request speaks, what it asks for, and the JSON answers.
 *
 * - App Service: `GET /msi/token?api-version=2019-08-01&resource=...` with
 *   `X-IDENTITY-HEADER` (the per-run secret `IDENTITY_HEADER`).
 * - IMDS: `GET /s/{session}/metadata/identity/oauth2/token[/]?api-version=...&resource=...`
 *   with `Metadata: true`. The session prefix comes from
 *   `AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:{port}/s/{session}`.
 * - Cloud Shell: `POST` to the IMDS path with `Metadata: true` and a form body `resource=...`
 *   (with `client_id=...` or another selector for a user-assigned identity, as on the other two).
 */

export const APP_SERVICE_PATH = '/msi/token';
export const IMDS_PATH = '/metadata/identity/oauth2/token';
export const APP_SERVICE_API_VERSION = '2019-08-01';

export type Protocol = 'appService' | 'imds' | 'cloudShell';
export type Selector = { by: 'clientId' | 'objectId' | 'resourceId'; value: string } | null;

export interface TokenRequest {
  protocol: Protocol;
  /** How the request names its session: the App Service header, or the IMDS path prefix. */
  secret: { kind: 'header' | 'prefix'; value: string } | null;
  resource: string;
  selector: Selector;
}

/** A refusal in the managed-identity error shape: `{error, error_description}`. */
export class EndpointError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
    this.name = 'EndpointError';
  }
  get body() {
    return { error: this.error, error_description: this.message };
  }
}

const bad = (description: string) => new EndpointError(400, 'invalid_request', description);

const SESSION_RE = /^\/s\/([0-9a-f]{32})(\/.*)?$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const RESOURCE_RE = /^[^\s\u0000-\u001f\u007f]{1,512}$/;

/** Where a path leads: a token path (with its session prefix, if any), or nowhere. */
export function route(
  pathname: string,
): { kind: 'appService' } | { kind: 'imds'; session: string | null } | null {
  if (pathname === APP_SERVICE_PATH || pathname === `${APP_SERVICE_PATH}/`) return { kind: 'appService' };
  let path = pathname;
  let session: string | null = null;
  const m = SESSION_RE.exec(pathname);
  if (m) {
    session = m[1]!;
    path = m[2] ?? '/';
  }
  if (path === IMDS_PATH || path === `${IMDS_PATH}/`) return { kind: 'imds', session };
  return null;
}

const one = (q: URLSearchParams, name: string): string | undefined => {
  const all = q.getAll(name);
  if (all.length > 1) throw bad(`The parameter '${name}' must appear once.`);
  return all[0];
};

/** The user-assigned identity a request selects (`client_id`, `object_id`/`principal_id`, `mi_res_id`/`msi_res_id`). */
export function parseSelector(q: URLSearchParams): Selector {
  const found: Exclude<Selector, null>[] = [];
  for (const [name, by] of [
    ['client_id', 'clientId'],
    ['clientid', 'clientId'],
    ['object_id', 'objectId'],
    ['principal_id', 'objectId'],
    ['mi_res_id', 'resourceId'],
    ['msi_res_id', 'resourceId'],
  ] as const) {
    const v = one(q, name);
    if (v === undefined || v === '') continue;
    if (v.length > 600) throw bad(`The parameter '${name}' is too long.`);
    found.push({ by, value: v });
  }
  if (found.length > 1)
    throw bad('Select a user-assigned identity by one of client_id, object_id or mi_res_id.');
  return found[0] ?? null;
}

/** Parses a token request (after routing). Throws EndpointError with the status the protocol calls for. */
export function parseTokenRequest(input: {
  method: string;
  route: NonNullable<ReturnType<typeof route>>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  form?: URLSearchParams;
}): TokenRequest {
  const { method, query, headers } = input;
  const r = input.route;
  const header = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  if (r.kind === 'appService') {
    if (method !== 'GET') throw new EndpointError(405, 'invalid_request', 'Use GET.');
    const secret = header('x-identity-header');
    if (!secret) throw bad('The X-IDENTITY-HEADER header is required (the value of IDENTITY_HEADER).');
    const apiVersion = one(query, 'api-version');
    if (apiVersion !== APP_SERVICE_API_VERSION) throw bad(`api-version must be ${APP_SERVICE_API_VERSION}.`);
    return { protocol: 'appService', secret: { kind: 'header', value: secret }, ...what(query) };
  }
  // IMDS and Cloud Shell both demand `Metadata: true` (a browser cannot send it without a CORS preflight).
  if ((header('metadata') ?? '').toLowerCase() !== 'true')
    throw bad('Required metadata header not specified');
  const secret = r.session ? { kind: 'prefix' as const, value: r.session } : null;
  if (method === 'POST') {
    // The clients send `resource` and `client_id` (or an identity_config) in the form body; a selector
    // in the query counts too, so one given in both places is ambiguous (400), never ignored.
    const form = input.form ?? new URLSearchParams();
    const selectors = new URLSearchParams([...form, ...query]);
    return {
      protocol: 'cloudShell',
      secret,
      resource: resourceOf(one(form, 'resource')),
      selector: parseSelector(selectors),
    };
  }
  if (method !== 'GET') throw new EndpointError(405, 'invalid_request', 'Use GET (or POST for Cloud Shell).');
  const apiVersion = one(query, 'api-version');
  if (!apiVersion || !/^\d{4}-\d{2}-\d{2}$/.test(apiVersion))
    throw bad('api-version is required (e.g. 2018-02-01).');
  return { protocol: 'imds', secret, ...what(query) };
}

const resourceOf = (v: string | undefined): string => {
  if (!v) throw bad('The resource parameter is required.');
  if (!RESOURCE_RE.test(v)) throw bad('The resource parameter is not valid.');
  return v;
};
const what = (q: URLSearchParams) => ({
  resource: resourceOf(one(q, 'resource')),
  selector: parseSelector(q),
});

/** The success body. `expires_on` is required by the clients; numbers as strings, as Azure sends them. */
export function tokenBody(token: IssuedToken, resource: string, clientId: string, nowMs: number) {
  return {
    access_token: token.accessToken,
    expires_on: String(token.expiresOn),
    expires_in: String(Math.max(0, token.expiresOn - Math.floor(nowMs / 1000))),
    resource,
    token_type: 'Bearer',
    client_id: clientId,
  };
}
