import type { Queryable } from '../port.js';

/** An authorization code as stored: only its hash is kept (times in epoch ms). */
export interface AuthorizationCodeRecord {
  id: string;
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
  expiresAt: number;
}

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
}

/**
 * The SQL behind authorization codes (migration 0008), in the shape of oidc-provider's adapter:
 * `insert` (upsert), `findByHash` (find), `consume` (spend once), `prune` (destroy the expired).
 */
export const authorizationCodeStore = {
  async insert(
    q: Queryable,
    c: AuthorizationCodeRecord & { codeHash: Buffer; createdAt: number },
  ): Promise<void> {
    await q.run(
      `INSERT INTO authorization_codes (id, code_hash, tenant_id, principal_id, client_id, redirect_uri, code_challenge,
         scope, nonce, auth_time, expires_at, used_at, refresh_token_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12)`,
      [
        c.id,
        c.codeHash,
        c.tenantId,
        c.principalId,
        c.clientId,
        c.redirectUri,
        c.codeChallenge,
        c.scope,
        c.nonce,
        c.authTime,
        c.expiresAt,
        c.createdAt,
      ],
    );
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  /** The code with this hash in the tenant, spent or not, expired or not. */
  async findByHash(
    q: Queryable,
    tenantId: string,
    codeHash: Buffer,
  ): Promise<AuthorizationCodeRecord | undefined> {
    const r = await q.get<Row>(
      `SELECT id, tenant_id, principal_id, client_id, redirect_uri, code_challenge, scope, nonce, auth_time,
         expires_at, used_at, refresh_token_id FROM authorization_codes WHERE code_hash = $1 AND tenant_id = $2`,
      [codeHash, tenantId],
    );
    return (
      r && {
        id: r.id,
        tenantId: r.tenant_id,
        principalId: r.principal_id,
        clientId: r.client_id,
        redirectUri: r.redirect_uri,
        codeChallenge: r.code_challenge,
        scope: r.scope,
        nonce: r.nonce,
        authTime: Number(r.auth_time),
        expiresAt: Number(r.expires_at),
      }
    );
  },
  /** Spends the code at `now`; false when it was spent already (of two concurrent redemptions one wins). */
  async consume(q: Queryable, id: string, now: number): Promise<boolean> {
    const r = await q.run('UPDATE authorization_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL', [
      now,
      id,
    ]);
    return r.changes > 0;
  },
  /** The refresh token the code's first redemption issued, if any. */
  async refreshTokenOf(q: Queryable, id: string): Promise<string | null> {
    const r = await q.get<{ refresh_token_id: string | null }>(
      'SELECT refresh_token_id FROM authorization_codes WHERE id = $1',
      [id],
    );
    return r?.refresh_token_id ?? null;
  },
  async linkRefreshToken(q: Queryable, id: string, refreshTokenId: string): Promise<void> {
    await q.run('UPDATE authorization_codes SET refresh_token_id = $1 WHERE id = $2', [refreshTokenId, id]);
  },
  /** Deletes codes that expired before `before`; returns how many. */
  async prune(q: Queryable, before: number): Promise<number> {
    return (await q.run('DELETE FROM authorization_codes WHERE expires_at < $1', [before])).changes;
  },
};
