import type { Tenant } from '../tenants.js';
import type { GrantDeps, GrantHandler } from './shared.js';
import {
  clientIdOf,
  failedClient,
  field,
  grantParameters,
  oauth,
  requirePublicClient,
  resolveScope,
} from './shared.js';
import { signedInUserTokens } from './user-tokens.js';

/** RFC 8628 §3.4. Entra ID also takes the bare `device_code`. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** `code` is Entra ID's older name of `device_code`. */
export const parameters = grantParameters('device_code', 'code', 'client_info');

/** RFC 8628 §3.2, with Entra ID's `message` for the user. */
export interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  expires_in: number;
  interval: number;
  message: string;
}

/**
 * RFC 8628 §3.1–3.2: a public client (the CLI, a registered native app) starts a device
 * sign-in; the user finishes it at `verificationUri` with the user code.
 */
export async function startDeviceAuthorization(
  deps: GrantDeps,
  tenant: Tenant,
  form: Record<string, string>,
  verificationUri: string,
): Promise<DeviceAuthorizationResponse> {
  const clientId = clientIdOf(form);
  const scope = field(form, 'scope');
  await requirePublicClient(deps, tenant, clientId);
  await resolveScope(deps, tenant, scope, true);
  const d = await deps.deviceCodes.start({ tenantId: tenant.id, clientId, scope });
  return {
    device_code: d.deviceCode,
    user_code: d.userCode,
    verification_uri: verificationUri,
    expires_in: d.expiresInSeconds,
    interval: d.intervalSeconds,
    message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${d.userCode} to authenticate.`,
  };
}

/**
 * RFC 8628 §3.4: the client polls with its device code until the user has signed in on the
 * verification page. Only public clients start device sign-ins, so the device code (a 32-byte
 * secret) is the only proof, as in Entra ID.
 */
export const handler: GrantHandler = async (deps, ctx, tenant) => {
  const { form } = ctx;
  const clientId = clientIdOf(form);
  const code = form.device_code ? field(form, 'device_code') : field(form, 'code');
  const keys = [`ip:${ctx.clientIp}`];
  deps.throttle.check(keys);
  const r = await deps.deviceCodes.poll(tenant.id, clientId, code);
  // The client may have been disabled or deleted since the sign-in started.
  if (r.kind !== 'unknown') await requirePublicClient(deps, tenant, clientId);
  switch (r.kind) {
    case 'unknown':
      throw await failedClient(deps, keys, 'The device code is not valid.', 'invalid_grant', 70000, 400);
    case 'expired':
      throw oauth('expired_token', 'The device code has expired: start the sign-in again.', 70020);
    case 'pending':
      throw oauth(
        'authorization_pending',
        'The user has not signed in yet: poll again after the interval.',
        70016,
      );
    case 'slow_down':
      throw oauth('slow_down', 'Polling too fast: wait at least the interval between token requests.', 70016);
    case 'denied':
      throw oauth('access_denied', 'The user declined the sign-in.', 70000);
  }
  const signedIn = { principalId: r.principalId, clientId, scope: r.scope, grant: DEVICE_CODE_GRANT };
  return (await signedInUserTokens(deps, ctx, tenant, signedIn, { nonce: null, authTime: r.authTime }))
    .response;
};
