import type { SecretHasher } from '../crypto/hashing.js';
import type { Database } from '../storage/port.js';
import * as authorizationCode from './grants/authorization-code.js';
import * as clientCredentials from './grants/client-credentials.js';
import * as deviceCode from './grants/device-code.js';
import { DEVICE_CODE_GRANT } from './grants/device-code.js';
import * as password from './grants/password.js';
import * as refreshToken from './grants/refresh-token.js';
import {
  field,
  findTenant,
  type Grant,
  type GrantDeps,
  oauth,
  resolveScope,
  type TokenRequestContext,
  type TokenResponse,
} from './grants/shared.js';
import { createRefreshTokens } from './refresh-tokens.js';
import type { Tenant } from './tenants.js';

export { DEVICE_CODE_GRANT, type DeviceAuthorizationResponse } from './grants/device-code.js';
export type { TokenRequestContext, TokenResponse } from './grants/shared.js';

/** The grant types the token endpoint serves, each in its own file under `grants/`. */
export const GRANTS: ReadonlyMap<string, Grant> = new Map<string, Grant>([
  ['client_credentials', clientCredentials],
  ['password', password],
  ['refresh_token', refreshToken],
  ['authorization_code', authorizationCode],
  [DEVICE_CODE_GRANT, deviceCode],
  ['device_code', deviceCode],
]);

/**
 * The OAuth 2.0 token endpoint, as named steps: parse the grant type → find the tenant → the
 * grant's handler (authenticate the client or user, or redeem a code; resolve the scope; issue).
 */
export function createTokenEndpoint(
  deps: Omit<GrantDeps, 'refreshTokens'> & { db: Database; hasher: SecretHasher },
) {
  const grantDeps: GrantDeps = {
    ...deps,
    refreshTokens: createRefreshTokens({ db: deps.db, clock: deps.clock, hasher: deps.hasher }),
  };

  /** The grant type's handler; `unsupported_grant_type` for any other. */
  const grantOf = (type: string): Grant => {
    const grant = GRANTS.get(type);
    if (!grant)
      throw oauth('unsupported_grant_type', `The grant type '${type.slice(0, 64)}' is not supported.`, 70003);
    return grant;
  };

  return {
    /** RFC 8628 §3.1–3.2: a public client starts a device sign-in (see `grants/device-code.ts`). */
    async startDeviceAuthorization(ctx: {
      tenant: string;
      form: Record<string, string>;
      verificationUri: string;
    }): Promise<deviceCode.DeviceAuthorizationResponse> {
      const tenant = await findTenant(grantDeps, ctx.tenant);
      return deviceCode.startDeviceAuthorization(grantDeps, tenant, ctx.form, ctx.verificationUri);
    },
    async token(ctx: TokenRequestContext): Promise<TokenResponse> {
      const type = field(ctx.form, 'grant_type');
      const tenant = await findTenant(grantDeps, ctx.tenant);
      return grantOf(type).handler(grantDeps, ctx, tenant);
    },
    /**
     * Checks a `scope` parameter for a user sign-in (the authorization endpoint
     * validates it before showing the sign-in form); throws `invalid_scope`.
     */
    async checkUserScope(tenant: Tenant, scope: string): Promise<{ audience: string; scp: string }> {
      return resolveScope(grantDeps, tenant, scope, true);
    },
    /** Deletes expired refresh tokens (spent ones expire 14 days after use, or sooner). */
    async pruneRefreshTokens(): Promise<number> {
      return grantDeps.refreshTokens.prune();
    },
  };
}
export type TokenEndpoint = ReturnType<typeof createTokenEndpoint>;
