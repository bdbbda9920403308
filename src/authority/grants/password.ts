import { verifyPassword } from '../../crypto/hashing.js';
import type { GrantHandler } from './shared.js';
import { clientIdOf, failedClient, field, grantParameters, oauth, requirePublicClient } from './shared.js';
import { issueUserTokens } from './user-tokens.js';

export const parameters = grantParameters('username', 'password', 'scope', 'client_info');

/**
 * RFC 6749 §4.3 (resource owner password credentials), for public clients only: the user's
 * name and password. Failures count towards the throttle of the user name and address.
 */
export const handler: GrantHandler = async (deps, ctx, tenant) => {
  const { form } = ctx;
  const clientId = clientIdOf(form);
  const userName = field(form, 'username').toLowerCase();
  const pw = field(form, 'password');
  const scope = field(form, 'scope');
  await requirePublicClient(deps, tenant, clientId);
  const keys = [`u:${tenant.id}:${userName}`, `ip:${ctx.clientIp}`];
  // Held while the password is checked: concurrent guesses count before their scrypt ends.
  const found = await deps.throttle.guard(keys, async () => {
    const f = await deps.principals.byUserName(tenant.id, userName);
    const ok = await verifyPassword(pw, f?.passwordHash ?? null);
    if (!f || !ok)
      throw await failedClient(deps, keys, 'Invalid username or password.', 'invalid_grant', 50126, 400);
    return f;
  });
  if (!found.principal.enabled) throw oauth('invalid_grant', 'The user account is disabled.', 50057);
  void deps.throttle.succeed(keys[0]!);
  const user = { principal: found.principal, clientId, scope, grant: 'password' };
  return (await issueUserTokens(deps, ctx, tenant, user, { nonce: null, authTime: deps.clock.now() }))
    .response;
};
