import { setTimeout as sleep } from 'node:timers/promises';
import { verifyPassword } from '../crypto/hashing.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { AuthorizationCodes } from './authorization-codes.js';
import { S256_CHALLENGE_RE } from './authorization-codes.js';
import { type BrowserClient, browserClientOf, redirectAllowed } from './clients.js';
import type { Principal, Principals } from './principals.js';
import type { Tenant, Tenants } from './tenants.js';
import type { AuthThrottle } from './throttle.js';
import type { TokenEndpoint } from './token-endpoint.js';

/** Bounds of the authorization request's parameters. */
const MAX = { state: 2048, nonce: 512, scope: 2048, loginHint: 255, default: 2048 } as const;

/** The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1). */
export interface AuthorizeParams {
  client_id?: string;
  redirect_uri?: string;
  response_type?: string;
  response_mode?: string;
  scope?: string;
  state?: string;
  nonce?: string;
  code_challenge?: string;
  code_challenge_method?: string;
  prompt?: string;
  login_hint?: string;
}
export const AUTHORIZE_PARAMS: readonly (keyof AuthorizeParams)[] = [
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'prompt',
  'login_hint',
];

/** A request whose client and redirect URI are proven; everything else checked. */
export interface ValidAuthorization {
  tenant: Tenant;
  client: BrowserClient;
  redirectUri: string;
  scope: string;
  state: string | undefined;
  nonce: string | null;
  codeChallenge: string;
  loginHint: string | undefined;
}

/**
 * What to do with a request:
 * - `page`: the client or redirect URI is not proven — show the error, never redirect;
 * - `redirect`: send the error to the (validated) redirect URI, RFC 6749 §4.1.2.1;
 * - `ok`: show the sign-in form (or, after a good sign-in, redirect with the code).
 */
export type AuthorizeOutcome =
  | { kind: 'page'; status: number; message: string }
  | { kind: 'redirect'; location: string }
  | { kind: 'ok'; request: ValidAuthorization };

/** Sign-in result: a redirect with the code, or the form again with an error (and the status to answer). */
export type SignInOutcome =
  | { kind: 'redirect'; location: string }
  | { kind: 'form'; status: number; message: string; retryAfter?: string };

/** `redirect_uri?code=…&state=…` or `?error=…&error_description=…&state=…` (query response mode). */
export function redirectTo(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

/**
 * The OAuth 2.0 authorization endpoint's logic (the HTTP route renders it):
 * validate the request in the order that never redirects to an unproven URI,
 * then authenticate the user as the password grant does — same password
 * check, same failed-attempt throttle — and issue a PKCE-bound code.
 */
export function createAuthorizeEndpoint(deps: {
  clock: Clock;
  tenants: Pick<Tenants, 'find'>;
  principals: Pick<Principals, 'byUserName' | 'byAppId'>;
  throttle: AuthThrottle;
  codes: Pick<AuthorizationCodes, 'issue'>;
  tokenEndpoint: Pick<TokenEndpoint, 'checkUserScope'>;
}) {
  const { clock, tenants, principals, throttle, codes, tokenEndpoint } = deps;
  const signInClient = (tenantId: string, clientId: string) =>
    browserClientOf(tenantId, clientId, principals);
  /**
   * Runs `attempt` under the throttle's guard (attempts in flight count as failures); the
   * throttle's refusal becomes a form answer (429 with Retry-After).
   */
  const guardThrottle = async <T>(
    keys: string[],
    attempt: () => Promise<T>,
  ): Promise<T | Extract<SignInOutcome, { kind: 'form' }>> => {
    try {
      return await throttle.guard(keys, attempt);
    } catch (e) {
      if (e instanceof LatchkeyError && e.status === 429)
        return {
          kind: 'form',
          status: 429,
          message: 'Too many failed sign-in attempts. Wait a minute, then try again.',
          ...(e.headers['Retry-After'] ? { retryAfter: e.headers['Retry-After'] } : {}),
        };
      throw e;
    }
  };

  /**
   * Checks a user's name and password on a sign-in form as the password grant does: the same
   * check, the same failed-attempt throttle (by user and by address) with its Retry-After.
   */
  const authenticate = async (
    tenant: Tenant,
    input: { userName: string; password: string; clientIp: string },
  ): Promise<{ kind: 'ok'; principal: Principal } | Extract<SignInOutcome, { kind: 'form' }>> => {
    const userName = input.userName.trim().toLowerCase();
    if (!userName || !input.password)
      return { kind: 'form', status: 400, message: 'Enter your user name and password.' };
    if (userName.length > 255 || input.password.length > 1024)
      return { kind: 'form', status: 400, message: 'Invalid user name or password.' };
    const keys = [`u:${tenant.id}:${userName}`, `ip:${input.clientIp}`];
    // Held while the password is checked: concurrent guesses count before their scrypt ends.
    const found = await guardThrottle(keys, async () => {
      const f = await principals.byUserName(tenant.id, userName);
      const ok = await verifyPassword(input.password, f?.passwordHash ?? null);
      if (f && ok && f.principal.kind === 'user') return f;
      const delay = await throttle.fail(keys);
      if (delay > 0) await sleep(delay);
      return { kind: 'form', status: 400, message: 'Invalid user name or password.' } as const;
    });
    if ('kind' in found) return found;
    if (!found.principal.enabled)
      return { kind: 'form', status: 400, message: 'This user account is disabled.' };
    void throttle.succeed(keys[0]!);
    return { kind: 'ok', principal: found.principal };
  };

  return {
    /** Validates an authorization request reached at `issuerBase` (`https://host[:port]`). */
    async validate(
      tenantSegment: string,
      params: AuthorizeParams,
      issuerBase: string,
    ): Promise<AuthorizeOutcome> {
      const page = (message: string, status = 400): AuthorizeOutcome => ({ kind: 'page', status, message });
      const tenant = tenantSegment.length <= 253 ? await tenants.find(tenantSegment) : undefined;
      if (!tenant) return page(`Tenant '${tenantSegment.slice(0, 64)}' was not found.`, 404);
      const clientId = params.client_id ?? '';
      const client = clientId.length <= 64 ? await signInClient(tenant.id, clientId) : undefined;
      if (!client)
        return page(
          clientId
            ? `The application '${clientId.slice(0, 64)}' is not registered for browser sign-in.`
            : 'The request has no client_id.',
        );
      const redirectUri = params.redirect_uri ?? '';
      if (!redirectAllowed(client, redirectUri, issuerBase))
        return page(
          redirectUri
            ? `The redirect URI of the request is not registered for ${client.displayName} on this host.`
            : 'The request has no redirect_uri.',
        );

      const state = params.state;
      const fail = (error: string, description: string): AuthorizeOutcome => ({
        kind: 'redirect',
        location: redirectTo(redirectUri, {
          error,
          error_description: description,
          ...(state !== undefined && state.length <= MAX.state ? { state } : {}),
        }),
      });
      if (state !== undefined && state.length > MAX.state)
        return fail('invalid_request', 'The state parameter is too long.');
      for (const k of AUTHORIZE_PARAMS) {
        const v = params[k];
        const limit = k === 'nonce' ? MAX.nonce : k === 'login_hint' ? MAX.loginHint : MAX.default;
        if (v !== undefined && v.length > limit)
          return fail('invalid_request', `The parameter '${k}' is too long.`);
      }
      if (params.response_type !== 'code')
        return fail('unsupported_response_type', "Only response_type 'code' is supported.");
      if (params.response_mode !== undefined && params.response_mode !== 'query')
        return fail('invalid_request', "Only response_mode 'query' is supported.");
      if (params.code_challenge === undefined)
        return fail(
          'invalid_request',
          'PKCE is required: send code_challenge with code_challenge_method=S256.',
        );
      if (params.code_challenge_method !== 'S256')
        return fail('invalid_request', "code_challenge_method must be 'S256' (plain is not accepted).");
      if (!S256_CHALLENGE_RE.test(params.code_challenge))
        return fail(
          'invalid_request',
          'code_challenge must be the base64url SHA-256 of the verifier (43 characters).',
        );
      const prompt = params.prompt;
      if (prompt === 'none')
        return fail('login_required', 'The authority keeps no sign-in session: the user must sign in.');
      if (prompt !== undefined && !['login', 'select_account', 'consent'].includes(prompt))
        return fail('invalid_request', `The prompt '${prompt.slice(0, 32)}' is not supported.`);
      const scope = (params.scope ?? '').trim();
      if (!scope) return fail('invalid_request', 'The request has no scope.');
      try {
        await tokenEndpoint.checkUserScope(tenant, scope);
      } catch (e) {
        if (e instanceof LatchkeyError) return fail('invalid_scope', e.message);
        throw e;
      }
      return {
        kind: 'ok',
        request: {
          tenant,
          client,
          redirectUri,
          scope,
          state,
          nonce: params.nonce ?? null,
          codeChallenge: params.code_challenge,
          loginHint: params.login_hint,
        },
      };
    },

    authenticate,

    /** Authenticates the user for a validated request; on success, issues the code and redirects. */
    async signIn(
      request: ValidAuthorization,
      input: { userName: string; password: string; clientIp: string },
    ): Promise<SignInOutcome> {
      const user = await authenticate(request.tenant, input);
      if (user.kind === 'form') return user;
      const code = await codes.issue({
        tenantId: request.tenant.id,
        principalId: user.principal.id,
        clientId: request.client.clientId,
        redirectUri: request.redirectUri,
        codeChallenge: request.codeChallenge,
        scope: request.scope,
        nonce: request.nonce,
        authTime: clock.now(),
      });
      return {
        kind: 'redirect',
        location: redirectTo(request.redirectUri, {
          code,
          ...(request.state !== undefined ? { state: request.state } : {}),
        }),
      };
    },
  };
}
export type AuthorizeEndpoint = ReturnType<typeof createAuthorizeEndpoint>;
