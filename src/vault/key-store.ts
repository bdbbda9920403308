import type { Queryable } from '../storage/port.js';
import type { KeyOp, KeyRecord, KeyType, PublicJwk } from './key-model.js';

/** A key version joined with its key's state (deleted or not). */
export interface KeyRow {
  name: string;
  version: string;
  current_version: string;
  kty: string;
  key_ops: string;
  public_jwk: string;
  private_sealed?: Buffer;
  tags: string | null;
  enabled: number;
  nbf: number | null;
  exp: number | null;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
  scheduled_purge_at: number | null;
}

export const keyFromRow = (r: KeyRow): KeyRecord => ({
  name: r.name,
  version: r.version,
  kty: r.kty as KeyType,
  keyOps: JSON.parse(r.key_ops) as KeyOp[],
  jwk: JSON.parse(r.public_jwk) as PublicJwk,
  tags: r.tags ? (JSON.parse(r.tags) as Record<string, string>) : null,
  enabled: Number(r.enabled) === 1,
  nbf: r.nbf === null ? null : Number(r.nbf),
  exp: r.exp === null ? null : Number(r.exp),
  created: Number(r.created_at),
  updated: Number(r.updated_at),
  deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
  scheduledPurgeAt: r.scheduled_purge_at === null ? null : Number(r.scheduled_purge_at),
});

const COLS = `k.name, k.current_version, k.deleted_at, k.scheduled_purge_at, v.version, v.kty, v.key_ops, v.public_jwk,
  v.tags, v.enabled, v.nbf, v.exp, v.created_at, v.updated_at`;
const JOIN = 'FROM keys k JOIN key_versions v ON v.vault_id = k.vault_id AND v.name_lower = k.name_lower';

export type NewKeyVersion = Omit<KeyRecord, 'name' | 'deletedAt' | 'scheduledPurgeAt'> & { sealed: Buffer };

/** The SQL behind keys (migration 0007): primary-key and index range reads only. */
export const keyStore = {
  /** The latest version (or a given one), with its sealed private key when asked. */
  async find(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    version?: string,
    withPrivate = false,
  ): Promise<KeyRow | undefined> {
    const cols = withPrivate ? `${COLS}, v.private_sealed` : COLS;
    return version === undefined
      ? q.get<KeyRow>(
          `SELECT ${cols} ${JOIN} AND v.version = k.current_version WHERE k.vault_id = $1 AND k.name_lower = $2`,
          [vaultId, nameLower],
        )
      : q.get<KeyRow>(
          `SELECT ${cols} ${JOIN} WHERE k.vault_id = $1 AND k.name_lower = $2 AND v.version = $3`,
          [vaultId, nameLower, version],
        );
  },
  async page(
    q: Queryable,
    vaultId: string,
    deleted: boolean,
    after: string,
    limit: number,
  ): Promise<KeyRow[]> {
    return q.all<KeyRow>(
      `SELECT ${COLS} ${JOIN} AND v.version = k.current_version
       WHERE k.vault_id = $1 AND k.deleted_at IS ${deleted ? 'NOT NULL' : 'NULL'} AND k.name_lower > $2
       ORDER BY k.name_lower LIMIT $3`,
      [vaultId, after, limit],
    );
  },
  async versions(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    after: { created: number; version: string } | undefined,
    limit: number,
  ): Promise<KeyRow[]> {
    const a = after ?? { created: -1, version: '' };
    return q.all<KeyRow>(
      `SELECT ${COLS} ${JOIN}
       WHERE k.vault_id = $1 AND k.name_lower = $2 AND k.deleted_at IS NULL
         AND (v.created_at > $3 OR (v.created_at = $3 AND v.version > $4))
       ORDER BY v.created_at, v.version LIMIT $5`,
      [vaultId, nameLower, a.created, a.version, limit],
    );
  },
  async allVersions(q: Queryable, vaultId: string, nameLower: string): Promise<KeyRow[]> {
    return q.all<KeyRow>(
      `SELECT ${COLS}, v.private_sealed ${JOIN} WHERE k.vault_id = $1 AND k.name_lower = $2 ORDER BY v.created_at, v.version`,
      [vaultId, nameLower],
    );
  },
  /** Points the key at a new current version, creating it; undefined when the name is held by a deleted key. */
  async upsertKey(
    q: Queryable,
    vaultId: string,
    name: string,
    version: string,
    now: number,
  ): Promise<string | undefined> {
    const r = await q.get<{ name: string }>(
      `INSERT INTO keys (vault_id, name_lower, name, current_version, deleted_at, scheduled_purge_at, notified_version, created_at, updated_at)
       VALUES ($1, $2, $3, $4, NULL, NULL, NULL, $5, $5)
       ON CONFLICT (vault_id, name_lower) DO UPDATE SET current_version = excluded.current_version, updated_at = excluded.updated_at
       WHERE keys.deleted_at IS NULL
       RETURNING name`,
      [vaultId, name.toLowerCase(), name, version, now],
    );
    return r?.name;
  },
  async insertVersion(q: Queryable, vaultId: string, nameLower: string, v: NewKeyVersion): Promise<void> {
    await q.run(
      `INSERT INTO key_versions (vault_id, name_lower, version, kty, key_ops, public_jwk, private_sealed, tags, enabled, nbf, exp, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        vaultId,
        nameLower,
        v.version,
        v.kty,
        JSON.stringify(v.keyOps),
        JSON.stringify(v.jwk),
        v.sealed,
        v.tags ? JSON.stringify(v.tags) : null,
        v.enabled ? 1 : 0,
        v.nbf,
        v.exp,
        v.created,
        v.updated,
      ],
    );
  },
  async updateVersion(q: Queryable, vaultId: string, nameLower: string, r: KeyRecord): Promise<void> {
    await q.run(
      `UPDATE key_versions SET key_ops = $4, tags = $5, enabled = $6, nbf = $7, exp = $8, updated_at = $9
       WHERE vault_id = $1 AND name_lower = $2 AND version = $3`,
      [
        vaultId,
        nameLower,
        r.version,
        JSON.stringify(r.keyOps),
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
  ) {
    await q.run(
      'UPDATE keys SET deleted_at = $3, scheduled_purge_at = $4 WHERE vault_id = $1 AND name_lower = $2',
      [vaultId, nameLower, deletedAt, purgeAt],
    );
  },
  async purge(q: Queryable, vaultId: string, nameLower: string): Promise<void> {
    await q.run('DELETE FROM key_rotation_policies WHERE vault_id = $1 AND name_lower = $2', [
      vaultId,
      nameLower,
    ]);
    await q.run('DELETE FROM key_versions WHERE vault_id = $1 AND name_lower = $2', [vaultId, nameLower]);
    await q.run('DELETE FROM keys WHERE vault_id = $1 AND name_lower = $2', [vaultId, nameLower]);
  },
  async exists(q: Queryable, vaultId: string, nameLower: string): Promise<boolean> {
    return !!(await q.get('SELECT 1 AS x FROM keys WHERE vault_id = $1 AND name_lower = $2', [
      vaultId,
      nameLower,
    ]));
  },
  async getPolicy(
    q: Queryable,
    vaultId: string,
    nameLower: string,
  ): Promise<{ policy: string; created_at: number; updated_at: number } | undefined> {
    return q.get(
      'SELECT policy, created_at, updated_at FROM key_rotation_policies WHERE vault_id = $1 AND name_lower = $2',
      [vaultId, nameLower],
    );
  },
  async putPolicy(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    policy: string,
    now: number,
    created = now,
  ) {
    await q.run(
      `INSERT INTO key_rotation_policies (vault_id, name_lower, policy, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (vault_id, name_lower) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`,
      [vaultId, nameLower, policy, created, now],
    );
  },
  async setNotified(q: Queryable, vaultId: string, nameLower: string, version: string): Promise<void> {
    await q.run('UPDATE keys SET notified_version = $3 WHERE vault_id = $1 AND name_lower = $2', [
      vaultId,
      nameLower,
      version,
    ]);
  },
};
