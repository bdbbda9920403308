import { LatchkeyError } from '../../errors/index.js';
import { isGuid } from '../../lib/ids.js';
import { ASSERTION_TYPE } from '../client-assertion.js';
import { isFederatedAssertion } from '../federation.js';
import type { Principal } from '../principals.js';
import type { Tenant } from '../tenants.js';
import type { GrantDeps, GrantHandler, TokenRequestContext } from './shared.js';
import { clientIdOf, failedClient, field, grantParameters, oauth, resolveScope, respond } from './shared.js';

export const parameters = grantParameters(
  'scope',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
);

/** How the client proved itself: `appidacr` 1 (secret) or 2 (certificate), and the assertion's jti to spend. */
interface ClientAuthentication {
  principal: Principal;
  method: '1' | '2';
  consumeAssertion?: (resource: string) => Promise<void>;
}

/**
 * The application authenticates with a client secret or a client assertion (RFC 7523) signed
 * with a registered certificate. Failures count towards the throttle of the client and address.
 *
 * The principal and its credentials may come from memory (src/authority/principals.ts `client`,
 * src/authority/credentials.ts). When they did and other nodes share the database, one read
 * confirms them (`credentials.confirm`); if it fails, the authentication is done again from the
 * database alone (`fresh`), so the answer is the one the database gives now.
 */
async function authenticateClient(
  deps: GrantDeps,
  ctx: TokenRequestContext,
  tenant: Tenant,
  clientId: string,
  keys: string[],
  fresh = false,
): Promise<ClientAuthentication> {
  const { form } = ctx;
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
  const found = isGuid(clientId) ? await deps.principals.client(tenant.id, clientId, fresh) : undefined;
  const principal = found?.principal;
  if (!principal || principal.kind === 'user') {
    throw await failedClient(
      deps,
      keys,
      `Application with identifier '${clientId.slice(0, 64)}' was not found in the directory '${tenant.id}'.`,
      'unauthorized_client',
      700016,
      400,
    );
  }
  // A refusal is decided from the database alone: with the application from memory, once more fresh.
  const retryFresh = !fresh && found?.cached === true;
  /** An answer (partly) from memory, checked against the database when other nodes share it. */
  const confirmed = async (cached: boolean, credentialId?: string): Promise<boolean> => {
    if (fresh || !(cached || found?.cached) || (await deps.credentials.confirm(principal.id, credentialId)))
      return true;
    deps.principals.forgetClient(principal.id);
    deps.credentials.forget(principal.id);
    return false;
  };
  if (secret) {
    const m = await deps.credentials.matchSecret(principal.id, secret, fresh);
    if (m && !(await confirmed(m.cached, m.credentialId)))
      return authenticateClient(deps, ctx, tenant, clientId, keys, true);
    if (!m) {
      if (retryFresh) return authenticateClient(deps, ctx, tenant, clientId, keys, true);
      throw await failedClient(
        deps,
        keys,
        'Invalid client secret provided, or the secret has expired.',
        'invalid_client',
        7000215,
        401,
      );
    }
    return { principal, method: '1' };
  }
  if (field(form, 'client_assertion_type') !== ASSERTION_TYPE) {
    throw oauth('invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}.`, 50027);
  }
  // Workload identity federation: an external token (its issuer is not the client) goes to
  // src/authority/federation.ts, which verifies it against the identity's federated credentials.
  if (deps.federation && (await isFederatedAssertion(assertion!, clientId))) {
    // Before the exchange: a principal from memory is confirmed first. (An external token's jti
    // is not recorded: like Entra, the same token may be exchanged again while it is valid.)
    if (!(await confirmed(false))) return authenticateClient(deps, ctx, tenant, clientId, keys, true);
    try {
      await deps.federation.exchange({
        tenantId: tenant.id,
        principalId: principal.id,
        clientId,
        assertion: assertion!,
        clientIp: ctx.clientIp,
      });
    } catch (e) {
      if (e instanceof LatchkeyError)
        throw await failedClient(deps, keys, e.message, e.code, e.aadCodes[0] ?? 700027, e.status);
      throw e;
    }
    return { principal, method: '2' };
  }
  const audiences = [tenant.id, ...(tenant.domain ? [tenant.domain] : [])].flatMap((seg) => [
    `${ctx.issuerBase}/${seg}/oauth2/v2.0/token`,
    `${ctx.issuerBase}/${seg}/oauth2/token`,
  ]);
  let checked: Awaited<ReturnType<GrantDeps['assertions']['verify']>>;
  try {
    checked = await deps.assertions.verify({
      assertion: assertion!,
      principalId: principal.id,
      clientId,
      audiences,
      fresh,
    });
  } catch (e) {
    if (!(e instanceof LatchkeyError)) throw e;
    if (retryFresh) return authenticateClient(deps, ctx, tenant, clientId, keys, true);
    throw await failedClient(deps, keys, e.message, e.code, 700027, 401);
  }
  if (!(await confirmed(checked.cached, checked.credentialId)))
    return authenticateClient(deps, ctx, tenant, clientId, keys, true);
  return { principal, method: '2', consumeAssertion: checked.consume };
}

/** RFC 6749 §4.4: an application's own token, for one resource (`{resource}/.default`). */
export const handler: GrantHandler = async (deps, ctx, tenant) => {
  const clientId = clientIdOf(ctx.form);
  const scope = field(ctx.form, 'scope');
  const keys = [`c:${tenant.id}:${clientId}`, `ip:${ctx.clientIp}`];
  deps.throttle.check(keys);
  const { principal, method, consumeAssertion } = await authenticateClient(deps, ctx, tenant, clientId, keys);
  if (!principal.enabled) throw oauth('unauthorized_client', 'The application is disabled.', 7000112);
  const { audience } = await resolveScope(deps, tenant, scope, false);
  if (consumeAssertion) {
    try {
      await consumeAssertion(deps.replayResourceOf(audience));
    } catch (e) {
      if (e instanceof LatchkeyError) throw await failedClient(deps, keys, e.message, e.code, 700027, 401);
      throw e;
    }
  }
  void deps.throttle.succeed(keys[0]!);
  const t = await deps.issuer.issue({
    issuerBase: ctx.issuerBase,
    principal,
    clientId,
    audience,
    authMethod: method,
  });
  deps.onIssued?.({ tenantId: tenant.id, principal, clientId, audience, grant: 'client_credentials' });
  return respond(t);
};
