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

/**
 * The tokens of a user who signed in on a page (authorization code, device code): the user must
 * still exist and be enabled; an ID token and client_info as asked; a refresh token with
 * `offline_access` (its id is returned so a replayed code can revoke it).
 */
export async function signedInUserTokens(
  deps: GrantDeps,
  ctx: TokenRequestContext,
  tenant: Tenant,
  principalId: string,
  clientId: string,
  scope: string,
  grant: string,
  sign: { nonce: string | null; authTime: number },
): Promise<{ response: TokenResponse; refreshTokenId?: string }> {
  const principal = await deps.principals.get(tenant.id, principalId);
  if (!principal?.enabled) throw oauth('invalid_grant', 'The user account is disabled or deleted.', 50057);
  // A sign-in before a password reset, a disable or revokeSignInSessions redeems nothing.
  if (!signInValid(principal, sign.authTime))
    throw oauth('invalid_grant', 'The sign-in was revoked: sign in again.', 50173);
  const { audience, scp } = await resolveScope(deps, tenant, scope, true);
  const t = await userAccessToken(deps, ctx, principal, clientId, audience, scp);
  deps.onIssued?.({ tenantId: tenant.id, principal, clientId, audience, grant });
  const extra: Partial<TokenResponse> = {
    scope: `${audience}/${scp}`,
    ...(await userSignInExtras(deps, ctx, scope, principal, clientId, sign)),
  };
  if (!scope.split(/\s+/).includes('offline_access')) return { response: respond(t, extra) };
  const rt = await deps.refreshTokens.issue(tenant.id, principal.id, clientId, scope, {
    authTime: sign.authTime,
  });
  extra.refresh_token = rt.token;
  return { response: respond(t, extra), refreshTokenId: rt.id };
}
