import { randomBytes, randomInt } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { TokenPolicy } from '../config/index.js';
import { LatchkeyError } from '../errors/index.js';
import { type Clock, seconds } from '../lib/clock.js';
import type { Principal } from './principals.js';
import type { SigningKeys } from './signing-keys.js';

/** The claims of a Latchkey access token (shaped like Entra ID v2.0 tokens). */
export interface AccessTokenClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  sub: string;
  oid: string;
  tid: string;
  /** Client (application) id that asked for the token. */
  azp: string;
  appid: string;
  /** "1" client secret, "2" certificate / assertion, "0" public client. */
  azpacr: '0' | '1' | '2';
  idtyp: 'app' | 'user';
  uti: string;
  ver: '2.0';
  name?: string;
  preferred_username?: string;
  scp?: string;
  /** Managed identities: the ARM id of the identity's resource. */
  xms_mirid?: string;
}

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
  expiresOn: number;
  claims: AccessTokenClaims;
}

export const issuerFor = (base: string, tenantId: string): string => `${base}/${tenantId}/v2.0`;

/**
 * Issues access tokens. `issuerBase` is `https://host[:port]` as the client
 * reached the authority (one of the configured issuer hosts).
 */
export function createTokenIssuer(deps: { keys: SigningKeys; clock: Clock; policy: TokenPolicy }) {
  const { keys, clock, policy } = deps;
  return {
    async issue(input: {
      issuerBase: string;
      principal: Principal;
      clientId: string;
      audience: string;
      authMethod: '0' | '1' | '2';
      scp?: string;
    }): Promise<IssuedToken> {
      const { principal } = input;
      const now = seconds(clock.now());
      const lifetime = randomInt(policy.minSeconds, policy.maxSeconds + 1);
      const claims: AccessTokenClaims = {
        aud: input.audience,
        iss: issuerFor(input.issuerBase, principal.tenantId),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        sub: principal.id,
        oid: principal.id,
        tid: principal.tenantId,
        azp: input.clientId,
        appid: input.clientId,
        azpacr: input.authMethod,
        idtyp: principal.kind === 'user' ? 'user' : 'app',
        uti: randomBytes(16).toString('base64url'),
        ver: '2.0',
      };
      if (principal.kind === 'user') {
        claims.name = principal.displayName;
        if (principal.userName) claims.preferred_username = principal.userName;
        claims.scp = input.scp ?? 'user_impersonation';
      }
      if (principal.kind === 'managedIdentity' && principal.resourceId)
        claims.xms_mirid = principal.resourceId;
      const key = await keys.active();
      const accessToken = await new SignJWT({ ...claims })
        .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid })
        .sign(key.privateKey);
      return { accessToken, expiresIn: lifetime, expiresOn: claims.exp, claims };
    },
  };
}
export type TokenIssuer = ReturnType<typeof createTokenIssuer>;

/**
 * Verifies Latchkey access tokens (RFC 8725): the algorithm is pinned to the
 * key's own, the key must be one of ours (by `kid`), and issuer, audience,
 * tenant, expiry and not-before are all checked. Any failure is 401.
 */
export function createTokenVerifier(deps: {
  keys: SigningKeys;
  clock: Clock;
  issuerBases: () => readonly string[];
}) {
  const { keys, clock } = deps;
  const unauthorized = (message: string, cause?: unknown) =>
    new LatchkeyError('Unauthorized', message, { cause });
  return {
    async verify(token: string, audiences: readonly string[]): Promise<AccessTokenClaims> {
      if (token.length > 8192 || token.split('.').length !== 3)
        throw unauthorized('The access token is malformed.');
      let kid: string | undefined;
      try {
        kid = decodeProtectedHeader(token).kid;
      } catch (e) {
        throw unauthorized('The access token is malformed.', e);
      }
      if (typeof kid !== 'string' || kid.length > 128)
        throw unauthorized('The access token has no valid key id.');
      const k = await keys.verificationKey(kid);
      if (!k) throw unauthorized('The access token was signed by an unknown key.');
      let payload: AccessTokenClaims;
      try {
        const r = await jwtVerify(token, k.key, {
          algorithms: [k.alg],
          audience: [...audiences],
          currentDate: new Date(clock.now()),
          clockTolerance: 60,
          requiredClaims: ['iss', 'aud', 'exp', 'nbf', 'iat', 'tid', 'oid', 'sub'],
        });
        payload = r.payload as unknown as AccessTokenClaims;
      } catch (e) {
        if (e instanceof joseErrors.JWTExpired) throw unauthorized('The access token has expired.', e);
        if (e instanceof joseErrors.JWTClaimValidationFailed) {
          throw unauthorized(`The access token is not valid here (${e.claim}).`, e);
        }
        throw unauthorized('The access token could not be verified.', e);
      }
      if (typeof payload.tid !== 'string' || typeof payload.oid !== 'string') {
        throw unauthorized('The access token is missing its tenant or object id.');
      }
      const validIssuers = deps.issuerBases().map((b) => issuerFor(b, payload.tid));
      if (!validIssuers.includes(payload.iss))
        throw unauthorized('The access token was issued by another issuer.');
      return payload;
    },
  };
}
export type TokenVerifier = ReturnType<typeof createTokenVerifier>;
