import type { Queryable } from '../storage/port.js';

/** A secret version joined with its secret's state (deleted or not). */
export interface SecretRow {
  name: string;
  version: string;
  current_version: string;
  value_sealed?: Buffer;
  content_type: string | null;
  tags: string | null;
  enabled: number;
  nbf: number | null;
  exp: number | null;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
  scheduled_purge_at: number | null;
}

/** One secret version as the domain hands it out (times in epoch ms; `value` only where the caller may see it). */
export interface SecretRecord {
  name: string;
  version: string;
  value?: string;
  contentType: string | null;
  tags: Record<string, string> | null;
  enabled: boolean;
  nbf: number | null;
  exp: number | null;
  created: number;
  updated: number;
  deletedAt: number | null;
  scheduledPurgeAt: number | null;
}

export const recordFromRow = (r: SecretRow): SecretRecord => ({
  name: r.name,
  version: r.version,
  contentType: r.content_type,
  tags: r.tags ? (JSON.parse(r.tags) as Record<string, string>) : null,
  enabled: Number(r.enabled) === 1,
  nbf: r.nbf === null ? null : Number(r.nbf),
  exp: r.exp === null ? null : Number(r.exp),
  created: Number(r.created_at),
  updated: Number(r.updated_at),
  deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
  scheduledPurgeAt: r.scheduled_purge_at === null ? null : Number(r.scheduled_purge_at),
});

const COLS = `s.name, s.current_version, s.deleted_at, s.scheduled_purge_at, v.version, v.content_type, v.tags,
  v.enabled, v.nbf, v.exp, v.created_at, v.updated_at`;
const JOIN =
  'FROM secrets s JOIN secret_versions v ON v.vault_id = s.vault_id AND v.name_lower = s.name_lower';

/** The SQL behind secrets: every lookup is a primary-key or index range read (see migration 0004). */
export const secretStore = {
  /** The latest version (or a given one), with its sealed value, and whether the secret is deleted. */
  async find(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    version?: string,
  ): Promise<SecretRow | undefined> {
    return version === undefined
      ? q.get<SecretRow>(
          `SELECT ${COLS}, v.value_sealed ${JOIN} AND v.version = s.current_version WHERE s.vault_id = $1 AND s.name_lower = $2`,
          [vaultId, nameLower],
        )
      : q.get<SecretRow>(
          `SELECT ${COLS}, v.value_sealed ${JOIN} WHERE s.vault_id = $1 AND s.name_lower = $2 AND v.version = $3`,
          [vaultId, nameLower, version],
        );
  },
  /** One page of secrets (latest versions) after `after` in name order; `limit + 1` rows tell if there is more. */
  async page(
    q: Queryable,
    vaultId: string,
    deleted: boolean,
    after: string,
    limit: number,
  ): Promise<SecretRow[]> {
    return q.all<SecretRow>(
      `SELECT ${COLS} ${JOIN} AND v.version = s.current_version
       WHERE s.vault_id = $1 AND s.deleted_at IS ${deleted ? 'NOT NULL' : 'NULL'} AND s.name_lower > $2
       ORDER BY s.name_lower LIMIT $3`,
      [vaultId, after, limit],
    );
  },
  /** One page of a secret's versions in creation order after (created, version). */
  async versions(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    after: { created: number; version: string } | undefined,
    limit: number,
  ): Promise<SecretRow[]> {
    const a = after ?? { created: -1, version: '' };
    return q.all<SecretRow>(
      `SELECT ${COLS} ${JOIN}
       WHERE s.vault_id = $1 AND s.name_lower = $2 AND s.deleted_at IS NULL
         AND (v.created_at > $3 OR (v.created_at = $3 AND v.version > $4))
       ORDER BY v.created_at, v.version LIMIT $5`,
      [vaultId, nameLower, a.created, a.version, limit],
    );
  },
  /** Every version with its sealed value (backup). */
  async allVersions(q: Queryable, vaultId: string, nameLower: string): Promise<SecretRow[]> {
    return q.all<SecretRow>(
      `SELECT ${COLS}, v.value_sealed ${JOIN} WHERE s.vault_id = $1 AND s.name_lower = $2 ORDER BY v.created_at, v.version`,
      [vaultId, nameLower],
    );
  },
  /**
   * Points the secret at a new current version, creating it if needed. Returns
   * the stored name, or undefined when the name is held by a deleted secret.
   */
  async upsertSecret(
    q: Queryable,
    vaultId: string,
    name: string,
    version: string,
    now: number,
  ): Promise<string | undefined> {
    const r = await q.get<{ name: string }>(
      `INSERT INTO secrets (vault_id, name_lower, name, current_version, deleted_at, scheduled_purge_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, NULL, NULL, $5, $5)
       ON CONFLICT (vault_id, name_lower) DO UPDATE SET current_version = excluded.current_version, updated_at = excluded.updated_at
       WHERE secrets.deleted_at IS NULL
       RETURNING name`,
      [vaultId, name.toLowerCase(), name, version, now],
    );
    return r?.name;
  },
  async insertVersion(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    v: Omit<SecretRecord, 'name' | 'value' | 'deletedAt' | 'scheduledPurgeAt'> & { sealed: Buffer },
  ): Promise<void> {
    await q.run(
      `INSERT INTO secret_versions (vault_id, name_lower, version, value_sealed, content_type, tags, enabled, nbf, exp, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        vaultId,
        nameLower,
        v.version,
        v.sealed,
        v.contentType,
        v.tags ? JSON.stringify(v.tags) : null,
        v.enabled ? 1 : 0,
        v.nbf,
        v.exp,
        v.created,
        v.updated,
      ],
    );
  },
  async updateVersion(q: Queryable, vaultId: string, nameLower: string, r: SecretRecord): Promise<void> {
    await q.run(
      `UPDATE secret_versions SET content_type = $4, tags = $5, enabled = $6, nbf = $7, exp = $8, updated_at = $9
       WHERE vault_id = $1 AND name_lower = $2 AND version = $3`,
      [
        vaultId,
        nameLower,
        r.version,
        r.contentType,
        r.tags ? JSON.stringify(r.tags) : null,
        r.enabled ? 1 : 0,
        r.nbf,
        r.exp,
        r.updated,
      ],
    );
  },
  async setDeleted(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    deletedAt: number | null,
    purgeAt: number | null,
  ): Promise<number> {
    const r = await q.run(
      'UPDATE secrets SET deleted_at = $3, scheduled_purge_at = $4 WHERE vault_id = $1 AND name_lower = $2',
      [vaultId, nameLower, deletedAt, purgeAt],
    );
    return r.changes;
  },
  async purge(q: Queryable, vaultId: string, nameLower: string): Promise<void> {
    await q.run('DELETE FROM secret_versions WHERE vault_id = $1 AND name_lower = $2', [vaultId, nameLower]);
    await q.run('DELETE FROM secrets WHERE vault_id = $1 AND name_lower = $2', [vaultId, nameLower]);
  },
  async exists(q: Queryable, vaultId: string, nameLower: string): Promise<boolean> {
    return !!(await q.get('SELECT 1 AS x FROM secrets WHERE vault_id = $1 AND name_lower = $2', [
      vaultId,
      nameLower,
    ]));
  },
};
