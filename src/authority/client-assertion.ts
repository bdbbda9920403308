import { createHash, createPublicKey } from 'node:crypto';
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
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

const invalid = (message: string, cause?: unknown) =>
  new LatchkeyError('invalid_client', message, { status: 401, aadCodes: [700027], cause });

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
export function createAssertionVerifier(deps: { db: Database; clock: Clock; credentials: Credentials }) {
  const { db, clock, credentials } = deps;
  // Registered certificates' public keys, imported once per certificate and algorithm (importing a
  // key costs more than verifying with it). Keyed by the certificate's hash; a certificate removed
  // from a principal is no longer found by findCertificate, so a stale entry is never reached.
  type PublicKey = ReturnType<typeof importSPKI>;
  const keys = new Map<string, PublicKey>();
  const verificationKey = (pem: string, alg: string): PublicKey => {
    const id = `${alg}|${createHash('sha256').update(pem).digest('base64url')}`;
    const hit = keys.get(id);
    if (hit) return hit;
    if (keys.size >= 1000) keys.delete(keys.keys().next().value!);
    const k = importSPKI(createPublicKey(pem).export({ format: 'pem', type: 'spki' }) as string, alg);
    k.catch(() => keys.delete(id));
    keys.set(id, k);
    return k;
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
    }): Promise<{ consume(resource: string): Promise<void> }> {
      const { assertion, clientId } = input;
      if (assertion.length > 16_384 || assertion.split('.').length !== 3)
        throw invalid('The client assertion is malformed.');
      let header: ReturnType<typeof decodeProtectedHeader>;
      try {
        header = decodeProtectedHeader(assertion);
      } catch (e) {
        throw invalid('The client assertion is malformed.', e);
      }
      if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg)) {
        throw invalid('The client assertion uses an algorithm that is not accepted.');
      }
      // RFC 7515 §4.1.7–8 says unpadded base64url; MSAL Python (so the Azure CLI) pads, and Entra ID
      // accepts it: the padding is dropped before the lookup.
      const unpad = (v: unknown) => (typeof v === 'string' ? v.replace(/=+$/, '') : undefined);
      const s256 = unpad(header['x5t#S256']);
      const s1 = unpad(header.x5t);
      if (typeof s256 !== 'string' && typeof s1 !== 'string') {
        throw invalid('The client assertion must name its certificate (x5t#S256 or x5t).');
      }
      const pem = await credentials.findCertificate(input.principalId, {
        ...(typeof s256 === 'string' ? { sha256: s256 } : {}),
        ...(typeof s1 === 'string' ? { sha1: s1 } : {}),
      });
      if (!pem)
        throw invalid(
          'The certificate in the client assertion is not registered for this client, or has expired.',
        );
      let payload: { jti?: unknown; exp?: number; nbf?: number; iat?: number };
      try {
        const r = await jwtVerify(assertion, await verificationKey(pem, header.alg), {
          algorithms: ALGORITHMS,
          audience: [...input.audiences],
          issuer: clientId,
          subject: clientId,
          currentDate: new Date(clock.now()),
          clockTolerance: 300,
          requiredClaims: ['exp', 'jti', 'aud', 'iss', 'sub'],
        });
        payload = r.payload;
      } catch (e) {
        throw invalid('The client assertion is not valid (signature, audience, issuer, subject or time).', e);
      }
      const now = Math.floor(clock.now() / 1000);
      if ((payload.exp ?? 0) - now > MAX_LIFETIME_S)
        throw invalid('The client assertion lives too long (at most one hour).');
      if (typeof payload.jti !== 'string' || payload.jti.length < 1 || payload.jti.length > 256) {
        throw invalid('The client assertion needs a jti.');
      }
      const jti = payload.jti;
      const expiresAt = ((payload.exp ?? now) + 300) * 1000;
      return {
        async consume(resource: string) {
          const jtiHash = createHash('sha256')
            .update(`${clientId}\n${jti}\n${resource.toLowerCase()}`)
            .digest('base64url');
          // Group commit: answered once the batch that records it is durable; a second use of the
          // same jti, in the same batch or later, finds the first one's row and is refused.
          const fresh = await groupCommitFor(db).run((tx) =>
            usedAssertionStore.consume(tx, jtiHash, expiresAt),
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
