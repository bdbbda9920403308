import type { FastifyRequest } from 'fastify';
import type { Caller } from '../access/caller.js';
import type { Principals } from '../authority/principals.js';
import type { AccessTokenClaims, TokenVerifier } from '../authority/tokens.js';
import { LatchkeyError } from '../errors/index.js';
import type { RateLimiter } from '../lib/rate-limit.js';
import type { ProvisioningKeys } from '../provisioning/keys.js';
import { requestMeta } from './request.js';

/**
 * Authenticates a bearer token for the given audiences and returns the
 * caller. The principal must still exist and be enabled: disabling or deleting
 * a principal takes effect at once, whatever its tokens' expiry.
 */
export function createAuthenticator(deps: {
  verifier: TokenVerifier;
  principals: Principals;
  limiter?: RateLimiter;
  /** When given, `Authorization: ProvisioningKey <key>` is accepted too (management API only). */
  provisioningKeys?: ProvisioningKeys;
}) {
  const { verifier, principals } = deps;
  return async function authenticate(
    req: FastifyRequest,
    audiences: readonly string[],
    /** The `WWW-Authenticate` parameters of a refusal, or a function making them (called only on a refusal). */
    challenge: Record<string, string> | (() => Record<string, string>) = {},
  ): Promise<Caller & { claims?: AccessTokenClaims }> {
    const header = req.headers.authorization;
    // The challenge is built only for a refusal (not on every authenticated request).
    const fail = (message: string, cause?: unknown) => {
      const www = Object.entries(typeof challenge === 'function' ? challenge() : challenge)
        .map(([k, v]) => `${k}="${v}"`)
        .join(', ');
      return new LatchkeyError('Unauthorized', message, {
        cause,
        headers: { 'WWW-Authenticate': `Bearer ${www}`.trim() },
      });
    };
    if (!header) throw fail('AKV10000: Request is missing a Bearer or PoP token.');
    if (deps.provisioningKeys && /^ProvisioningKey /i.test(header)) {
      const caller = await deps.provisioningKeys.authenticate(
        header.slice('ProvisioningKey '.length).trim(),
        requestMeta(req),
      );
      deps.limiter?.take(caller.oid);
      return caller; // no token claims: a provisioning key is not a token
    }
    const m = /^Bearer ([A-Za-z0-9_.~+/=-]+)$/i.exec(header);
    if (!m) throw fail('The Authorization header must be a Bearer token.');
    let claims: AccessTokenClaims;
    try {
      claims = await verifier.verify(m[1]!, audiences);
    } catch (e) {
      throw fail(e instanceof LatchkeyError ? e.message : 'The access token could not be verified.', e);
    }
    const p = await principals.current(claims.oid);
    if (!p || p.tenantId !== claims.tid) throw fail('The principal behind this token no longer exists.');
    if (!p.enabled) throw fail('The principal behind this token is disabled.');
    deps.limiter?.take(p.id);
    return {
      tenantId: p.tenantId,
      oid: p.id,
      appId: claims.appid ?? null,
      kind: p.kind === 'user' ? 'user' : 'app',
      claims,
    };
  };
}
export type Authenticate = ReturnType<typeof createAuthenticator>;
