import type { Queryable } from '../port.js';
import type { NewVersion, ObjectRecord, ObjectRow } from './object-store.js';
import { documentStore, objectStore } from './object-store.js';

export type KeyType = 'RSA' | 'EC';
export type Curve = 'P-256' | 'P-384' | 'P-521' | 'P-256K';
export type KeyOp = 'encrypt' | 'decrypt' | 'sign' | 'verify' | 'wrapKey' | 'unwrapKey';

/** The public half of a key as Azure shows it (base64url fields). */
export type PublicJwk =
  | { kty: 'RSA'; n: string; e: string }
  | { kty: 'EC'; crv: Curve; x: string; y: string };

/** One key version as the domain hands it out (times in epoch ms). Never holds private material. */
export interface KeyRecord extends ObjectRecord {
  kty: KeyType;
  keyOps: KeyOp[];
  jwk: PublicJwk;
}

/** A key version joined with its key's state (deleted or not). */
interface KeyRow extends ObjectRow {
  kty: string;
  key_ops: string;
  public_jwk: string;
  private_sealed?: Buffer;
}

/** A key whose current version has a rotation policy or an expiry (the rotation job's walk). */
export interface RotationCandidate {
  vaultId: string;
  nameLower: string;
  name: string;
  currentVersion: string;
  notifiedVersion: string | null;
  /** The current version's creation and expiry (epoch ms). */
  created: number;
  exp: number | null;
  /** The policy as stored (JSON), or null for Azure's default one. */
  policy: string | null;
  tenantId: string;
  /** The vault's lower-case name. */
  vault: string;
}

interface RotationCandidateRow {
  vault_id: string;
  name_lower: string;
  name: string;
  current_version: string;
  notified_version: string | null;
  created_at: number;
  exp: number | null;
  policy: string | null;
  tenant_id: string;
  vault: string;
}

export type NewKeyVersion = NewVersion<KeyRecord>;

/**
 * The SQL behind keys (migration 0007): the shared object SQL (object-store.ts;
 * a purge takes the rotation policy too) over the key tables, and rotation
 * policies. `findSealed` brings the sealed private key.
 */
const rotationPolicies = documentStore('key_rotation_policies', 'policy');

export const keyStore = {
  ...objectStore<KeyRow, KeyRecord, NewKeyVersion>({
    objects: 'keys',
    versions: 'key_versions',
    columns: [
      { name: 'kty', value: (r) => r.kty },
      { name: 'key_ops', value: (r) => JSON.stringify(r.keyOps), updatable: true },
      { name: 'public_jwk', value: (r) => JSON.stringify(r.jwk) },
    ],
    fromRow: (r) => ({
      kty: r.kty as KeyType,
      keyOps: JSON.parse(r.key_ops) as KeyOp[],
      jwk: JSON.parse(r.public_jwk) as PublicJwk,
    }),
    sealed: 'private_sealed',
    dependents: ['key_rotation_policies'],
    // A certificate's key and secret (same name) are managed by it: Azure's `managed: true`.
    managedBy: 'certificates',
  }),
  /** The rotation policy as stored (JSON), with its times. */
  getPolicy: rotationPolicies.get,
  /** Writes the rotation policy (JSON), created at `created` (default `now`) when new. */
  putPolicy: rotationPolicies.put,
  async setNotified(q: Queryable, vaultId: string, nameLower: string, version: string): Promise<void> {
    await q.run('UPDATE keys SET notified_version = $3 WHERE vault_id = $1 AND name_lower = $2', [
      vaultId,
      nameLower,
      version,
    ]);
  },
  /** The current version of an active key, or undefined when it is absent or deleted. */
  async currentVersion(q: Queryable, vaultId: string, nameLower: string): Promise<string | undefined> {
    const r = await q.get<{ current_version: string }>(
      'SELECT current_version FROM keys WHERE vault_id = $1 AND name_lower = $2 AND deleted_at IS NULL',
      [vaultId, nameLower],
    );
    return r?.current_version;
  },
  /**
   * One page of active keys in active vaults that have a rotation policy or an
   * expiry, after (vault id, name) in primary-key order.
   */
  async rotationCandidates(
    q: Queryable,
    after: { vaultId: string; nameLower: string },
    limit: number,
  ): Promise<RotationCandidate[]> {
    const rows = await q.all<RotationCandidateRow>(
      `SELECT k.vault_id, k.name_lower, k.name, k.current_version, k.notified_version, v.created_at, v.exp, p.policy,
              vt.tenant_id, vt.name_lower AS vault
       FROM keys k
       JOIN key_versions v ON v.vault_id = k.vault_id AND v.name_lower = k.name_lower AND v.version = k.current_version
       JOIN vaults vt ON vt.id = k.vault_id AND vt.deleted_at IS NULL
       LEFT JOIN key_rotation_policies p ON p.vault_id = k.vault_id AND p.name_lower = k.name_lower
       WHERE k.deleted_at IS NULL AND (p.policy IS NOT NULL OR v.exp IS NOT NULL)
         AND (k.vault_id > $1 OR (k.vault_id = $1 AND k.name_lower > $2))
       ORDER BY k.vault_id, k.name_lower LIMIT $3`,
      [after.vaultId, after.nameLower, limit],
    );
    return rows.map((r) => ({
      vaultId: r.vault_id,
      nameLower: r.name_lower,
      name: r.name,
      currentVersion: r.current_version,
      notifiedVersion: r.notified_version,
      created: Number(r.created_at),
      exp: r.exp === null ? null : Number(r.exp),
      policy: r.policy,
      tenantId: r.tenant_id,
      vault: r.vault,
    }));
  },
};
