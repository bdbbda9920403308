import type { NewVersion, ObjectRecord, ObjectRow, SealedVersion } from './object-store.js';
import { objectStore } from './object-store.js';

/** A secret version joined with its secret's state (deleted or not). */
interface SecretRow extends ObjectRow {
  value_sealed?: Buffer;
  content_type: string | null;
}

/** One secret version as the domain hands it out (times in epoch ms; `value` only where the caller may see it). */
export interface SecretRecord extends ObjectRecord {
  value?: string;
  contentType: string | null;
}

/** A secret version with its sealed value, as the store reads it (what the latest-version cache holds). */
export type SealedSecret = SealedVersion<SecretRecord>;

export type NewSecretVersion = NewVersion<Omit<SecretRecord, 'value'>>;

/**
 * The SQL behind secrets (migration 0004): the shared object SQL (object-store.ts)
 * over the secret tables, whose own version column is the content type.
 * `findSealed` brings the sealed value.
 */
export const secretStore = objectStore<SecretRow, SecretRecord, NewSecretVersion>({
  objects: 'secrets',
  versions: 'secret_versions',
  columns: [{ name: 'content_type', value: (r) => r.contentType, updatable: true }],
  fromRow: (r) => ({ contentType: r.content_type }),
  sealed: 'value_sealed',
  // A certificate's key and secret (same name) are managed by it: Azure's `managed: true`.
  managedBy: 'certificates',
});
