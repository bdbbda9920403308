import type { Principal } from '../principals.js';
import type { Tenant } from '../tenants.js';
import {
  type GrantDeps,
  oauth,
  resolveScope,
  respond,
  signInValid,
  type TokenRequestContext,
  type TokenResponse,
} from './shared.js';

/** A user's access token (`appidacr` 0: a public client; the user authenticated). */
export const userAccessToken = (
  deps: Pick<GrantDeps, 'issuer'>,
  ctx: TokenRequestContext,
  principal: Principal,
  clientId: string,
  audience: string,
  scp: string,
) => deps.issuer.issue({ issuerBase: ctx.issuerBase, principal, clientId, audience, authMethod: '0', scp });

/**
 * What a user's sign-in adds beyond the access token, as Entra does: an ID token when `openid`
 * was asked for, and `client_info` when the client sent `client_info=1` (MSAL keys its account
 * cache by it; MSAL Python and so the Azure CLI take the user name from the ID token).
 */
export async function userSignInExtras(
  deps: Pick<GrantDeps, 'issuer'>,
  ctx: TokenRequestContext,
  scope: string,
  principal: Principal,
  clientId: string,
  sign: { nonce: string | null; authTime: number | null },
): Promise<Partial<TokenResponse>> {
  const extra: Partial<TokenResponse> = {};
  if (scope.split(/\s+/).includes('openid')) {
    extra.id_token = await deps.issuer.issueIdToken({
      issuerBase: ctx.issuerBase,
      principal,
      clientId,
      ...sign,
    });
  }
  if (ctx.form.client_info === '1') {
    extra.client_info = Buffer.from(JSON.stringify({ uid: principal.id, utid: principal.tenantId })).toString(
      'base64url',
    );
  }
  return extra;
}

/** Who the tokens are for, and the resource scope they carry (resolved from the request's `scope`). */
interface UserTokenSubject {
  principal: Principal;
  clientId: string;
  /** The sign-in's scope: an ID token with `openid`, and what a refresh token carries. */
  scope: string;
  audience: string;
  scp: string;
}

/**
 * A user's token response, as every user grant answers: the access token, its scope, an ID token
 * and client_info as asked, and a refresh token when `o.refresh` says so (a new family, or the
 * next token of `o.refresh.id`'s). `o.grant` names the grant to `onIssued` (a refresh is not reported).
 */
export async function userTokenResponse(
  deps: GrantDeps,
  ctx: TokenRequestContext,
  tenant: Tenant,
  u: UserTokenSubject,
  o: {
    sign: { nonce: string | null; authTime: number | null };
    refresh?: { id?: string; authTime: number } | undefined;
    grant?: string;
  },
): Promise<{ response: TokenResponse; refreshTokenId?: string }> {
  const { principal, clientId, audience } = u;
  const t = await userAccessToken(deps, ctx, principal, clientId, audience, u.scp);
  if (o.grant) deps.onIssued?.({ tenantId: tenant.id, principal, clientId, audience, grant: o.grant });
  const extra: Partial<TokenResponse> = {
    scope: `${audience}/${u.scp}`,
    ...(await userSignInExtras(deps, ctx, u.scope, principal, clientId, o.sign)),
  };
  if (!o.refresh) return { response: respond(t, extra) };
  const rt = await deps.refreshTokens.issue(tenant.id, principal.id, clientId, u.scope, o.refresh);
  extra.refresh_token = rt.token;
  return { response: respond(t, extra), refreshTokenId: rt.id };
}

/** What the tokens of a user's sign-in are issued from: who (`W`), and when and how the sign-in happened. */
type UserTokenStep<W> = (
  deps: GrantDeps,
  ctx: TokenRequestContext,
  tenant: Tenant,
  who: W,
  sign: { nonce: string | null; authTime: number },
) => Promise<{ response: TokenResponse; refreshTokenId?: string }>;

/**
 * The tokens of a user who has just authenticated (password) or whose sign-in is being redeemed
 * (authorization code, device code): the scope resolved, a refresh token with `offline_access`
 * (its id is returned so a replayed code can revoke it), reported to `onIssued` as `grant`.
 */
export const issueUserTokens: UserTokenStep<{
  principal: Principal;
  clientId: string;
  scope: string;
  grant: string;
}> = async (deps, ctx, tenant, who, sign) => {
  const { audience, scp } = await resolveScope(deps, tenant, who.scope, true);
  const offline = who.scope.split(/\s+/).includes('offline_access');
  return userTokenResponse(
    deps,
    ctx,
    tenant,
    { ...who, audience, scp },
    { sign, grant: who.grant, refresh: offline ? { authTime: sign.authTime } : undefined },
  );
};

/**
 * The tokens of a user who signed in on a page (authorization code, device code): the user must
 * still exist and be enabled, and the sign-in not revoked since; then {@link issueUserTokens}.
 */
export const signedInUserTokens: UserTokenStep<{
  principalId: string;
  clientId: string;
  scope: string;
  grant: string;
}> = async (deps, ctx, tenant, signedIn, sign) => {
  const principal = await deps.principals.get(tenant.id, signedIn.principalId);
  if (!principal?.enabled) throw oauth('invalid_grant', 'The user account is disabled or deleted.', 50057);
  // A sign-in before a password reset, a disable or revokeSignInSessions redeems nothing.
  if (!signInValid(principal, sign.authTime))
    throw oauth('invalid_grant', 'The sign-in was revoked: sign in again.', 50173);
  const { clientId, scope, grant } = signedIn;
  return issueUserTokens(deps, ctx, tenant, { principal, clientId, scope, grant }, sign);
};
