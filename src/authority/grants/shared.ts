import { setTimeout as sleep } from 'node:timers/promises';
import { type ErrorCode, LatchkeyError } from '../../errors/index.js';
import type { Clock } from '../../lib/clock.js';
import { isGuid } from '../../lib/ids.js';
import type { AuthorizationCodes } from '../authorization-codes.js';
import type { AssertionVerifier } from '../client-assertion.js';
import { CLI_CLIENT_ID } from '../clients.js';
import type { Credentials } from '../credentials.js';
import type { DeviceCodes } from '../device-codes.js';
import type { Federation } from '../federation.js';
import type { Principal, Principals } from '../principals.js';
import type { RefreshTokens } from '../refresh-tokens.js';
import type { Tenant, Tenants } from '../tenants.js';
import type { AuthThrottle } from '../throttle.js';
import type { TokenIssuer } from '../tokens.js';

const FIELD_MAX = 16_384;

export interface TokenResponse {
  token_type: 'Bearer';
  expires_in: number;
  ext_expires_in: number;
  access_token: string;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
  /** base64url JSON `{uid, utid}` when the request had `client_info=1` (MSAL's account key). */
  client_info?: string;
}

export interface TokenRequestContext {
  tenant: string;
  form: Record<string, string>;
  /** `https://host[:port]` the client reached us at (must be an accepted issuer host). */
  issuerBase: string;
  clientIp: string;
}

/** What grant handlers use: the authority's services, and where issued tokens are reported. */
export interface GrantDeps {
  clock: Clock;
  tenants: Tenants;
  principals: Principals;
  credentials: Credentials;
  assertions: AssertionVerifier;
  /** Workload identity federation: external tokens as client assertions (absent: not offered). */
  federation?: Federation;
  issuer: TokenIssuer;
  throttle: AuthThrottle;
  codes: AuthorizationCodes;
  deviceCodes: DeviceCodes;
  refreshTokens: RefreshTokens;
  resolveResource: (tenantId: string, resource: string) => Promise<string | undefined>;
  /** The resource a resolved audience stands for, whatever its spelling (a spent assertion's key). */
  replayResourceOf: (audience: string) => string;
  onIssued?: (e: {
    tenantId: string;
    principal: Principal;
    clientId: string;
    audience: string;
    grant: string;
  }) => void;
}

/** One grant type of the token endpoint (oidc-provider's `lib/actions/grants/*.js`). */
export interface Grant {
  /** The form parameters the grant reads besides `grant_type`. */
  readonly parameters: ReadonlySet<string>;
  handler: GrantHandler;
}

/** A grant's handler: the token response for a request to the tenant's token endpoint. */
export type GrantHandler = (
  deps: GrantDeps,
  ctx: TokenRequestContext,
  tenant: Tenant,
) => Promise<TokenResponse>;

/** A grant's form parameters: `client_id` (every grant reads it) and `names`. */
export const grantParameters = (...names: string[]): ReadonlySet<string> => new Set(['client_id', ...names]);

/** The `client_id` parameter, lower-cased (client ids are GUIDs, compared as such). */
export const clientIdOf = (form: Record<string, string>): string => field(form, 'client_id').toLowerCase();

/** An OAuth error with Entra ID's AADSTS code. */
export const oauth = (code: ErrorCode, message: string, aad: number, status?: number) =>
  new LatchkeyError(code, message, { aadCodes: [aad], ...(status ? { status } : {}) });

/** A form parameter, bounded; `invalid_request` when a required one is missing or empty. */
export function field(form: Record<string, string>, name: string, required?: true): string;
export function field(form: Record<string, string>, name: string, required: false): string | undefined;
export function field(form: Record<string, string>, name: string, required = true): string | undefined {
  const v = form[name];
  if (v === undefined || v === '') {
    if (required)
      throw oauth('invalid_request', `The request body must contain the parameter '${name}'.`, 900144);
    return undefined;
  }
  if (v.length > FIELD_MAX) throw oauth('invalid_request', `The parameter '${name}' is too long.`, 900144);
  return v;
}

/** The tenant an authority path segment names (GUID, domain or `adfs`). */
export async function findTenant(deps: Pick<GrantDeps, 'tenants'>, segment: string): Promise<Tenant> {
  const t = await deps.tenants.find(segment);
  if (!t) throw oauth('invalid_request', `Tenant '${segment.slice(0, 64)}' not found.`, 90002);
  return t;
}

/** Turns the `scope` parameter into an audience; `.default` for apps, resource scopes for users. */
export async function resolveScope(
  deps: Pick<GrantDeps, 'resolveResource'>,
  tenant: Tenant,
  scope: string,
  user: boolean,
): Promise<{ audience: string; scp: string }> {
  const parts = scope.split(/\s+/).filter(Boolean);
  if (parts.length > 10) throw oauth('invalid_scope', 'Too many scopes.', 70011);
  const oidc = new Set(['openid', 'profile', 'offline_access', 'email']);
  const resourceScopes = parts.filter((s) => !oidc.has(s));
  if (resourceScopes.length !== 1) {
    throw oauth(
      'invalid_scope',
      'Request exactly one resource scope, e.g. https://vault.localhost/.default.',
      70011,
    );
  }
  const s = resourceScopes[0]!;
  let resource: string;
  let scp = 'user_impersonation';
  if (s.endsWith('/.default')) resource = s.slice(0, -'/.default'.length);
  else if (user && s.lastIndexOf('/') > 8) {
    resource = s.slice(0, s.lastIndexOf('/'));
    scp = s.slice(s.lastIndexOf('/') + 1) || scp;
  } else {
    throw oauth(
      'invalid_scope',
      `The scope '${s.slice(0, 200)}' is not valid: use {resource}/.default.`,
      1002012,
    );
  }
  const audience = await deps.resolveResource(tenant.id, resource);
  if (!audience) {
    throw oauth(
      'invalid_scope',
      `The resource '${resource.slice(0, 200)}' is not known in tenant ${tenant.id}. Use the vault domain, the management API, a registered application ID URI, or a token-exchange audience the operator allows (api://AzureADTokenExchange, LATCHKEY_TOKEN_EXCHANGE_AUDIENCES).`,
      500011,
    );
  }
  return { audience, scp };
}

/** Counts a failed authentication for `keys`, waits the throttle's delay, and returns the error to throw. */
export async function failedClient(
  deps: Pick<GrantDeps, 'throttle'>,
  keys: string[],
  message: string,
  code: ErrorCode,
  aad: number,
  status: number,
): Promise<LatchkeyError> {
  const delay = await deps.throttle.fail(keys);
  if (delay > 0) await sleep(delay);
  return oauth(code, message, aad, status);
}

export const respond = (
  t: { accessToken: string; expiresIn: number },
  extra: Partial<TokenResponse> = {},
): TokenResponse => ({
  token_type: 'Bearer',
  expires_in: t.expiresIn,
  ext_expires_in: t.expiresIn,
  access_token: t.accessToken,
  ...extra,
});

/** A sign-in at `authTime` still counts: not revoked since (`revokeSignInSessions`, reset, disable). */
export const signInValid = (p: Principal, authTime: number): boolean => authTime >= p.sessionsValidFrom;

/** The client must be the CLI or a registered, enabled public client application of the tenant. */
export async function requirePublicClient(
  deps: Pick<GrantDeps, 'principals'>,
  tenant: Tenant,
  clientId: string,
): Promise<void> {
  if (clientId === CLI_CLIENT_ID) return;
  const app = isGuid(clientId) ? await deps.principals.byAppId(tenant.id, clientId) : undefined;
  if (!app?.publicClient || !app.enabled) {
    throw oauth(
      'unauthorized_client',
      'This grant is only for registered public clients (such as the CLI).',
      700016,
    );
  }
}
