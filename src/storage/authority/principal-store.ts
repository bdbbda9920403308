import type { Queryable } from '../port.js';

export type PrincipalKind = 'user' | 'servicePrincipal' | 'managedIdentity';

/** A directory object: a user, an application's service principal or a managed identity. */
export interface Principal {
  id: string;
  tenantId: string;
  kind: PrincipalKind;
  appId: string | null;
  displayName: string;
  userName: string | null;
  identifierUri: string | null;
  enabled: boolean;
  publicClient: boolean;
  /** For managed identities: the ARM id of the resource (system-assigned) or of the identity (user-assigned). */
  resourceId: string | null;
  createdAt: number;
  updatedAt: number;
  /** Sign-ins before this time (ms) redeem nothing: refresh tokens, codes (see `revokeSignInSessions`). */
  sessionsValidFrom: number;
}

interface PrincipalRow {
  id: string;
  tenant_id: string;
  kind: PrincipalKind;
  app_id: string | null;
  display_name: string;
  user_name: string | null;
  password_hash: string | null;
  identifier_uri: string | null;
  enabled: number;
  public_client: number;
  resource_id: string | null;
  created_at: number;
  updated_at: number;
  sessions_valid_from: number;
}

const fromRow = (r: PrincipalRow): Principal => ({
  id: r.id,
  tenantId: r.tenant_id,
  kind: r.kind,
  appId: r.app_id,
  displayName: r.display_name,
  userName: r.user_name,
  identifierUri: r.identifier_uri,
  enabled: Number(r.enabled) === 1,
  publicClient: Number(r.public_client) === 1,
  resourceId: r.resource_id,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  sessionsValidFrom: Number(r.sessions_valid_from),
});

/**
 * The SQL behind principals (migrations 0001, 0011). Ids, app ids and user names are passed in
 * lower case; the caller validates them. Updates and deletes return whether a row was there.
 */
export const principalStore = {
  async findById(q: Queryable, tenantId: string, id: string): Promise<Principal | undefined> {
    const r = await q.get<PrincipalRow>('SELECT * FROM principals WHERE id = $1 AND tenant_id = $2', [
      id,
      tenantId,
    ]);
    return r && fromRow(r);
  },
  /** Any tenant: for token verification, which then checks the token's tenant matches. */
  async findByIdInAnyTenant(q: Queryable, id: string): Promise<Principal | undefined> {
    const r = await q.get<PrincipalRow>('SELECT * FROM principals WHERE id = $1', [id]);
    return r && fromRow(r);
  },
  async findByAppId(q: Queryable, tenantId: string, appId: string): Promise<Principal | undefined> {
    const r = await q.get<PrincipalRow>('SELECT * FROM principals WHERE tenant_id = $1 AND app_id = $2', [
      tenantId,
      appId,
    ]);
    return r && fromRow(r);
  },
  async findByIdentifierUri(q: Queryable, tenantId: string, uri: string): Promise<Principal | undefined> {
    const r = await q.get<PrincipalRow>(
      'SELECT * FROM principals WHERE tenant_id = $1 AND identifier_uri = $2',
      [tenantId, uri],
    );
    return r && fromRow(r);
  },
  /** A user by name, with the password hash the password grant checks. */
  async findByUserName(
    q: Queryable,
    tenantId: string,
    userName: string,
  ): Promise<{ principal: Principal; passwordHash: string | null } | undefined> {
    const r = await q.get<PrincipalRow>('SELECT * FROM principals WHERE tenant_id = $1 AND user_name = $2', [
      tenantId,
      userName,
    ]);
    return r && { principal: fromRow(r), passwordHash: r.password_hash };
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  async identifierUriTaken(q: Queryable, tenantId: string, uri: string): Promise<boolean> {
    return (
      (await q.get('SELECT id FROM principals WHERE tenant_id = $1 AND identifier_uri = $2', [
        tenantId,
        uri,
      ])) !== undefined
    );
  },
  async userNameTaken(q: Queryable, tenantId: string, userName: string): Promise<boolean> {
    return (
      (await q.get('SELECT id FROM principals WHERE tenant_id = $1 AND user_name = $2', [
        tenantId,
        userName,
      ])) !== undefined
    );
  },
  /** A tenant's principals (of one kind, if given), by display name then id. */
  async list(q: Queryable, tenantId: string, kind?: PrincipalKind): Promise<Principal[]> {
    const rows = kind
      ? await q.all<PrincipalRow>(
          'SELECT * FROM principals WHERE tenant_id = $1 AND kind = $2 ORDER BY display_name, id',
          [tenantId, kind],
        )
      : await q.all<PrincipalRow>('SELECT * FROM principals WHERE tenant_id = $1 ORDER BY display_name, id', [
          tenantId,
        ]);
    return rows.map(fromRow);
  },
  async insert(q: Queryable, p: Principal, passwordHash: string | null): Promise<void> {
    await q.run(
      `INSERT INTO principals (id, tenant_id, kind, app_id, display_name, user_name, password_hash, identifier_uri,
         enabled, public_client, resource_id, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        p.id,
        p.tenantId,
        p.kind,
        p.appId,
        p.displayName,
        p.userName,
        passwordHash,
        p.identifierUri,
        p.enabled ? 1 : 0,
        p.publicClient ? 1 : 0,
        p.resourceId,
        p.createdAt,
        p.updatedAt,
      ],
    );
  },
  /**
   * Holds the principal's row in `q`'s transaction if no revocation of its sign-ins came after
   * `since` (an `UPDATE` that changes nothing but takes the row lock: a revocation running at the
   * same time goes before or after, never between the check and what the caller writes next).
   */
  async holdIfSignInsValidSince(q: Queryable, tenantId: string, id: string, since: number): Promise<boolean> {
    const r = await q.run(
      'UPDATE principals SET sessions_valid_from = sessions_valid_from WHERE id = $1 AND tenant_id = $2 AND sessions_valid_from <= $3',
      [id, tenantId, since],
    );
    return r.changes > 0;
  },
  /** Moves `sessions_valid_from` forward to `at` (never back). */
  async invalidateSignInsBefore(q: Queryable, tenantId: string, id: string, at: number): Promise<void> {
    await q.run(
      'UPDATE principals SET sessions_valid_from = CASE WHEN sessions_valid_from < $1 THEN $1 ELSE sessions_valid_from END WHERE id = $2 AND tenant_id = $3',
      [at, id, tenantId],
    );
  },
  /** Replaces a user's password hash; false when no such user. */
  async setPasswordHash(
    q: Queryable,
    tenantId: string,
    id: string,
    passwordHash: string,
    updatedAt: number,
  ): Promise<boolean> {
    const r = await q.run(
      "UPDATE principals SET password_hash = $1, updated_at = $2 WHERE id = $3 AND tenant_id = $4 AND kind = 'user'",
      [passwordHash, updatedAt, id, tenantId],
    );
    return r.changes > 0;
  },
  /** False when no such principal. */
  async setEnabled(
    q: Queryable,
    tenantId: string,
    id: string,
    enabled: boolean,
    updatedAt: number,
  ): Promise<boolean> {
    const r = await q.run(
      'UPDATE principals SET enabled = $1, updated_at = $2 WHERE id = $3 AND tenant_id = $4',
      [enabled ? 1 : 0, updatedAt, id, tenantId],
    );
    return r.changes > 0;
  },
  /** False when no such principal. */
  async delete(q: Queryable, tenantId: string, id: string): Promise<boolean> {
    const r = await q.run('DELETE FROM principals WHERE id = $1 AND tenant_id = $2', [id, tenantId]);
    return r.changes > 0;
  },
};
