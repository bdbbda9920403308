import { createHash, timingSafeEqual } from 'node:crypto';
import { generateSecret, type SecretHasher } from '../crypto/hashing.js';
import type { Clock } from '../lib/clock.js';
import { newGuid } from '../lib/ids.js';
import type { Database } from '../storage/port.js';

/** An authorization code lives this long: long enough for a redirect and one token request. */
export const CODE_TTL_MS = 120_000;
/** Spent and expired codes are kept this much longer, so a late replay is still recognised. */
const KEEP_AFTER_EXPIRY_MS = 15 * 60_000;

/** What an authorization code stands for: everything its token request must repeat or will receive. */
export interface AuthorizationGrant {
  tenantId: string;
  principalId: string;
  clientId: string;
  redirectUri: string;
  /** PKCE S256 challenge: base64url(SHA-256(code_verifier)). */
  codeChallenge: string;
  scope: string;
  nonce: string | null;
  /** When the user authenticated (epoch ms). */
  authTime: number;
}

export type Redemption =
  | { ok: true; id: string; grant: AuthorizationGrant }
  | { ok: false; reason: 'unknown' | 'expired' }
  | { ok: false; reason: 'reused'; refreshTokenId: string | null };

interface Row {
  id: string;
  tenant_id: string;
  principal_id: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  scope: string;
  nonce: string | null;
  auth_time: number;
  expires_at: number;
  used_at: number | null;
  refresh_token_id: string | null;
}

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
      await db.run(
        `INSERT INTO authorization_codes (id, code_hash, tenant_id, principal_id, client_id, redirect_uri, code_challenge,
           scope, nonce, auth_time, expires_at, used_at, refresh_token_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12)`,
        [
          newGuid(),
          hasher.hash(code),
          grant.tenantId,
          grant.principalId,
          grant.clientId,
          grant.redirectUri,
          grant.codeChallenge,
          grant.scope,
          grant.nonce,
          grant.authTime,
          now + CODE_TTL_MS,
          now,
        ],
      );
      return code;
    },

    /** Spends the code (atomically: of two concurrent redemptions one wins) and returns its grant. */
    async redeem(code: string, tenantId: string): Promise<Redemption> {
      if (code.length > 200) return { ok: false, reason: 'unknown' };
      const row = await db.get<Row>(
        `SELECT id, tenant_id, principal_id, client_id, redirect_uri, code_challenge, scope, nonce, auth_time,
           expires_at, used_at, refresh_token_id FROM authorization_codes WHERE code_hash = $1 AND tenant_id = $2`,
        [hasher.hash(code), tenantId],
      );
      if (!row) return { ok: false, reason: 'unknown' };
      const now = clock.now();
      const spent = await db.run(
        'UPDATE authorization_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL',
        [now, row.id],
      );
      if (spent.changes === 0) {
        const again = await db.get<{ refresh_token_id: string | null }>(
          'SELECT refresh_token_id FROM authorization_codes WHERE id = $1',
          [row.id],
        );
        return { ok: false, reason: 'reused', refreshTokenId: again?.refresh_token_id ?? null };
      }
      if (Number(row.expires_at) <= now) return { ok: false, reason: 'expired' };
      return {
        ok: true,
        id: row.id,
        grant: {
          tenantId: row.tenant_id,
          principalId: row.principal_id,
          clientId: row.client_id,
          redirectUri: row.redirect_uri,
          codeChallenge: row.code_challenge,
          scope: row.scope,
          nonce: row.nonce,
          authTime: Number(row.auth_time),
        },
      };
    },

    /** Remembers the refresh token a code's redemption issued (revoked if the code is replayed). */
    async linkRefreshToken(codeId: string, refreshTokenId: string): Promise<void> {
      await db.run('UPDATE authorization_codes SET refresh_token_id = $1 WHERE id = $2', [
        refreshTokenId,
        codeId,
      ]);
    },

    /** Forgets codes well past their expiry. */
    async prune(): Promise<number> {
      const r = await db.run('DELETE FROM authorization_codes WHERE expires_at < $1', [
        clock.now() - KEEP_AFTER_EXPIRY_MS,
      ]);
      return r.changes;
    },
  };
}
export type AuthorizationCodes = ReturnType<typeof createAuthorizationCodes>;
