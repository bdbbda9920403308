import { randomUUID } from 'node:crypto';
import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { newVersionId } from '../lib/ids.js';
import type { Queryable } from '../storage/port.js';
import { type CertificateRecord, certificateStore as store } from '../storage/vault/certificate-store.js';
import { keyStore } from '../storage/vault/key-store.js';
import type { ObjectRecord, ObjectStore } from '../storage/vault/object-store.js';
import { secretStore } from '../storage/vault/secret-store.js';
import { type Issuance, recordIssuance } from './certificate-ca.js';
import type { CertificatePolicy } from './certificate-policy.js';
import { pkcs8Of, secretValue, thumbprint, validityOf } from './certificate-x509.js';
import { importMaterial, type KeyMaterial, modulusBits } from './key-material.js';
import { checkKeyOps } from './key-model.js';
import { createKeySealing } from './key-sealing.js';
import type { Vault } from './model.js';

/** The pending operation of a certificate (Azure's `CertificateOperation`, without its URLs). */
export interface CertificateOperation {
  issuer: string;
  status: 'inProgress' | 'completed' | 'failed' | 'cancelled';
  statusDetails: string | null;
  requestId: string;
  cancellationRequested: boolean;
  error: { code: string; message: string } | null;
  /** The PKCS#10 request (base64 DER) of a request waiting for a merge (issuer `Unknown`). */
  csr?: string;
}

/** A certificate version with its certificate's policy (what a bundle shows). */
export interface CertificateWithPolicy extends CertificateRecord {
  policy: CertificatePolicy;
  policyCreated: number;
  policyUpdated: number;
}

export const deletedConflict = (name: string) =>
  new LatchkeyError(
    'Conflict',
    `Certificate ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the certificate can only be recovered or purged.`,
  );
const heldBy = (kind: 'key' | 'secret', name: string) =>
  new LatchkeyError(
    'Conflict',
    `A ${kind} named ${name} already exists in this vault (or is deleted and recoverable) and is not this certificate's: a certificate's key and secret take its name.`,
  );

/** The secret AAD of secrets.ts: the certificate's secret is an ordinary secret version of the same name. */
export const secretAad = (v: Pick<Vault, 'id' | 'tenantId'>, nameLower: string, version: string) =>
  `secret|${v.tenantId}|${v.id}|${nameLower}|${version}`;

/**
 * How a certificate version is written and read with its policy: the certificate, its key and
 * its secret (same name and version) together, and the key and secret following the
 * certificate's soft delete. Used by certificates.ts, inside its transactions.
 */
export function createCertificateVersions(deps: { clock: Clock; sealer: Sealer }) {
  const { clock, sealer } = deps;
  const keySealing = createKeySealing(sealer);
  const policyOf = async (q: Queryable, vaultId: string, nameLower: string) => {
    const p = await store.getPolicy(q, vaultId, nameLower);
    return p && { policy: JSON.parse(p.json) as CertificatePolicy, created: p.created, updated: p.updated };
  };
  const withPolicy = async (
    q: Queryable,
    vaultId: string,
    r: CertificateRecord,
  ): Promise<CertificateWithPolicy> => {
    const p = await policyOf(q, vaultId, r.name.toLowerCase());
    if (!p) throw new LatchkeyError('InternalError', 'The certificate has no policy.');
    return { ...r, policy: p.policy, policyCreated: p.created, policyUpdated: p.updated };
  };

  /** The key and secret of a new version must be the certificate's own (or free). */
  const checkNamesFree = async (q: Queryable, vaultId: string, name: string, certificateExists: boolean) => {
    if (certificateExists) return;
    const nameLower = name.toLowerCase();
    if (await keyStore.exists(q, vaultId, nameLower)) throw heldBy('key', name);
    if (await secretStore.exists(q, vaultId, nameLower)) throw heldBy('secret', name);
  };

  /**
   * Stores a new current version: the certificate, its key (same version id, sealed private
   * JWK) and, when exportable, its secret (PFX or PEM, sealed); the policy; the operation.
   */
  const addVersion = async (
    q: Queryable,
    vault: Pick<Vault, 'id' | 'tenantId'>,
    name: string,
    a: {
      der: Buffer;
      chain: Buffer[];
      material: KeyMaterial;
      policy: CertificatePolicy;
      enabled: boolean;
      tags: Record<string, string> | null;
      operation: CertificateOperation;
      /** The tenant CA signed `der` for this version: recorded as its original (certificate-ca.ts). */
      issuance?: Issuance;
    },
  ): Promise<CertificateWithPolicy> => {
    const now = clock.now();
    const nameLower = name.toLowerCase();
    const existing = await store.find(q, vault.id, nameLower);
    if (existing !== undefined && existing.deletedAt !== null) throw deletedConflict(name);
    await checkNamesFree(q, vault.id, name, existing !== undefined);
    const version = newVersionId(now);
    const stored = await store.upsert(q, vault.id, name, version, now);
    if (stored === undefined) throw deletedConflict(name);
    const { nbf, exp } = validityOf(a.der);
    const common = { version, tags: a.tags, enabled: a.enabled, nbf, exp, created: now, updated: now };
    await store.insertVersion(q, vault.id, nameLower, { ...common, cer: a.der, x5t: thumbprint(a.der) });
    if ((await keyStore.upsert(q, vault.id, stored, version, now)) === undefined) throw heldBy('key', name);
    await keyStore.insertVersion(q, vault.id, nameLower, {
      ...common,
      kty: a.material.kty,
      jwk: a.material.jwk,
      keyOps: checkKeyOps(a.material.kty, null),
      sealed: keySealing.seal(vault, nameLower, version, a.material.privateJwk),
    });
    if (a.policy.key_props.exportable) {
      if ((await secretStore.upsert(q, vault.id, stored, version, now)) === undefined)
        throw heldBy('secret', name);
      const value = await secretValue(
        a.policy.secret_props.contentType,
        a.der,
        pkcs8Of(a.material.privateJwk),
        a.chain,
      );
      await secretStore.insertVersion(q, vault.id, nameLower, {
        ...common,
        contentType: a.policy.secret_props.contentType,
        sealed: sealer.seal(value, secretAad(vault, nameLower, version)),
      });
    }
    if (a.issuance)
      await recordIssuance(q, vault.tenantId, a.issuance, { vaultId: vault.id, nameLower, version });
    await store.putPolicy(q, vault.id, nameLower, JSON.stringify(a.policy), now);
    await store.putOperation(q, vault.id, nameLower, JSON.stringify(a.operation), now);
    return {
      name: stored,
      ...common,
      cer: a.der,
      x5t: thumbprint(a.der),
      deletedAt: null,
      scheduledPurgeAt: null,
      policy: a.policy,
      policyCreated: now,
      policyUpdated: now,
    };
  };

  const completed = (issuer: string): CertificateOperation => ({
    issuer,
    status: 'completed',
    statusDetails: null,
    requestId: randomUUID().replaceAll('-', ''),
    cancellationRequested: false,
    error: null,
  });

  /** Soft delete, recover or purge of the certificate's key and secret with it. */
  const alsoKeyAndSecret = async (
    q: Queryable,
    vaultId: string,
    nameLower: string,
    deletedAt: number | null,
    purgeAt: number | null,
  ) => {
    await keyStore.setDeleted(q, vaultId, nameLower, deletedAt, purgeAt);
    await secretStore.setDeleted(q, vaultId, nameLower, deletedAt, purgeAt);
  };
  /** A version's `enabled` change, made to the key and secret version of the same id too. */
  const alsoEnabled = async (
    q: Queryable,
    vaultId: string,
    nameLower: string,
    version: string,
    enabled: boolean,
    now: number,
  ) => {
    const follow = async <R extends ObjectRecord>(s: Pick<ObjectStore<R>, 'find' | 'updateVersion'>) => {
      const cur = await s.find(q, vaultId, nameLower, version);
      if (cur) await s.updateVersion(q, vaultId, nameLower, { ...cur, enabled, updated: now });
    };
    await follow(keyStore);
    await follow(secretStore);
  };
  /**
   * Refuses a policy that would export a key made not to be: `reuse_key` with `exportable` while
   * the current version's key is non-exportable (it has no secret). Reusing a key never widens
   * its exportability, whatever the policy says now (a policy update, a create, a merge, AutoRenew).
   */
  const checkReuseKeepsKeyInVault = async (
    q: Queryable,
    vaultId: string,
    nameLower: string,
    k: CertificatePolicy['key_props'],
    /** The certificate's current record, when the caller has read it already. */
    current?: CertificateRecord,
  ): Promise<void> => {
    if (!k.reuse_key || !k.exportable) return;
    const cur = current ?? (await store.find(q, vaultId, nameLower));
    if (!cur || cur.deletedAt !== null) return;
    if ((await secretStore.find(q, vaultId, nameLower, cur.version)) !== undefined) return;
    throw new LatchkeyError(
      'BadParameter',
      "The certificate's current key is not exportable: a version that reuses it (key_props.reuse_key) cannot export it. Set key_props.exportable to false, or reuse_key to false for a new key.",
    );
  };
  /**
   * `key_props.reuse_key`: the key of the certificate's current version (live), when it is of the
   * policy's type and size or curve, for a new version to keep; else undefined (a new key).
   */
  const reusableKey = async (
    q: Queryable,
    vault: Pick<Vault, 'id' | 'tenantId'>,
    nameLower: string,
    k: CertificatePolicy['key_props'],
  ): Promise<KeyMaterial | undefined> => {
    const cur = await store.find(q, vault.id, nameLower);
    if (!cur || cur.deletedAt !== null) return undefined;
    await checkReuseKeepsKeyInVault(q, vault.id, nameLower, k, cur);
    const key = await keyStore.findSealed(q, vault.id, nameLower, cur.version);
    if (!key || key.deletedAt !== null) return undefined;
    const m = await importMaterial(keySealing.unseal(vault, nameLower, key.version, key.sealed));
    const fits =
      m.jwk.kty === 'RSA'
        ? k.kty === 'RSA' && modulusBits(Buffer.from(m.jwk.n, 'base64url')) === (k.key_size ?? 2048)
        : k.kty === 'EC' && m.jwk.crv === (k.crv ?? 'P-256');
    return fits ? m : undefined;
  };
  return {
    policyOf,
    withPolicy,
    addVersion,
    completed,
    alsoKeyAndSecret,
    alsoEnabled,
    reusableKey,
    checkReuseKeepsKeyInVault,
  };
}
