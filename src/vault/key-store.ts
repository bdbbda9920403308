import type { Queryable } from '../storage/port.js';
import type { KeyOp, KeyRecord, KeyType, PublicJwk } from './key-model.js';
import { type ObjectRow, objectStore } from './object-store.js';

/** A key version joined with its key's state (deleted or not). */
export interface KeyRow extends ObjectRow {
  kty: string;
  key_ops: string;
  public_jwk: string;
  private_sealed?: Buffer;
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

export type NewKeyVersion = Omit<KeyRecord, 'name' | 'deletedAt' | 'scheduledPurgeAt'> & { sealed: Buffer };

/**
 * The SQL behind keys (migration 0007): the shared object SQL (object-store.ts;
 * a purge takes the rotation policy too), the writes of a version's own
 * columns, and rotation policies. `find(..., true)` brings the sealed private key.
 */
export const keyStore = {
  ...objectStore<KeyRow>({
    objects: 'keys',
    versions: 'key_versions',
    columns: 'v.kty, v.key_ops, v.public_jwk',
    sealed: 'private_sealed',
    dependents: ['key_rotation_policies'],
  }),
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
