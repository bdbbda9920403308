import { generateSecret, type SecretHasher } from '../crypto/hashing.js';
import type { Clock } from '../lib/clock.js';
import { newGuid } from '../lib/ids.js';
import { type RefreshTokenRecord, refreshTokenStore } from '../storage/authority/refresh-token-store.js';
import type { Database } from '../storage/port.js';

export type { RefreshTokenRecord } from '../storage/authority/refresh-token-store.js';

const REFRESH_TOKEN_DAYS = 90;
/** How long a spent refresh token is remembered, so that its replay revokes its family. */
const SPENT_REFRESH_TOKEN_MS = 14 * 86_400_000;

/**
 * Refresh tokens (RFC 6749 §6 with RFC 9700 §4.14.2): random, stored only as an HMAC, in
 * families that share a sign-in time. Redeeming one spends it; presenting a spent one is a
 * replay, and the caller revokes its family.
 */
export function createRefreshTokens(deps: { db: Database; clock: Clock; hasher: SecretHasher }) {
  const { db, clock, hasher } = deps;
  return {
    /**
     * A refresh token: a new family (a sign-in at `authTime`), or the next token of `family` (a
     * rotation keeps the family's sign-in time, so revoking sign-ins before a time reaches it).
     */
    async issue(
      tenantId: string,
      principalId: string,
      clientId: string,
      scope: string,
      family: { id?: string; authTime: number },
    ): Promise<{ token: string; id: string }> {
      const token = generateSecret('lkr~', 32);
      const now = clock.now();
      const id = newGuid();
      await refreshTokenStore.insert(db, {
        id,
        tenantId,
        principalId,
        clientId,
        tokenHash: hasher.hash(token),
        scope,
        expiresAt: now + REFRESH_TOKEN_DAYS * 86_400_000,
        createdAt: now,
        familyId: family.id ?? id,
        authTime: family.authTime,
      });
      return { token, id };
    },
    /** The tenant's token with this value, spent or not, expired or not. */
    find(tenantId: string, token: string): Promise<RefreshTokenRecord | undefined> {
      return refreshTokenStore.findByHash(db, tenantId, hasher.hash(token));
    },
    /** Spends the token (kept 14 days at most, to recognise a replay); false if it was spent already. */
    consume(id: string): Promise<boolean> {
      const now = clock.now();
      return refreshTokenStore.consume(db, id, now, now + SPENT_REFRESH_TOKEN_MS);
    },
    /** Revokes every refresh token of the family of the token `id` (a replay, a replayed code). */
    revokeFamilyOf(id: string): Promise<void> {
      return refreshTokenStore.destroyFamilyOf(db, id);
    },
    /** Deletes expired refresh tokens (spent ones expire 14 days after use, or sooner). */
    prune(): Promise<number> {
      return refreshTokenStore.prune(db, clock.now());
    },
  };
}
export type RefreshTokens = ReturnType<typeof createRefreshTokens>;
