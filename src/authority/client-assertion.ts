import { constants, createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { usedAssertionStore } from '../storage/authority/used-assertion-store.js';
import { groupCommitFor } from '../storage/group-commit.js';
import type { Database } from '../storage/port.js';
import type { Credentials } from './credentials.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Asymmetric algorithms only: `none` and HMAC can never authenticate a client. */
const ALGORITHMS = ['PS256', 'RS256', 'PS384', 'RS384', 'PS512', 'RS512', 'ES256', 'ES384'];
const MAX_LIFETIME_S = 3600;
const CLOCK_TOLERANCE_S = 300;
const B64URL = /^[A-Za-z0-9_-]*$/;

/** JWS algorithm → digest, key type and (EC) curve; RSA keys must have at least 2048 bits (as jose requires). */
const SCHEMES: Record<string, { hash: string; kty: 'rsa' | 'ec'; pss?: true; curve?: string }> = {
  RS256: { hash: 'sha256', kty: 'rsa' },
  RS384: { hash: 'sha384', kty: 'rsa' },
  RS512: { hash: 'sha512', kty: 'rsa' },
  PS256: { hash: 'sha256', kty: 'rsa', pss: true },
  PS384: { hash: 'sha384', kty: 'rsa', pss: true },
  PS512: { hash: 'sha512', kty: 'rsa', pss: true },
  ES256: { hash: 'sha256', kty: 'ec', curve: 'prime256v1' },
  ES384: { hash: 'sha384', kty: 'ec', curve: 'secp384r1' },
};

/**
 * RFC 7515 signature check of a compact JWS with `node:crypto` (OpenSSL): the key must be of the
 * algorithm's type (and curve), PSS uses a salt of the digest's length (RFC 7518 §3.5), ECDSA the
 * raw r||s form (§3.4).
 */
export function verifySignature(jws: string, alg: string, key: KeyObject): boolean {
  const parts = jws.split('.');
  return parts.length === 3 && verifyParts(parts as [string, string, string], alg, key);
}

/** {@link verifySignature} of a compact JWS already split at its dots. */
function verifyParts(parts: readonly [string, string, string], alg: string, key: KeyObject): boolean {
  const scheme = SCHEMES[alg];
  if (!scheme || key.asymmetricKeyType !== scheme.kty) return false;
  const details = key.asymmetricKeyDetails ?? {};
  if (scheme.kty === 'rsa' && (details.modulusLength ?? 0) < 2048) return false;
  if (scheme.curve !== undefined && details.namedCurve !== scheme.curve) return false;
  if (!parts.every((p) => B64URL.test(p))) return false;
  const signingInput = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
  const signature = Buffer.from(parts[2], 'base64url');
  try {
    return verify(
      scheme.hash,
      signingInput,
      scheme.kty === 'ec'
        ? { key, dsaEncoding: 'ieee-p1363' }
        : scheme.pss
          ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
          : { key, padding: constants.RSA_PKCS1_PADDING },
      signature,
    );
  } catch {
    return false;
  }
}

/**
 * The claims of a client assertion, as jose's `jwtVerify` checks them with `issuer`, `subject`,
 * `audience`, `requiredClaims: [exp, jti, aud, iss, sub]` and a 300 s clock tolerance.
 */
function checkClaims(
  p: Record<string, unknown>,
  o: { audiences: readonly string[]; clientId: string; now: number },
): void {
  const fail = (m: string) => {
    throw new Error(m);
  };
  for (const c of ['exp', 'jti', 'aud', 'iss', 'sub']) if (p[c] === undefined) fail(`missing ${c}`);
  const num = (c: string) => p[c] === undefined || (typeof p[c] === 'number' && Number.isFinite(p[c]));
  if (!num('exp') || !num('nbf') || !num('iat')) fail('a time claim is not a number');
  if ((p.exp as number) <= o.now - CLOCK_TOLERANCE_S) fail('expired');
  if (p.nbf !== undefined && (p.nbf as number) > o.now + CLOCK_TOLERANCE_S) fail('not yet valid');
  if (p.iss !== o.clientId) fail('issuer');
  if (p.sub !== o.clientId) fail('subject');
  const aud = typeof p.aud === 'string' ? [p.aud] : Array.isArray(p.aud) ? p.aud : [];
  if (!aud.some((a) => typeof a === 'string' && o.audiences.includes(a))) fail('audience');
}

/** jose's text decoder: not fatal (U+FFFD for bad bytes) and a leading BOM dropped. */
const UTF8 = new TextDecoder();

/**
 * Base64url bytes as jose decodes them on this runtime (`atob` after mapping `-_` to `+/`): padding
 * and ASCII whitespace are accepted, `+` and `/` are not, a length of 4n+1 is refused. Canonical
 * input (the alphabet only, not 4n+1) takes Buffer's decoder, which answers the same for it.
 */
function base64urlBytes(part: string): Uint8Array {
  if (B64URL.test(part) && part.length % 4 !== 1) return Buffer.from(part, 'base64url');
  if (part.includes('+') || part.includes('/')) throw new Error('not base64url');
  let binary: string;
  try {
    binary = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
  } catch {
    throw new Error('not base64url');
  }
  return Buffer.from(binary, 'latin1');
}

/**
 * One base64url JSON object of a compact JWS (header or payload), as jose's `decodeProtectedHeader`
 * and `decodeJwt` decode it; throws unless it is a JSON object.
 */
function decodeObject(part: string): Record<string, unknown> {
  const v: unknown = JSON.parse(UTF8.decode(base64urlBytes(part)));
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
  return v as Record<string, unknown>;
}

/**
 * The payload of a compact JWS, decoded (nothing verified); throws unless it is three parts with a
 * base64url JSON object in the middle. The last assertion's payload is remembered (frozen), by its
 * exact text: the token endpoint peeks at it (isFederatedAssertion) and then verifies it, and so
 * decodes it once.
 */
export function assertionPayload(assertion: string): Readonly<Record<string, unknown>> {
  if (lastPayload?.jws === assertion) return lastPayload.payload;
  const parts = assertion.split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS');
  const payload = Object.freeze(decodeObject(parts[1]!));
  lastPayload = { jws: assertion, payload };
  return payload;
}
let lastPayload: { jws: string; payload: Readonly<Record<string, unknown>> } | undefined;

const invalid = (message: string, cause?: unknown) =>
  new LatchkeyError('invalid_client', message, { status: 401, aadCodes: [700027], cause });

/**
 * The key a used jti is stored under (`used_assertions`, with {@link expiresAtOf}): SHA-256 of
 * client id, jti and resource (lowercased), base64url. Stored keys must not change between
 * versions, or a replay across an upgrade would not be found.
 */
export const jtiHashOf = (clientId: string, jti: string, resource: string): string =>
  createHash('sha256').update(`${clientId}\n${jti}\n${resource.toLowerCase()}`).digest('base64url');

/**
 * Until when a used jti is remembered (`used_assertions.expires_at`, ms), and the other half of its
 * key: the assertion's `exp` (covered by its signature, so a replay has the same) plus the clock
 * tolerance, rounded up to a whole ms (an `exp` may have a fraction; the column is an integer).
 * Unchanged for the whole-second `exp` of earlier versions' rows.
 */
export const expiresAtOf = (exp: number): number => Math.ceil((exp + CLOCK_TOLERANCE_S) * 1000);

/** What the verifier uses of an assertion's protected header (frozen: shared between requests). */
interface AssertionHeader {
  readonly alg: string;
  /** `x5t#S256`, padding dropped (absent when not a string). */
  readonly sha256?: string;
  /** `x5t`, padding dropped (absent when not a string). */
  readonly sha1?: string;
  /** `crit` is present. */
  readonly crit: boolean;
}
/** Longer header texts are decoded every time rather than remembered. */
const MAX_CACHED_HEADER = 1024;

/**
 * The protected header of a client assertion, checked as far as it can be alone: a base64url JSON
 * object, an accepted `alg`, a certificate named by `x5t#S256` or `x5t`. Throws the request's
 * error otherwise.
 */
function decodeHeader(text: string): AssertionHeader {
  let header: Record<string, unknown>;
  try {
    header = decodeObject(text);
  } catch (e) {
    throw invalid('The client assertion is malformed.', e);
  }
  if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg)) {
    throw invalid('The client assertion uses an algorithm that is not accepted.');
  }
  // RFC 7515 §4.1.7–8 says unpadded base64url; MSAL Python (so the Azure CLI) pads, and Entra ID
  // accepts it: the padding is dropped before the lookup.
  const unpad = (v: unknown) => (typeof v === 'string' ? v.replace(/=+$/, '') : undefined);
  const sha256 = unpad(header['x5t#S256']);
  const sha1 = unpad(header.x5t);
  if (sha256 === undefined && sha1 === undefined) {
    throw invalid('The client assertion must name its certificate (x5t#S256 or x5t).');
  }
  return Object.freeze({
    alg: header.alg,
    ...(sha256 !== undefined ? { sha256 } : {}),
    ...(sha1 !== undefined ? { sha1 } : {}),
    crit: header.crit !== undefined,
  });
}

/**
 * Verifies a client assertion (RFC 7523) signed with a registered certificate:
 * the header names the certificate (`x5t#S256`, or legacy `x5t`), `iss` and
 * `sub` are the client id, `aud` is this token endpoint, and each `jti` is
 * accepted once per resource within its lifetime (stored, so every node
 * refuses a replay).
 *
 * Why per resource: MSAL (ClientCertificateCredential) caches its signed
 * assertion for ten minutes and sends the same one for every token request in
 * that time, e.g. for the vault and then for the management API. Entra accepts
 * that; refusing it would break the official SDK. A replay of an assertion for
 * a resource it has already been used for is refused.
 */
export function createAssertionVerifier(deps: {
  db: Database;
  clock: Clock;
  /** The registered certificates: all the verifier asks of the directory. */
  credentials: Pick<Credentials, 'findCertificate' | 'certificatePem'>;
}) {
  const { db, clock, credentials } = deps;
  // Registered certificates' public keys, parsed once per certificate (parsing costs more than
  // verifying), by credential id: a credential's certificate never changes, and a certificate
  // removed from a principal is no longer found by findCertificate, so a stale entry is never reached.
  const keys = new Map<string, KeyObject>();
  const publicKeyOf = async (principalId: string, credentialId: string): Promise<KeyObject | undefined> => {
    const hit = keys.get(credentialId);
    if (hit) return hit;
    const pem = await credentials.certificatePem(principalId, credentialId);
    if (pem === undefined) return undefined;
    if (keys.size >= 1000) keys.delete(keys.keys().next().value!);
    const k = createPublicKey(pem);
    keys.set(credentialId, k);
    return k;
  };
  // Decoded headers by their exact text: a client sends the same header (alg, typ, thumbprint) with
  // every assertion, and the answer is a function of the text alone. Only headers that pass are kept.
  const headers = new Map<string, AssertionHeader>();
  const headerOf = (text: string): AssertionHeader => {
    const hit = headers.get(text);
    if (hit) return hit;
    const h = decodeHeader(text);
    if (text.length <= MAX_CACHED_HEADER) {
      if (headers.size >= 256) headers.delete(headers.keys().next().value!);
      headers.set(text, h);
    }
    return h;
  };
  return {
    /**
     * Checks the assertion (format, certificate, signature, claims, lifetime)
     * and returns `consume(resource)`, which records its jti for that resource
     * and refuses a replay. Call `consume` once the requested resource is known.
     */
    async verify(input: {
      assertion: string;
      principalId: string;
      clientId: string;
      audiences: readonly string[];
      /** Skip the credential cache (a check of a cached answer failed). */
      fresh?: boolean;
    }): Promise<{ consume(resource: string): Promise<void>; credentialId: string; cached: boolean }> {
      const { assertion, clientId } = input;
      // Split and decoded once here (the signature check and the claims use the same parts).
      const parts = assertion.length > 16_384 ? [] : assertion.split('.');
      if (parts.length !== 3) throw invalid('The client assertion is malformed.');
      const jws = parts as [string, string, string];
      const header = headerOf(jws[0]);
      const found = await credentials.findCertificate(
        input.principalId,
        {
          ...(header.sha256 !== undefined ? { sha256: header.sha256 } : {}),
          ...(header.sha1 !== undefined ? { sha1: header.sha1 } : {}),
        },
        input.fresh,
      );
      const key =
        found && (keys.get(found.credentialId) ?? (await publicKeyOf(input.principalId, found.credentialId)));
      if (!found || !key)
        throw invalid(
          'The certificate in the client assertion is not registered for this client, or has expired.',
        );
      if (header.crit)
        throw invalid('The client assertion names critical header parameters that are not understood.');
      // The signature through OpenSSL with the cached KeyObject (jose's WebCrypto path costs ~3x more),
      // then the claims, as jose's jwtVerify would check them (see checkClaims).
      if (!verifyParts(jws, header.alg, key))
        throw invalid('The client assertion is not valid (signature, audience, issuer, subject or time).');
      let payload: Readonly<Record<string, unknown>>;
      try {
        payload = assertionPayload(assertion);
        checkClaims(payload, { audiences: input.audiences, clientId, now: clock.now() / 1000 });
      } catch (e) {
        throw invalid('The client assertion is not valid (signature, audience, issuer, subject or time).', e);
      }
      const now = Math.floor(clock.now() / 1000);
      const exp = payload.exp as number; // checkClaims: present and a finite number
      if (exp - now > MAX_LIFETIME_S)
        throw invalid('The client assertion lives too long (at most one hour).');
      if (typeof payload.jti !== 'string' || payload.jti.length < 1 || payload.jti.length > 256) {
        throw invalid('The client assertion needs a jti.');
      }
      const jti = payload.jti;
      const expiresAt = expiresAtOf(exp);
      return {
        credentialId: found.credentialId,
        cached: found.cached,
        async consume(resource: string) {
          const jtiHash = jtiHashOf(clientId, jti, resource);
          // Group commit: answered once the batch that records it is durable; a second use of the
          // same assertion (jti and exp) for the resource, in the same batch or later, finds the
          // first one's row and is refused.
          // One statement that refuses a replay by itself: no savepoint needed (`single`); it
          // goes through `tx` alone (`explicit`: no async-context tracking for its batch).
          const fresh = await groupCommitFor(db).run(
            (tx) => usedAssertionStore.consume(tx, jtiHash, expiresAt),
            { single: true, explicit: true },
          );
          if (!fresh)
            throw invalid('The client assertion has been used before for this resource (replayed jti).');
        },
      };
    },
    /** Deletes remembered jtis whose assertions have expired. */
    async prune(): Promise<number> {
      return usedAssertionStore.prune(db, clock.now());
    },
  };
}
export type AssertionVerifier = ReturnType<typeof createAssertionVerifier>;
