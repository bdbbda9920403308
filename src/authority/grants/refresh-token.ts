import { isGuid } from '../../lib/ids.js';
import { isBuiltInPublicClient } from '../clients.js';
import type { Tenant } from '../tenants.js';
import type { GrantDeps, GrantHandler } from './shared.js';
import {
  clientIdOf,
  failedClient,
  field,
  grantParameters,
  oauth,
  resolveScope,
  signInValid,
} from './shared.js';
import { userTokenResponse } from './user-tokens.js';

export const parameters = grantParameters('refresh_token', 'scope', 'client_info');

/**
 * The client of a refresh token still may use it: a built-in client, or a registered public
 * client application that still exists, is enabled and was not disabled since the sign-in.
 */
async function checkClient(
  deps: GrantDeps,
  tenant: Tenant,
  clientId: string,
  authTime: number,
): Promise<void> {
  if (isBuiltInPublicClient(clientId)) return;
  const app = isGuid(clientId) ? await deps.principals.byAppId(tenant.id, clientId) : undefined;
  if (!app?.publicClient || !app.enabled)
    throw oauth('unauthorized_client', 'The client application is disabled or deleted.', 7000112);
  if (!signInValid(app, authTime))
    throw oauth(
      'invalid_grant',
      'The refresh token was revoked (its client application was disabled).',
      70008,
    );
}

/**
 * RFC 6749 §6 with the OAuth 2.0 Security BCP (RFC 9700 §4.14.2): the token rotates (spent on
 * use, a successor issued); presenting a spent one is a replay and revokes its whole family.
 * Each refresh re-checks the user (exists, enabled, not signed out since) and the client.
 */
export const handler: GrantHandler = async (deps, ctx, tenant) => {
  const { form } = ctx;
  const clientId = clientIdOf(form);
  const token = field(form, 'refresh_token');
  const keys = [`ip:${ctx.clientIp}`];
  deps.throttle.check(keys);
  const invalid = (message: string) => failedClient(deps, keys, message, 'invalid_grant', 70008, 400);
  const found = await deps.refreshTokens.find(tenant.id, token);
  if (!found || found.clientId !== clientId || found.expiresAt <= deps.clock.now())
    throw await invalid('The refresh token is invalid or has expired.');
  const replay = async () => {
    await deps.refreshTokens.revokeFamilyOf(found.id);
    return invalid('The refresh token has already been used; every token of its sign-in is revoked.');
  };
  if (found.usedAt !== null) throw await replay();
  const { authTime } = found;
  const principal = await deps.principals.get(tenant.id, found.principalId);
  if (!principal?.enabled || principal.kind !== 'user')
    throw oauth('invalid_grant', 'The user account is disabled or deleted.', 50057);
  if (!signInValid(principal, authTime))
    throw await invalid('The refresh token was revoked (the user signed out, or the password was reset).');
  await checkClient(deps, tenant, clientId, authTime);
  const scope = field(form, 'scope', false) ?? found.scope;
  const { audience, scp } = await resolveScope(deps, tenant, scope, true);
  // Rotate: the used refresh token is spent. Two concurrent uses of one token: one wins, and
  // the other is a replay.
  if (!(await deps.refreshTokens.consume(found.id))) throw await replay();
  // The sign-in's scope stays the family's: the ID token and the next refresh token carry it.
  const user = { principal, clientId, scope: found.scope, audience, scp };
  const rotated = { id: found.familyId, authTime };
  return (
    await userTokenResponse(deps, ctx, tenant, user, {
      sign: { nonce: null, authTime: null },
      refresh: rotated,
    })
  ).response;
};
