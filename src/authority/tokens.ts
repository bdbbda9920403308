import { randomInt } from 'node:crypto';
import type { TokenPolicy } from '../config/index.js';
import { LatchkeyError } from '../errors/index.js';
import { type Clock, seconds } from '../lib/clock.js';
import { loadJose } from '../lib/jose.js';
import { randomBytesPooled } from '../lib/random.js';
import { signCompact } from './jws.js';
import type { Principal } from './principals.js';
import type { SigningKeys } from './signing-keys.js';

/** The claims every JWT Latchkey signs has (the subject is a principal: `sub` = `oid`, in `tid`). */
interface OwnJwtClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  sub: string;
  oid: string;
  tid: string;
}

/** The claims of a Latchkey access token (shaped like Entra ID v2.0 tokens). */
export interface AccessTokenClaims extends OwnJwtClaims {
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

/** The claims of an OpenID Connect ID token (authorization-code sign-in). */
export interface IdTokenClaims extends OwnJwtClaims {
  name: string;
  preferred_username?: string;
  nonce?: string;
  /** When the user authenticated (epoch seconds); absent on a token refreshed without sign-in. */
  auth_time?: number;
  ver: '2.0';
}
const ID_TOKEN_SECONDS = 3600;

/**
 * Issues access tokens. `issuerBase` is `https://host[:port]` as the client
 * reached the authority (one of the configured issuer hosts).
 */
export function createTokenIssuer(deps: { keys: SigningKeys; clock: Clock; policy: TokenPolicy }) {
  const { keys, clock, policy } = deps;
  /** Issued now for `lifetime` seconds, by the principal's tenant's issuer at `issuerBase`, about the principal. */
  const ownClaims = (
    issuerBase: string,
    principal: Principal,
    aud: string,
    lifetime: number,
  ): OwnJwtClaims => {
    const now = seconds(clock.now());
    return {
      aud,
      iss: issuerFor(issuerBase, principal.tenantId),
      iat: now,
      nbf: now,
      exp: now + lifetime,
      sub: principal.id,
      oid: principal.id,
      tid: principal.tenantId,
    };
  };
  /** Signed with the active signing key (its algorithm, its key id in the header). */
  const sign = async (claims: OwnJwtClaims): Promise<string> => {
    const key = await keys.active();
    return signCompact({ alg: key.alg, typ: 'JWT', kid: key.kid }, claims, key.privateKey);
  };
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
      const lifetime = randomInt(policy.minSeconds, policy.maxSeconds + 1);
      const claims: AccessTokenClaims = {
        ...ownClaims(input.issuerBase, principal, input.audience, lifetime),
        azp: input.clientId,
        appid: input.clientId,
        azpacr: input.authMethod,
        idtyp: principal.kind === 'user' ? 'user' : 'app',
        uti: randomBytesPooled(16).toString('base64url'),
        ver: '2.0',
      };
      if (principal.kind === 'user') {
        claims.name = principal.displayName;
        if (principal.userName) claims.preferred_username = principal.userName;
        claims.scp = input.scp ?? 'user_impersonation';
      }
      if (principal.kind === 'managedIdentity' && principal.resourceId)
        claims.xms_mirid = principal.resourceId;
      return { accessToken: await sign(claims), expiresIn: lifetime, expiresOn: claims.exp, claims };
    },
    /** An ID token for a user signed in through the authorization endpoint; its audience is the client. */
    async issueIdToken(input: {
      issuerBase: string;
      principal: Principal;
      clientId: string;
      nonce: string | null;
      /** When the user signed in (ms); null when not known (a refresh). */
      authTime: number | null;
    }): Promise<string> {
      const { principal } = input;
      const claims: IdTokenClaims = {
        ...ownClaims(input.issuerBase, principal, input.clientId, ID_TOKEN_SECONDS),
        name: principal.displayName,
        ver: '2.0',
      };
      if (input.authTime !== null) claims.auth_time = seconds(input.authTime);
      if (principal.userName) claims.preferred_username = principal.userName;
      if (input.nonce !== null) claims.nonce = input.nonce;
      return sign(claims);
    },
  };
}
export type TokenIssuer = ReturnType<typeof createTokenIssuer>;

interface VerifierDeps {
  keys: SigningKeys;
  clock: Clock;
  issuerBases: () => readonly string[];
}

/**
 * Verifies a JWT that Latchkey signed (RFC 8725): the key must be one of ours
 * (by `kid`), the algorithm is pinned to that key's own, and audience, expiry,
 * not-before, tenant, object id and issuer (one of the accepted issuer bases,
 * for the token's tenant) are all checked. Any failure is 401, with a message
 * naming `label`; `explain` names the failed claim (access tokens) where an ID
 * token gets one message for all.
 */
async function verifyOwnJwt<T extends { tid: string; oid: string; iss: string }>(
  deps: VerifierDeps,
  token: string,
  o: {
    label: 'access token' | 'ID token';
    audience: string | string[];
    requiredClaims: string[];
    explain: boolean;
  },
): Promise<T> {
  const unauthorized = (message: string, cause?: unknown) =>
    new LatchkeyError('Unauthorized', message, { cause });
  const { decodeProtectedHeader, errors: joseErrors, jwtVerify } = await loadJose();
  if (token.length > 8192 || token.split('.').length !== 3)
    throw unauthorized(`The ${o.label} is malformed.`);
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch (e) {
    throw unauthorized(`The ${o.label} is malformed.`, e);
  }
  const kidValid = typeof kid === 'string' && kid.length <= 128;
  if (!kidValid && o.explain) throw unauthorized(`The ${o.label} has no valid key id.`);
  const k = kidValid ? await deps.keys.verificationKey(kid!) : undefined;
  if (!k) throw unauthorized(`The ${o.label} was signed by an unknown key.`);
  let payload: T;
  try {
    const r = await jwtVerify(token, k.key, {
      algorithms: [k.alg],
      audience: o.audience,
      currentDate: new Date(deps.clock.now()),
      clockTolerance: 60,
      requiredClaims: o.requiredClaims,
    });
    payload = r.payload as unknown as T;
  } catch (e) {
    if (o.explain && e instanceof joseErrors.JWTExpired) throw unauthorized(`The ${o.label} has expired.`, e);
    if (o.explain && e instanceof joseErrors.JWTClaimValidationFailed)
      throw unauthorized(`The ${o.label} is not valid here (${e.claim}).`, e);
    throw unauthorized(`The ${o.label} could not be verified.`, e);
  }
  if (typeof payload.tid !== 'string' || typeof payload.oid !== 'string')
    throw unauthorized(`The ${o.label} is missing its tenant or object id.`);
  if (!deps.issuerBases().some((b) => issuerFor(b, payload.tid) === payload.iss))
    throw unauthorized(`The ${o.label} was issued by another issuer.`);
  return payload;
}

/** Verifies Latchkey access tokens for one of `audiences` (see {@link verifyOwnJwt}). */
export function createTokenVerifier(deps: VerifierDeps) {
  return {
    verify: (token: string, audiences: readonly string[]): Promise<AccessTokenClaims> =>
      verifyOwnJwt<AccessTokenClaims>(deps, token, {
        label: 'access token',
        audience: [...audiences],
        requiredClaims: ['iss', 'aud', 'exp', 'nbf', 'iat', 'tid', 'oid', 'sub'],
        explain: true,
      }),
  };
}
export type TokenVerifier = ReturnType<typeof createTokenVerifier>;

/**
 * Verifies OpenID Connect ID tokens issued to a client (the console checks the
 * one its sign-in returns): same keys and rules as access tokens; the audience
 * is the client id.
 */
export function createIdTokenVerifier(deps: VerifierDeps) {
  return {
    verify: (token: string, clientId: string): Promise<IdTokenClaims> =>
      verifyOwnJwt<IdTokenClaims>(deps, token, {
        label: 'ID token',
        audience: clientId,
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'tid', 'oid', 'sub'],
        explain: false,
      }),
  };
}
export type IdTokenVerifier = ReturnType<typeof createIdTokenVerifier>;
