import type { Queryable } from '../port.js';

/** A refresh token as stored: only its hash is kept (times in epoch ms). */
export interface RefreshTokenRecord {
  id: string;
  principalId: string;
  clientId: string;
  scope: string;
  expiresAt: number;
  /** The id of the family's first token (a token from before migration 0011 is its own family). */
  familyId: string;
  /** When the family's user signed in (for a token from before migration 0011: when it was issued). */
  authTime: number;
  /** Set once the token was redeemed (rotated); a second presentation is a replay. */
  usedAt: number | null;
}

export interface NewRefreshToken {
  id: string;
  tenantId: string;
  principalId: string;
  clientId: string;
  tokenHash: Buffer;
  scope: string;
  expiresAt: number;
  createdAt: number;
  familyId: string;
  authTime: number;
}

interface RefreshTokenRow {
  id: string;
  principal_id: string;
  client_id: string;
  scope: string;
  expires_at: number;
  created_at: number;
  family_id: string | null;
  auth_time: number | null;
  used_at: number | null;
}

/**
 * The SQL behind refresh tokens (migrations 0001, 0011), in the shape of oidc-provider's adapter:
 * `upsert` (insert), `find`, `consume` (spend once), `destroy` (a family, a principal's, a client's).
 */
export const refreshTokenStore = {
  async insert(q: Queryable, t: NewRefreshToken): Promise<void> {
    await q.run(
      `INSERT INTO refresh_tokens (id, tenant_id, principal_id, client_id, token_hash, scope, expires_at, created_at,
         family_id, auth_time, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)`,
      [
        t.id,
        t.tenantId,
        t.principalId,
        t.clientId,
        t.tokenHash,
        t.scope,
        t.expiresAt,
        t.createdAt,
        t.familyId,
        t.authTime,
      ],
    );
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  /** The token with this hash in the tenant, spent or not, expired or not. */
  async findByHash(
    q: Queryable,
    tenantId: string,
    tokenHash: Buffer,
  ): Promise<RefreshTokenRecord | undefined> {
    const r = await q.get<RefreshTokenRow>(
      'SELECT id, principal_id, client_id, scope, expires_at, created_at, family_id, auth_time, used_at FROM refresh_tokens WHERE token_hash = $1 AND tenant_id = $2',
      [tokenHash, tenantId],
    );
    return (
      r && {
        id: r.id,
        principalId: r.principal_id,
        clientId: r.client_id,
        scope: r.scope,
        expiresAt: Number(r.expires_at),
        familyId: r.family_id ?? r.id,
        authTime: Number(r.auth_time ?? r.created_at),
        usedAt: r.used_at === null ? null : Number(r.used_at),
      }
    );
  },
  /**
   * Spends the token at `now`, keeping it (to recognise a replay) until `keepUntil` at most.
   * False when it was spent already: of two concurrent uses, one wins.
   */
  async consume(q: Queryable, id: string, now: number, keepUntil: number): Promise<boolean> {
    const r = await q.run(
      'UPDATE refresh_tokens SET used_at = $1, expires_at = CASE WHEN expires_at < $2 THEN expires_at ELSE $2 END WHERE id = $3 AND used_at IS NULL',
      [now, keepUntil, id],
    );
    return r.changes > 0;
  },
  /** Deletes every token of the family of the token `id` (and that token, whatever its family). */
  async destroyFamilyOf(q: Queryable, id: string): Promise<void> {
    const row = await q.get<{ family_id: string | null }>(
      'SELECT family_id FROM refresh_tokens WHERE id = $1',
      [id],
    );
    await q.run('DELETE FROM refresh_tokens WHERE family_id = $1 OR id = $2', [row?.family_id ?? id, id]);
  },
  /** Deletes the tokens issued to a client application of the tenant. */
  async destroyIssuedTo(q: Queryable, tenantId: string, clientId: string): Promise<void> {
    await q.run('DELETE FROM refresh_tokens WHERE tenant_id = $1 AND client_id = $2', [tenantId, clientId]);
  },
  /** Deletes the tokens that have expired by `now`; returns how many. */
  async prune(q: Queryable, now: number): Promise<number> {
    return (await q.run('DELETE FROM refresh_tokens WHERE expires_at <= $1', [now])).changes;
  },
};
