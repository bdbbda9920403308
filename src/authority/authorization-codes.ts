import { createHash, timingSafeEqual } from 'node:crypto';
import { generateSecret, type SecretHasher } from '../crypto/hashing.js';
import type { Clock } from '../lib/clock.js';
import { newGuid } from '../lib/ids.js';
import {
  type AuthorizationCodeRecord,
  authorizationCodeStore,
} from '../storage/authority/authorization-code-store.js';
import type { Database } from '../storage/port.js';

/** An authorization code lives this long: long enough for a redirect and one token request. */
export const CODE_TTL_MS = 120_000;
/** Spent and expired codes are kept this much longer, so a late replay is still recognised. */
const KEEP_AFTER_EXPIRY_MS = 15 * 60_000;

/** What an authorization code stands for: everything its token request must repeat or will receive. */
export type AuthorizationGrant = Omit<AuthorizationCodeRecord, 'id' | 'expiresAt'>;

export type Redemption =
  | { ok: true; id: string; grant: AuthorizationGrant }
  | { ok: false; reason: 'unknown' | 'expired' }
  | { ok: false; reason: 'reused'; refreshTokenId: string | null };

/** RFC 7636 §4.1: 43–128 unreserved characters. */
export const CODE_VERIFIER_RE = /^[A-Za-z0-9._~-]{43,128}$/;
/** An S256 challenge is a base64url SHA-256: 43 characters. */
export const S256_CHALLENGE_RE = /^[A-Za-z0-9_-]{43}$/;

/** RFC 7636 §4.6, compared in constant time. */
export function pkceMatches(verifier: string, challenge: string): boolean {
  const actual = createHash('sha256').update(verifier, 'ascii').digest();
  const expected = Buffer.from(challenge, 'base64url');
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

/**
 * Authorization codes (RFC 6749 §4.1): random, single use, short lived, stored
 * only as an HMAC. Redeeming spends a code whatever happens next, so a code
 * presented with a wrong verifier cannot be retried; a second redemption is
 * reported as a replay with the refresh token the first one issued.
 */
export function createAuthorizationCodes(deps: { db: Database; clock: Clock; hasher: SecretHasher }) {
  const { db, clock, hasher } = deps;
  return {
    async issue(grant: AuthorizationGrant): Promise<string> {
      const code = generateSecret('lkc~', 32);
      const now = clock.now();
      await authorizationCodeStore.insert(db, {
        ...grant,
        id: newGuid(),
        codeHash: hasher.hash(code),
        expiresAt: now + CODE_TTL_MS,
        createdAt: now,
      });
      return code;
    },

    /** Spends the code (atomically: of two concurrent redemptions one wins) and returns its grant. */
    async redeem(code: string, tenantId: string): Promise<Redemption> {
      if (code.length > 200) return { ok: false, reason: 'unknown' };
      const row = await authorizationCodeStore.findByHash(db, tenantId, hasher.hash(code));
      if (!row) return { ok: false, reason: 'unknown' };
      const now = clock.now();
      if (!(await authorizationCodeStore.consume(db, row.id, now))) {
        const refreshTokenId = await authorizationCodeStore.refreshTokenOf(db, row.id);
        return { ok: false, reason: 'reused', refreshTokenId };
      }
      if (row.expiresAt <= now) return { ok: false, reason: 'expired' };
      return {
        ok: true,
        id: row.id,
        grant: {
          tenantId: row.tenantId,
          principalId: row.principalId,
          clientId: row.clientId,
          redirectUri: row.redirectUri,
          codeChallenge: row.codeChallenge,
          scope: row.scope,
          nonce: row.nonce,
          authTime: row.authTime,
        },
      };
    },

    /** Remembers the refresh token a code's redemption issued (revoked if the code is replayed). */
    async linkRefreshToken(codeId: string, refreshTokenId: string): Promise<void> {
      await authorizationCodeStore.linkRefreshToken(db, codeId, refreshTokenId);
    },

    /** Forgets codes well past their expiry. */
    async prune(): Promise<number> {
      return authorizationCodeStore.prune(db, clock.now() - KEEP_AFTER_EXPIRY_MS);
    },
  };
}
export type AuthorizationCodes = ReturnType<typeof createAuthorizationCodes>;
