import type { NewVersion, ObjectRecord, ObjectRow } from './object-store.js';
import { attributesFromRow, objectStore } from './object-store.js';

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
  ...attributesFromRow(r),
});

export type NewSecretVersion = NewVersion<Omit<SecretRecord, 'value'>>;

/**
 * The SQL behind secrets (migration 0004): the shared object SQL (object-store.ts)
 * over the secret tables, whose own version column is the content type.
 * `find(..., true)` brings the sealed value.
 */
export const secretStore = objectStore<SecretRow, SecretRecord>({
  objects: 'secrets',
  versions: 'secret_versions',
  columns: [{ name: 'content_type', value: (r) => r.contentType, updatable: true }],
  sealed: 'value_sealed',
});
