import { setTimeout as sleep } from 'node:timers/promises';
import { type SecretHasher, verifyPassword } from '../crypto/hashing.js';
import { type ErrorCode, LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid } from '../lib/ids.js';
import type { Database } from '../storage/port.js';
import { type AuthorizationCodes, CODE_VERIFIER_RE, pkceMatches } from './authorization-codes.js';
import { ASSERTION_TYPE, type AssertionVerifier } from './client-assertion.js';
import { browserClientOf, CLI_CLIENT_ID, isBuiltInPublicClient } from './clients.js';
import type { Credentials } from './credentials.js';
import type { DeviceCodes } from './device-codes.js';
import type { Principal, Principals } from './principals.js';
import { createRefreshTokens } from './refresh-tokens.js';
import type { Tenant, Tenants } from './tenants.js';
import type { AuthThrottle } from './throttle.js';
import type { TokenIssuer } from './tokens.js';

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

/** RFC 8628 §3.4. Entra ID also takes the bare `device_code`. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** RFC 8628 §3.2, with Entra ID's `message` for the user. */
export interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  expires_in: number;
  interval: number;
  message: string;
}

export interface TokenRequestContext {
  tenant: string;
  form: Record<string, string>;
  /** `https://host[:port]` the client reached us at (must be an accepted issuer host). */
  issuerBase: string;
  clientIp: string;
}

const oauth = (code: ErrorCode, message: string, aad: number, status?: number) =>
  new LatchkeyError(code, message, { aadCodes: [aad], ...(status ? { status } : {}) });

/**
 * The OAuth 2.0 token endpoint, as named steps: parse → tenant → grant
 * (authenticate the client or user, or redeem an authorization code) → scope → issue.
 */
export function createTokenEndpoint(deps: {
  db: Database;
  clock: Clock;
  tenants: Tenants;
  principals: Principals;
  credentials: Credentials;
  assertions: AssertionVerifier;
  issuer: TokenIssuer;
  throttle: AuthThrottle;
  hasher: SecretHasher;
  codes: AuthorizationCodes;
  deviceCodes: DeviceCodes;
  resolveResource: (tenantId: string, resource: string) => Promise<string | undefined>;
  onIssued?: (e: {
    tenantId: string;
    principal: Principal;
    clientId: string;
    audience: string;
    grant: string;
  }) => void;
}) {
  const { db, clock, tenants, principals, credentials, assertions, issuer, throttle, hasher } = deps;
  const refreshTokens = createRefreshTokens({ db, clock, hasher });

  const field = (form: Record<string, string>, name: string, required = true): string | undefined => {
    const v = form[name];
    if (v === undefined || v === '') {
      if (required)
        throw oauth('invalid_request', `The request body must contain the parameter '${name}'.`, 900144);
      return undefined;
    }
    if (v.length > FIELD_MAX) throw oauth('invalid_request', `The parameter '${name}' is too long.`, 900144);
    return v;
  };

  const findTenant = async (segment: string): Promise<Tenant> => {
    const t = await tenants.find(segment);
    if (!t) throw oauth('invalid_request', `Tenant '${segment.slice(0, 64)}' not found.`, 90002);
    return t;
  };

  /** Turns the `scope` parameter into an audience; `.default` for apps, resource scopes for users. */
  const resolveScope = async (
    tenant: Tenant,
    scope: string,
    user: boolean,
  ): Promise<{ audience: string; scp: string }> => {
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
        `The resource '${resource.slice(0, 200)}' is not known in tenant ${tenant.id}. Use the vault domain, the management API or a registered application ID URI.`,
        500011,
      );
    }
    return { audience, scp };
  };

  const failedClient = async (
    keys: string[],
    message: string,
    code: ErrorCode,
    aad: number,
    status: number,
  ) => {
    const delay = await throttle.fail(keys);
    if (delay > 0) await sleep(delay);
    return oauth(code, message, aad, status);
  };

  const respond = (
    t: { accessToken: string; expiresIn: number },
    extra: Partial<TokenResponse> = {},
  ): TokenResponse => ({
    token_type: 'Bearer',
    expires_in: t.expiresIn,
    ext_expires_in: t.expiresIn,
    access_token: t.accessToken,
    ...extra,
  });

  /** A user's access token (`appidacr` 0: a public client; the user authenticated). */
  const userAccessToken = (
    ctx: TokenRequestContext,
    principal: Principal,
    clientId: string,
    audience: string,
    scp: string,
  ) => issuer.issue({ issuerBase: ctx.issuerBase, principal, clientId, audience, authMethod: '0', scp });

  /**
   * What a user's sign-in adds beyond the access token, as Entra does: an ID token when `openid`
   * was asked for, and `client_info` when the client sent `client_info=1` (MSAL keys its account
   * cache by it; MSAL Python and so the Azure CLI take the user name from the ID token).
   */
  const userSignInExtras = async (
    ctx: TokenRequestContext,
    scope: string,
    principal: Principal,
    clientId: string,
    sign: { nonce: string | null; authTime: number | null },
  ): Promise<Partial<TokenResponse>> => {
    const extra: Partial<TokenResponse> = {};
    if (scope.split(/\s+/).includes('openid')) {
      extra.id_token = await issuer.issueIdToken({
        issuerBase: ctx.issuerBase,
        principal,
        clientId,
        ...sign,
      });
    }
    if (ctx.form.client_info === '1') {
      extra.client_info = Buffer.from(
        JSON.stringify({ uid: principal.id, utid: principal.tenantId }),
      ).toString('base64url');
    }
    return extra;
  };

  const issueRefreshToken = refreshTokens.issue;
  const revokeFamilyOf = refreshTokens.revokeFamilyOf;

  /** A sign-in at `authTime` still counts: not revoked since (`revokeSignInSessions`, reset, disable). */
  const signInValid = (p: Principal, authTime: number) => authTime >= p.sessionsValidFrom;

  const clientCredentials = async (ctx: TokenRequestContext, tenant: Tenant): Promise<TokenResponse> => {
    const { form } = ctx;
    const clientId = field(form, 'client_id')!.toLowerCase();
    const scope = field(form, 'scope')!;
    const keys = [`c:${tenant.id}:${clientId}`, `ip:${ctx.clientIp}`];
    throttle.check(keys);
    const secret = field(form, 'client_secret', false);
    const assertion = field(form, 'client_assertion', false);
    if (!secret && !assertion) {
      throw oauth(
        'invalid_client',
        'Client authentication is required: client_secret or client_assertion.',
        7000218,
        401,
      );
    }
    if (secret && assertion)
      throw oauth('invalid_request', 'Send either client_secret or client_assertion, not both.', 90014);
    const principal = isGuid(clientId) ? await principals.byAppId(tenant.id, clientId) : undefined;
    if (!principal || principal.kind === 'user') {
      throw await failedClient(
        keys,
        `Application with identifier '${clientId.slice(0, 64)}' was not found in the directory '${tenant.id}'.`,
        'unauthorized_client',
        700016,
        400,
      );
    }
    let method: '1' | '2';
    let consumeAssertion: ((resource: string) => Promise<void>) | undefined;
    if (secret) {
      if (!(await credentials.verifySecret(principal.id, secret))) {
        throw await failedClient(
          keys,
          'Invalid client secret provided, or the secret has expired.',
          'invalid_client',
          7000215,
          401,
        );
      }
      method = '1';
    } else {
      if (field(form, 'client_assertion_type') !== ASSERTION_TYPE) {
        throw oauth('invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}.`, 50027);
      }
      const audiences = [tenant.id, ...(tenant.domain ? [tenant.domain] : [])].flatMap((seg) => [
        `${ctx.issuerBase}/${seg}/oauth2/v2.0/token`,
        `${ctx.issuerBase}/${seg}/oauth2/token`,
      ]);
      try {
        const checked = await assertions.verify({
          assertion: assertion!,
          principalId: principal.id,
          clientId,
          audiences,
        });
        consumeAssertion = checked.consume;
      } catch (e) {
        if (e instanceof LatchkeyError) throw await failedClient(keys, e.message, e.code, 700027, 401);
        throw e;
      }
      method = '2';
    }
    if (!principal.enabled) throw oauth('unauthorized_client', 'The application is disabled.', 7000112);
    const { audience } = await resolveScope(tenant, scope, false);
    if (consumeAssertion) {
      try {
        await consumeAssertion(audience);
      } catch (e) {
        if (e instanceof LatchkeyError) throw await failedClient(keys, e.message, e.code, 700027, 401);
        throw e;
      }
    }
    void throttle.succeed(keys[0]!);
    const t = await issuer.issue({
      issuerBase: ctx.issuerBase,
      principal,
      clientId,
      audience,
      authMethod: method,
    });
    deps.onIssued?.({ tenantId: tenant.id, principal, clientId, audience, grant: 'client_credentials' });
    return respond(t);
  };

  const publicClient = async (tenant: Tenant, clientId: string) => {
    if (clientId === CLI_CLIENT_ID) return;
    const app = isGuid(clientId) ? await principals.byAppId(tenant.id, clientId) : undefined;
    if (!app?.publicClient || !app.enabled) {
      throw oauth(
        'unauthorized_client',
        'This grant is only for registered public clients (such as the CLI).',
        700016,
      );
    }
  };

  /**
   * The client of a refresh token still may use it: a built-in client, or a registered public
   * client application that still exists, is enabled and was not disabled since the sign-in.
   */
  const refreshClient = async (tenant: Tenant, clientId: string, authTime: number) => {
    if (isBuiltInPublicClient(clientId)) return;
    const app = isGuid(clientId) ? await principals.byAppId(tenant.id, clientId) : undefined;
    if (!app?.publicClient || !app.enabled)
      throw oauth('unauthorized_client', 'The client application is disabled or deleted.', 7000112);
    if (!signInValid(app, authTime))
      throw oauth(
        'invalid_grant',
        'The refresh token was revoked (its client application was disabled).',
        70008,
      );
  };

  const password = async (ctx: TokenRequestContext, tenant: Tenant): Promise<TokenResponse> => {
    const { form } = ctx;
    const clientId = field(form, 'client_id')!.toLowerCase();
    const userName = field(form, 'username')!.toLowerCase();
    const pw = field(form, 'password')!;
    const scope = field(form, 'scope')!;
    await publicClient(tenant, clientId);
    const keys = [`u:${tenant.id}:${userName}`, `ip:${ctx.clientIp}`];
    throttle.check(keys);
    const found = await principals.byUserName(tenant.id, userName);
    const ok = await verifyPassword(pw, found?.passwordHash ?? null);
    if (!found || !ok)
      throw await failedClient(keys, 'Invalid username or password.', 'invalid_grant', 50126, 400);
    if (!found.principal.enabled) throw oauth('invalid_grant', 'The user account is disabled.', 50057);
    void throttle.succeed(keys[0]!);
    const { audience, scp } = await resolveScope(tenant, scope, true);
    const t = await userAccessToken(ctx, found.principal, clientId, audience, scp);
    deps.onIssued?.({
      tenantId: tenant.id,
      principal: found.principal,
      clientId,
      audience,
      grant: 'password',
    });
    const extra: Partial<TokenResponse> = {
      scope: `${audience}/${scp}`,
      ...(await userSignInExtras(ctx, scope, found.principal, clientId, {
        nonce: null,
        authTime: clock.now(),
      })),
    };
    if (scope.split(/\s+/).includes('offline_access')) {
      extra.refresh_token = (
        await issueRefreshToken(tenant.id, found.principal.id, clientId, scope, { authTime: clock.now() })
      ).token;
    }
    return respond(t, extra);
  };

  /**
   * RFC 6749 §6 with the OAuth 2.0 Security BCP (RFC 9700 §4.14.2): the token rotates (spent on
   * use, a successor issued); presenting a spent one is a replay and revokes its whole family.
   * Each refresh re-checks the user (exists, enabled, not signed out since) and the client.
   */
  const refresh = async (ctx: TokenRequestContext, tenant: Tenant): Promise<TokenResponse> => {
    const { form } = ctx;
    const clientId = field(form, 'client_id')!.toLowerCase();
    const token = field(form, 'refresh_token')!;
    const keys = [`ip:${ctx.clientIp}`];
    throttle.check(keys);
    const invalid = (message: string) => failedClient(keys, message, 'invalid_grant', 70008, 400);
    const row = await refreshTokens.find(tenant.id, token);
    if (!row || row.clientId !== clientId || row.expiresAt <= clock.now())
      throw await invalid('The refresh token is invalid or has expired.');
    const replay = async () => {
      await revokeFamilyOf(row.id);
      return invalid('The refresh token has already been used; every token of its sign-in is revoked.');
    };
    if (row.usedAt !== null) throw await replay();
    const { authTime } = row;
    const principal = await principals.get(tenant.id, row.principalId);
    if (!principal?.enabled || principal.kind !== 'user')
      throw oauth('invalid_grant', 'The user account is disabled or deleted.', 50057);
    if (!signInValid(principal, authTime))
      throw await invalid('The refresh token was revoked (the user signed out, or the password was reset).');
    await refreshClient(tenant, clientId, authTime);
    const scope = field(form, 'scope', false) ?? row.scope;
    const { audience, scp } = await resolveScope(tenant, scope, true);
    // Rotate: the used refresh token is spent. Two concurrent uses of one token: one wins, and
    // the other is a replay.
    if (!(await refreshTokens.consume(row.id))) throw await replay();
    const t = await userAccessToken(ctx, principal, clientId, audience, scp);
    const next = await issueRefreshToken(tenant.id, principal.id, clientId, row.scope, {
      id: row.familyId,
      authTime,
    });
    return respond(t, {
      scope: `${audience}/${scp}`,
      ...(await userSignInExtras(ctx, row.scope, principal, clientId, { nonce: null, authTime: null })),
      refresh_token: next.token,
    });
  };

  /**
   * The tokens of a user who signed in on a page (authorization code, device code): the user must
   * still exist and be enabled; an ID token and client_info as asked; a refresh token with
   * `offline_access` (its id is returned so a replayed code can revoke it).
   */
  const signedInUserTokens = async (
    ctx: TokenRequestContext,
    tenant: Tenant,
    principalId: string,
    clientId: string,
    scope: string,
    grant: string,
    sign: { nonce: string | null; authTime: number },
  ): Promise<{ response: TokenResponse; refreshTokenId?: string }> => {
    const principal = await principals.get(tenant.id, principalId);
    if (!principal?.enabled) throw oauth('invalid_grant', 'The user account is disabled or deleted.', 50057);
    // A sign-in before a password reset, a disable or revokeSignInSessions redeems nothing.
    if (!signInValid(principal, sign.authTime))
      throw oauth('invalid_grant', 'The sign-in was revoked: sign in again.', 50173);
    const { audience, scp } = await resolveScope(tenant, scope, true);
    const t = await userAccessToken(ctx, principal, clientId, audience, scp);
    deps.onIssued?.({ tenantId: tenant.id, principal, clientId, audience, grant });
    const extra: Partial<TokenResponse> = {
      scope: `${audience}/${scp}`,
      ...(await userSignInExtras(ctx, scope, principal, clientId, sign)),
    };
    if (!scope.split(/\s+/).includes('offline_access')) return { response: respond(t, extra) };
    const rt = await issueRefreshToken(tenant.id, principal.id, clientId, scope, { authTime: sign.authTime });
    extra.refresh_token = rt.token;
    return { response: respond(t, extra), refreshTokenId: rt.id };
  };

  /**
   * RFC 6749 §4.1.3 with PKCE (RFC 7636): the code is spent on first
   * presentation, then its bindings are checked (client, redirect URI,
   * verifier). A replayed code revokes the refresh token its first use issued.
   */
  const authorizationCode = async (ctx: TokenRequestContext, tenant: Tenant): Promise<TokenResponse> => {
    const { form } = ctx;
    const clientId = field(form, 'client_id')!.toLowerCase();
    const code = field(form, 'code')!;
    const redirectUri = field(form, 'redirect_uri')!;
    const verifier = field(form, 'code_verifier')!;
    if (!(await browserClientOf(tenant.id, clientId, principals))) {
      throw oauth(
        'unauthorized_client',
        'This client may not use the authorization code grant (the console, the CLI and registered public clients can).',
        700016,
      );
    }
    if (!CODE_VERIFIER_RE.test(verifier))
      throw oauth('invalid_request', 'code_verifier must be 43–128 unreserved characters.', 50148);
    const keys = [`ip:${ctx.clientIp}`];
    throttle.check(keys);
    const invalid = (message: string, aad: number) => failedClient(keys, message, 'invalid_grant', aad, 400);
    const r = await deps.codes.redeem(code, tenant.id);
    if (!r.ok) {
      if (r.reason === 'reused') {
        // Its refresh token may have been rotated since: the whole family goes.
        if (r.refreshTokenId) await revokeFamilyOf(r.refreshTokenId);
        throw await invalid('The authorization code has already been redeemed.', 54005);
      }
      throw await invalid(
        r.reason === 'expired'
          ? 'The authorization code has expired.'
          : 'The authorization code is not valid.',
        70008,
      );
    }
    const g = r.grant;
    if (g.clientId !== clientId)
      throw await invalid('The authorization code was issued to another client.', 70000);
    if (g.redirectUri !== redirectUri)
      throw await invalid('redirect_uri does not match the one of the authorization request.', 70000);
    if (!pkceMatches(verifier, g.codeChallenge))
      throw await invalid('The code_verifier does not match the code_challenge of the request.', 50148);
    const issued = await signedInUserTokens(
      ctx,
      tenant,
      g.principalId,
      clientId,
      g.scope,
      'authorization_code',
      {
        nonce: g.nonce,
        authTime: g.authTime,
      },
    );
    if (issued.refreshTokenId) await deps.codes.linkRefreshToken(r.id, issued.refreshTokenId);
    return issued.response;
  };

  /**
   * RFC 8628 §3.4: the client polls with its device code until the user has signed in on the
   * verification page. Only public clients start device sign-ins, so the device code (a 32-byte
   * secret) is the only proof, as in Entra ID.
   */
  const deviceCode = async (ctx: TokenRequestContext, tenant: Tenant): Promise<TokenResponse> => {
    const { form } = ctx;
    const clientId = field(form, 'client_id')!.toLowerCase();
    const code = form.device_code ? field(form, 'device_code')! : field(form, 'code')!;
    const keys = [`ip:${ctx.clientIp}`];
    throttle.check(keys);
    const r = await deps.deviceCodes.poll(tenant.id, clientId, code);
    // The client may have been disabled or deleted since the sign-in started.
    if (r.kind !== 'unknown') await publicClient(tenant, clientId);
    switch (r.kind) {
      case 'unknown':
        throw await failedClient(keys, 'The device code is not valid.', 'invalid_grant', 70000, 400);
      case 'expired':
        throw oauth('expired_token', 'The device code has expired: start the sign-in again.', 70020);
      case 'pending':
        throw oauth(
          'authorization_pending',
          'The user has not signed in yet: poll again after the interval.',
          70016,
        );
      case 'slow_down':
        throw oauth(
          'slow_down',
          'Polling too fast: wait at least the interval between token requests.',
          70016,
        );
      case 'denied':
        throw oauth('access_denied', 'The user declined the sign-in.', 70000);
    }
    return (
      await signedInUserTokens(ctx, tenant, r.principalId, clientId, r.scope, DEVICE_CODE_GRANT, {
        nonce: null,
        authTime: r.authTime,
      })
    ).response;
  };

  return {
    /**
     * RFC 8628 §3.1–3.2: a public client (the CLI, a registered native app) starts a device
     * sign-in; the user finishes it at `verificationUri` with the user code.
     */
    async startDeviceAuthorization(ctx: {
      tenant: string;
      form: Record<string, string>;
      verificationUri: string;
    }): Promise<DeviceAuthorizationResponse> {
      const tenant = await findTenant(ctx.tenant);
      const clientId = field(ctx.form, 'client_id')!.toLowerCase();
      const scope = field(ctx.form, 'scope')!;
      await publicClient(tenant, clientId);
      await resolveScope(tenant, scope, true);
      const d = await deps.deviceCodes.start({ tenantId: tenant.id, clientId, scope });
      return {
        device_code: d.deviceCode,
        user_code: d.userCode,
        verification_uri: ctx.verificationUri,
        expires_in: d.expiresInSeconds,
        interval: d.intervalSeconds,
        message: `To sign in, use a web browser to open the page ${ctx.verificationUri} and enter the code ${d.userCode} to authenticate.`,
      };
    },
    async token(ctx: TokenRequestContext): Promise<TokenResponse> {
      const grant = field(ctx.form, 'grant_type')!;
      const tenant = await findTenant(ctx.tenant);
      switch (grant) {
        case 'client_credentials':
          return clientCredentials(ctx, tenant);
        case 'password':
          return password(ctx, tenant);
        case 'refresh_token':
          return refresh(ctx, tenant);
        case 'authorization_code':
          return authorizationCode(ctx, tenant);
        case DEVICE_CODE_GRANT:
        case 'device_code':
          return deviceCode(ctx, tenant);
        default:
          throw oauth(
            'unsupported_grant_type',
            `The grant type '${grant.slice(0, 64)}' is not supported.`,
            70003,
          );
      }
    },
    /**
     * Checks a `scope` parameter for a user sign-in (the authorization endpoint
     * validates it before showing the sign-in form); throws `invalid_scope`.
     */
    async checkUserScope(tenant: Tenant, scope: string): Promise<{ audience: string; scp: string }> {
      return resolveScope(tenant, scope, true);
    },
    /** Deletes expired refresh tokens (spent ones expire 14 days after use, or sooner). */
    async pruneRefreshTokens(): Promise<number> {
      return refreshTokens.prune();
    },
  };
}
export type TokenEndpoint = ReturnType<typeof createTokenEndpoint>;
