import { verifyPassword } from '../../crypto/hashing.js';
import type { Tenant } from '../tenants.js';
import {
  failedClient,
  field,
  type GrantDeps,
  oauth,
  requirePublicClient,
  resolveScope,
  respond,
  type TokenRequestContext,
  type TokenResponse,
} from './shared.js';
import { userAccessToken, userSignInExtras } from './user-tokens.js';

export const parameters: ReadonlySet<string> = new Set([
  'client_id',
  'username',
  'password',
  'scope',
  'client_info',
]);

/**
 * RFC 6749 §4.3 (resource owner password credentials), for public clients only: the user's
 * name and password. Failures count towards the throttle of the user name and address.
 */
export async function handler(
  deps: GrantDeps,
  ctx: TokenRequestContext,
  tenant: Tenant,
): Promise<TokenResponse> {
  const { form } = ctx;
  const clientId = field(form, 'client_id').toLowerCase();
  const userName = field(form, 'username').toLowerCase();
  const pw = field(form, 'password');
  const scope = field(form, 'scope');
  await requirePublicClient(deps, tenant, clientId);
  const keys = [`u:${tenant.id}:${userName}`, `ip:${ctx.clientIp}`];
  deps.throttle.check(keys);
  const found = await deps.principals.byUserName(tenant.id, userName);
  const ok = await verifyPassword(pw, found?.passwordHash ?? null);
  if (!found || !ok)
    throw await failedClient(deps, keys, 'Invalid username or password.', 'invalid_grant', 50126, 400);
  if (!found.principal.enabled) throw oauth('invalid_grant', 'The user account is disabled.', 50057);
  void deps.throttle.succeed(keys[0]!);
  const { audience, scp } = await resolveScope(deps, tenant, scope, true);
  const t = await userAccessToken(deps, ctx, found.principal, clientId, audience, scp);
  deps.onIssued?.({ tenantId: tenant.id, principal: found.principal, clientId, audience, grant: 'password' });
  const extra: Partial<TokenResponse> = {
    scope: `${audience}/${scp}`,
    ...(await userSignInExtras(deps, ctx, scope, found.principal, clientId, {
      nonce: null,
      authTime: deps.clock.now(),
    })),
  };
  if (scope.split(/\s+/).includes('offline_access')) {
    extra.refresh_token = (
      await deps.refreshTokens.issue(tenant.id, found.principal.id, clientId, scope, {
        authTime: deps.clock.now(),
      })
    ).token;
  }
  return respond(t, extra);
}
