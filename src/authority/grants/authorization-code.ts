import { CODE_VERIFIER_RE, pkceMatches } from '../authorization-codes.js';
import { browserClientOf } from '../clients.js';
import { clientIdOf, failedClient, field, type GrantHandler, grantParameters, oauth } from './shared.js';
import { signedInUserTokens } from './user-tokens.js';

export const parameters = grantParameters('code', 'redirect_uri', 'code_verifier', 'client_info');

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636): the code is spent on first
 * presentation, then its bindings are checked (client, redirect URI,
 * verifier). A replayed code revokes the refresh token its first use issued.
 */
export const handler: GrantHandler = async (deps, ctx, tenant) => {
  const { form } = ctx;
  const clientId = clientIdOf(form);
  const code = field(form, 'code');
  const redirectUri = field(form, 'redirect_uri');
  const verifier = field(form, 'code_verifier');
  if (!(await browserClientOf(tenant.id, clientId, deps.principals))) {
    throw oauth(
      'unauthorized_client',
      'This client may not use the authorization code grant (the console, the CLI and registered public clients can).',
      700016,
    );
  }
  if (!CODE_VERIFIER_RE.test(verifier))
    throw oauth('invalid_request', 'code_verifier must be 43–128 unreserved characters.', 50148);
  const keys = [`ip:${ctx.clientIp}`];
  deps.throttle.check(keys);
  const invalid = (message: string, aad: number) =>
    failedClient(deps, keys, message, 'invalid_grant', aad, 400);
  const r = await deps.codes.redeem(code, tenant.id);
  if (!r.ok) {
    if (r.reason === 'reused') {
      // Its refresh token may have been rotated since: the whole family goes.
      if (r.refreshTokenId) await deps.refreshTokens.revokeFamilyOf(r.refreshTokenId);
      throw await invalid('The authorization code has already been redeemed.', 54005);
    }
    throw await invalid(
      r.reason === 'expired' ? 'The authorization code has expired.' : 'The authorization code is not valid.',
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
    deps,
    ctx,
    tenant,
    { principalId: g.principalId, clientId, scope: g.scope, grant: 'authorization_code' },
    { nonce: g.nonce, authTime: g.authTime },
  );
  if (issued.refreshTokenId) await deps.codes.linkRefreshToken(r.id, issued.refreshTokenId);
  return issued.response;
};
