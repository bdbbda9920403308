import type { Queryable } from '../port.js';
import { type ObjectRecord, type ObjectRow, objectStore } from './object-store.js';

/** A secret version joined with its secret's state (deleted or not). */
export interface SecretRow extends ObjectRow {
  value_sealed?: Buffer;
  content_type: string | null;
}

/** One secret version as the domain hands it out (times in epoch ms; `value` only where the caller may see it). */
export interface SecretRecord extends ObjectRecord {
  value?: string;
  contentType: string | null;
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

export type NewSecretVersion = Omit<SecretRecord, 'name' | 'value' | 'deletedAt' | 'scheduledPurgeAt'> & {
  sealed: Buffer;
};

/**
 * The SQL behind secrets (migration 0004): the shared object SQL (object-store.ts)
 * plus the writes of a version's own columns. `find(..., true)` brings the sealed value.
 */
export const secretStore = {
  ...objectStore<SecretRow>({
    objects: 'secrets',
    versions: 'secret_versions',
    columns: 'v.content_type',
    sealed: 'value_sealed',
  }),
  async insertVersion(q: Queryable, vaultId: string, nameLower: string, v: NewSecretVersion): Promise<void> {
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
};
