import { X509Certificate } from 'node:crypto';
import { LatchkeyError } from '../errors/index.js';
import type { Queryable } from '../storage/port.js';
import { certificateAuthorityStore } from '../storage/vault/certificate-authority-store.js';
import { type CertificateRecord, certificateStore as store } from '../storage/vault/certificate-store.js';
import { keyStore } from '../storage/vault/key-store.js';
import { secretStore } from '../storage/vault/secret-store.js';
import { createCertificateBackups } from './certificate-backup.js';
import { createCertificateAuthority, type RevocationReason } from './certificate-ca.js';
import { createCertificateContacts } from './certificate-contacts.js';
import {
  CERTIFICATE_RULES,
  certificateNotFound,
  checkCertificateName,
  checkCertificateVersion,
  createCertificateGuard,
  CERTIFICATE_OPERATIONS as OPS,
  pendingNotFound,
} from './certificate-guard.js';
import { createCertificateIssuers } from './certificate-issuers.js';
import { createCertificateLifetime } from './certificate-lifetime.js';
import { createCertificateMerge } from './certificate-merge.js';
import {
  CERT_CURVES,
  type CertificatePolicy,
  checkPolicy,
  PEM,
  type PolicyInput,
} from './certificate-policy.js';
import {
  type CertificateOperation,
  type CertificateWithPolicy,
  createCertificateVersions,
  deletedConflict,
} from './certificate-versions.js';
import { describe, type ImportedCertificate, issueSelfSigned, readImport } from './certificate-x509.js';
import { generateMaterial, importMaterial, type KeyMaterial } from './key-material.js';
import { notifyingWrites } from './object-guard.js';
import { createObjectLifecycle, type ObjectCallContext, type ObjectServiceDeps } from './objects.js';
import { checkTags } from './secret-rules.js';

export type { CertificateRecord } from '../storage/vault/certificate-store.js';
export type { CertificatePolicy } from './certificate-policy.js';
export type { CertificateOperation, CertificateWithPolicy } from './certificate-versions.js';

export interface CreateCertificateInput {
  policy?: PolicyInput | null;
  enabled?: boolean;
  tags?: Record<string, string> | null;
}
export interface ImportCertificateInput extends CreateCertificateInput {
  value: string;
  password?: string | null;
}
export interface UpdateCertificateInput {
  policy?: PolicyInput | null;
  enabled?: boolean;
  tags?: Record<string, string> | null;
}

const bad = (message: string) => new LatchkeyError('BadParameter', message);

/**
 * Key Vault certificates: a certificate is a versioned, soft-deletable object (objects.ts)
 * whose private key is the Key Vault key of the same name and version, and whose PFX/PEM
 * (private key and certificate) is the secret of the same name and version, as Azure exposes
 * them; deleting, recovering and purging a certificate does the same to its key and secret.
 * Issuer `Self` (self-signed) completes at creation; the pending operation records it.
 * A non-exportable key (`key_props.exportable: false`) gets no secret: `GET /secrets/{name}` is 403.
 *
 * @example
 * const { operation } = await certificates.create(ctx, 'web', { policy: { issuer: { name: 'Self' }, x509_props: { subject: 'CN=web' } } });
 */
export function createCertificates(
  deps: ObjectServiceDeps & {
    /**
     * A certificate change also changed the key and the secret of the same name (created, updated,
     * deleted, recovered, purged, restored): the keys and secrets services drop their cached
     * versions, here and on every node.
     */
    onKeyAndSecretChanged?: (vaultId: string, nameLower: string) => void;
    /** The server's public base URL, for the CRL distribution point of `Latchkey` certificates. */
    publicBase?: () => string;
  },
) {
  const { db, clock, sealer } = deps;
  const baseGuard = createCertificateGuard({
    db,
    access: deps.access,
    audit: deps.audit,
    ...(deps.onAuditError ? { onAuditError: deps.onAuditError } : {}),
  });
  // Every write through the guard may have changed the certificate's key and secret: after it (or
  // after a failure other than a refusal or a validation error, when the commit may have landed),
  // their cached versions are dropped, as the keys and secrets services do for their own changes.
  const guard = deps.onKeyAndSecretChanged
    ? notifyingWrites(baseGuard, deps.onKeyAndSecretChanged)
    : baseGuard;
  const versions = createCertificateVersions({ clock, sealer });
  const { policyOf, withPolicy, addVersion, completed, alsoKeyAndSecret, alsoEnabled } = versions;
  const merging = createCertificateMerge({ clock, sealer, guard, versions });
  /** A change to a certificate's pending operation (or request), by name. */
  const pendingWrite = (
    ctx: ObjectCallContext,
    rawName: string,
    op: (typeof OPS)['deleteOperation' | 'updateOperation'],
    fn: (tx: Queryable, name: string) => Promise<{ name: string; operation: CertificateOperation }>,
  ) => {
    const name = checkCertificateName(rawName);
    return guard.write(ctx, op, name, (tx) => fn(tx, name));
  };
  /**
   * A live certificate's policy changed by `input` (the sections given replace the current ones),
   * for `PATCH …/policy` and a `PATCH` of the certificate with a policy alike: refused when it
   * would reuse a non-exportable key as exportable.
   */
  const changePolicy = async (
    tx: Queryable,
    vaultId: string,
    nameLower: string,
    input: PolicyInput,
    now: number,
  ) => {
    const cur = await policyOf(tx, vaultId, nameLower);
    const next = checkPolicy(input, cur?.policy);
    await versions.checkReuseKeepsKeyInVault(tx, vaultId, nameLower, next.key_props);
    await store.putPolicy(tx, vaultId, nameLower, JSON.stringify(next), now);
  };
  /** The stored operation of a live certificate (`GET`/`DELETE`/`PATCH …/pending`), or 404. */
  const storedOperation = async (q: Queryable, vaultId: string, name: string) => {
    const nameLower = name.toLowerCase();
    const row = await store.find(q, vaultId, nameLower);
    const op = row && row.deletedAt === null && (await store.getOperation(q, vaultId, nameLower));
    if (!row || !op) throw pendingNotFound(name);
    return { name: row.name, operation: JSON.parse(op.json) as CertificateOperation };
  };
  const authority = createCertificateAuthority({
    db,
    clock,
    sealer,
    ...(deps.publicBase ? { publicBase: deps.publicBase } : {}),
  });
  const lifecycle = createObjectLifecycle({
    ...deps,
    guard,
    kind: {
      store,
      ...CERTIFICATE_RULES,
      ops: OPS,
      onPurged: (vaultId: string, nameLower: string) => deps.onKeyAndSecretChanged?.(vaultId, nameLower),
      // The certificate's key and secret follow its soft delete and recover, and its purge (asked
      // for or scheduled).
      // A deleted certificate's request waiting for a merge is forgotten (certificate-merge.ts).
      alsoDeleted: async (tx, vaultId, nameLower, deletedAt, purgeAt) => {
        await alsoKeyAndSecret(tx, vaultId, nameLower, deletedAt, purgeAt);
        if (deletedAt !== null) await merging.forget(tx, vaultId, nameLower);
      },
      // A purged certificate signed by the tenant's CA is listed in its CRL when this is the
      // version it was issued into, not a copy (certificate-ca.ts).
      beforePurge: async (tx, vault, nameLower) => {
        const ders = await certificateAuthorityStore.versionCertificates(tx, vault.id, nameLower);
        await authority.revokeIssued(tx, vault.tenantId, ders, 'cessationOfOperation');
      },
      alsoPurged: async (tx, vaultId, nameLower) => {
        await keyStore.purge(tx, vaultId, nameLower);
        await secretStore.purge(tx, vaultId, nameLower);
      },
      shown: withPolicy,
    },
  });

  const issuers = createCertificateIssuers({ db, clock, access: deps.access, guard });
  /**
   * The key of a new version: with `key_props.reuse_key`, the current version's key (when of the
   * policy's type and size or curve: certificate-versions.ts); otherwise a new key for the policy.
   */
  const materialFor = async (
    vault: { id: string; tenantId: string },
    name: string,
    policy: CertificatePolicy,
  ): Promise<KeyMaterial> => {
    const k = policy.key_props;
    const kept = k.reuse_key ? await versions.reusableKey(db, vault, name.toLowerCase(), k) : undefined;
    if (kept) return kept;
    return generateMaterial(
      k.kty === 'RSA'
        ? { kty: 'RSA', size: k.key_size ?? 2048, exponent: 65537 }
        : { kty: 'EC', curve: k.crv ?? 'P-256' },
    );
  };
  /** `Self` signs with the certificate's own key; `Latchkey` with the tenant's CA (certificate-ca.ts). */
  const issue = async (
    via: 'Self' | 'Latchkey',
    tenantId: string,
    policy: CertificatePolicy,
    m: KeyMaterial,
  ) =>
    via === 'Latchkey'
      ? authority.issue(tenantId, policy, m.privateJwk)
      : {
          der: await issueSelfSigned(policy, m.privateJwk, clock.now()),
          chain: [] as Buffer[],
          issuance: undefined,
        };
  // Lifetime actions on schedule (certificate-lifetime.ts): AutoRenew through the policy's issuer.
  const lifetime = createCertificateLifetime({
    db,
    audit: deps.audit,
    baseUrlOf: deps.baseUrlOf,
    versions,
    async renew(vault, name, policy) {
      const via = await issuers.resolve(vault.id, policy.issuer.name);
      if (via === 'Unknown') throw bad("Issuer 'Unknown' certificates are not renewed by the vault.");
      const material = await materialFor(vault, name, policy);
      return { ...(await issue(via, vault.tenantId, policy, material)), material };
    },
    ...(deps.onKeyAndSecretChanged ? { onChanged: deps.onKeyAndSecretChanged } : {}),
  });

  return {
    ...createCertificateContacts({ db, clock, guard }),
    ...createCertificateBackups({
      db,
      sealer,
      guard,
      ...(deps.onKeyAndSecretChanged ? { onKeyAndSecretChanged: deps.onKeyAndSecretChanged } : {}),
    }),
    list: lifecycle.list,
    listVersions: lifecycle.listVersions,
    listDeleted: lifecycle.listDeleted,
    getDeleted: lifecycle.getDeleted,
    purgeDue: lifecycle.purgeDue,
    /** Soft delete of the certificate, its key and its secret (all versions), recoverable until the purge date. */
    delete: lifecycle.delete,
    recover: lifecycle.recover,
    /** Permanent deletion of a deleted certificate with its key and secret; refused under purge protection. */
    purge: lifecycle.purge,

    /**
     * `POST /certificates/{name}/create`: a new certificate or version by the policy's issuer
     * (given, or the certificate's current policy). `Self` is issued before the answer.
     */
    async create(
      ctx: ObjectCallContext,
      rawName: string,
      input: CreateCertificateInput,
    ): Promise<{ name: string; operation: CertificateOperation }> {
      const name = checkCertificateName(rawName);
      checkTags(input.tags);
      await guard.precheck(ctx, OPS.create, name);
      let policy: CertificatePolicy;
      if (input.policy) policy = checkPolicy(input.policy);
      else {
        const cur = await policyOf(db, ctx.vault.id, name.toLowerCase());
        if (!cur) throw bad('A policy is required to create a new certificate.');
        policy = cur.policy;
      }
      // A built-in issuer, or one of the vault's issuers (certificate-issuers.ts) and its provider.
      const via = await issuers.resolve(ctx.vault.id, policy.issuer.name);
      const material = await materialFor(ctx.vault, name, policy);
      if (via === 'Unknown')
        // A CSR for an outside CA; the certificate arrives by merge (certificate-merge.ts).
        return guard.write(ctx, OPS.create, name, async (tx) => {
          const existing = await store.find(tx, ctx.vault.id, name.toLowerCase());
          if (existing?.deletedAt != null) throw deletedConflict(name);
          const operation = await merging.request(tx, ctx.vault, existing?.name ?? name, {
            policy,
            material,
            enabled: input.enabled ?? true,
            tags: input.tags ?? null,
          });
          return { name: existing?.name ?? name, operation };
        });
      const { der, chain, issuance } = await issue(via, ctx.vault.tenantId, policy, material);
      const operation = completed(policy.issuer.name);
      return guard.write(ctx, OPS.create, name, async (tx) => {
        await merging.refusePending(tx, ctx.vault.id, name);
        const r = await addVersion(tx, ctx.vault, name, {
          der,
          chain,
          material,
          policy,
          enabled: input.enabled ?? true,
          tags: input.tags ?? null,
          operation,
          issuance,
        });
        return { name: r.name, version: r.version, operation };
      });
    },

    /**
     * `POST /certificates/{name}/import`: a PFX (base64, with or without password) or PEM with
     * its private key. The policy is derived from the certificate; a given policy's
     * `key_props.exportable` and `secret_props.contentType` are kept.
     */
    async import(
      ctx: ObjectCallContext,
      rawName: string,
      input: ImportCertificateInput,
    ): Promise<CertificateWithPolicy> {
      const name = checkCertificateName(rawName);
      checkTags(input.tags);
      await guard.precheck(ctx, OPS.import, name);
      const imported: ImportedCertificate = await readImport(
        input.value,
        input.password ?? undefined,
        input.policy?.secret_props?.contentType,
      );
      let jwk: Record<string, unknown>;
      try {
        jwk = imported.key.export({ format: 'jwk' }) as Record<string, unknown>;
      } catch {
        // DSA, RSA-PSS, brainpool… keys have no JWK form in Node: the caller's input, not a 500.
        const type = imported.key.asymmetricKeyType;
        const curve = imported.key.asymmetricKeyDetails?.namedCurve;
        throw bad(
          `Certificates with ${type === 'ec' && curve ? `EC keys on ${curve}` : `${type ?? 'such'} keys`} are not supported: import an RSA key or an EC key on ${CERT_CURVES.join(', ')}.`,
        );
      }
      const material = await importMaterial(jwk);
      if (material.jwk.kty === 'EC' && !(CERT_CURVES as readonly string[]).includes(material.jwk.crv))
        throw bad(
          `Certificates with EC keys on ${material.jwk.crv} are not supported: use ${CERT_CURVES.join(', ')}.`,
        );
      const d = describe(imported.der);
      const looksPem = input.value.includes('-----BEGIN ');
      const policy = checkPolicy({
        key_props: {
          kty: material.jwk.kty,
          ...(material.jwk.kty === 'EC'
            ? { crv: material.jwk.crv }
            : { key_size: Buffer.from(material.jwk.n, 'base64url').length * 8 }),
          exportable: input.policy?.key_props?.exportable ?? true,
          reuse_key: input.policy?.key_props?.reuse_key ?? false,
        },
        secret_props: {
          contentType: input.policy?.secret_props?.contentType ?? (looksPem ? PEM : undefined),
        },
        x509_props: {
          subject: d.subject,
          sans: {
            ...(d.dns.length ? { dns_names: d.dns.slice(0, 100) } : {}),
            ...(d.emails.length ? { emails: d.emails.slice(0, 100) } : {}),
          },
          validity_months: d.validityMonths,
          ...(input.policy?.x509_props?.ekus ? { ekus: input.policy.x509_props.ekus } : {}),
          ...(input.policy?.x509_props?.key_usage ? { key_usage: input.policy.x509_props.key_usage } : {}),
        },
        issuer: { name: 'Unknown' },
        ...(input.policy?.lifetime_actions ? { lifetime_actions: input.policy.lifetime_actions } : {}),
      });
      return guard.write(ctx, OPS.import, name, (tx) =>
        addVersion(tx, ctx.vault, name, {
          der: imported.der,
          chain: imported.chain,
          material,
          policy,
          enabled: input.enabled ?? true,
          tags: input.tags ?? null,
          operation: completed('Unknown'),
        }),
      );
    },

    /** The latest (or a given) version with the certificate's policy. */
    async get(ctx: ObjectCallContext, rawName: string, rawVersion?: string): Promise<CertificateWithPolicy> {
      const name = checkCertificateName(rawName);
      const version =
        rawVersion === undefined || rawVersion === '' ? undefined : checkCertificateVersion(rawVersion);
      return guard.read(
        ctx,
        OPS.get,
        name,
        async () => {
          const cur = await store.find(db, ctx.vault.id, name.toLowerCase(), version);
          if (!cur && version === undefined) {
            const waiting = await merging.pendingBundle(db, ctx.vault.id, name.toLowerCase());
            if (waiting) return waiting;
          }
          if (!cur || cur.deletedAt !== null) throw certificateNotFound(name, version);
          return withPolicy(db, ctx.vault.id, cur);
        },
        version,
      );
    },

    /** `PATCH /certificates/{name}[/{version}]`: enabled and tags (with the key and secret version), and the policy. */
    async update(
      ctx: ObjectCallContext,
      rawName: string,
      rawVersion: string | undefined,
      patch: UpdateCertificateInput,
    ): Promise<CertificateWithPolicy> {
      const name = checkCertificateName(rawName);
      const version =
        rawVersion === undefined || rawVersion === '' ? undefined : checkCertificateVersion(rawVersion);
      checkTags(patch.tags);
      return guard.write(ctx, OPS.update, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const cur = await store.find(tx, ctx.vault.id, nameLower, version);
        if (!cur || cur.deletedAt !== null) throw certificateNotFound(name, version);
        const now = clock.now();
        // The policy first: refused, it leaves the version unchanged too.
        if (patch.policy) await changePolicy(tx, ctx.vault.id, nameLower, patch.policy, now);
        const next: CertificateRecord = {
          ...cur,
          tags: patch.tags === undefined ? cur.tags : patch.tags,
          enabled: patch.enabled ?? cur.enabled,
          updated: now,
        };
        await store.updateVersion(tx, ctx.vault.id, nameLower, next);
        if (patch.enabled !== undefined && patch.enabled !== cur.enabled)
          await alsoEnabled(tx, ctx.vault.id, nameLower, cur.version, next.enabled, now);
        return withPolicy(tx, ctx.vault.id, next);
      });
    },

    async getPolicy(ctx: ObjectCallContext, rawName: string) {
      const name = checkCertificateName(rawName);
      return guard.read(ctx, OPS.getPolicy, name, async () => {
        const row = await store.find(db, ctx.vault.id, name.toLowerCase());
        if (!row || row.deletedAt !== null) throw certificateNotFound(name);
        return { name: row.name, ...(await policyOf(db, ctx.vault.id, name.toLowerCase()))! };
      });
    },

    /** `PATCH /certificates/{name}/policy`: the sections given replace the current ones. */
    async updatePolicy(ctx: ObjectCallContext, rawName: string, input: PolicyInput) {
      const name = checkCertificateName(rawName);
      return guard.write(ctx, OPS.setPolicy, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const row = await store.find(tx, ctx.vault.id, nameLower);
        if (!row || row.deletedAt !== null) throw certificateNotFound(name);
        await changePolicy(tx, ctx.vault.id, nameLower, input, clock.now());
        return { name: row.name, ...(await policyOf(tx, ctx.vault.id, nameLower))! };
      });
    },

    /** `GET /certificates/{name}/pending`. */
    async getOperation(
      ctx: ObjectCallContext,
      rawName: string,
    ): Promise<{ name: string; operation: CertificateOperation }> {
      const name = checkCertificateName(rawName);
      return guard.read(ctx, OPS.getOperation, name, async () => {
        const waiting = await merging.operationOf(db, ctx.vault.id, name.toLowerCase());
        if (waiting) return waiting;
        return storedOperation(db, ctx.vault.id, name);
      });
    },

    /** `DELETE /certificates/{name}/pending`: forgets the operation record (the certificate stays). */
    deleteOperation: (ctx: ObjectCallContext, rawName: string) =>
      pendingWrite(ctx, rawName, OPS.deleteOperation, async (tx, name) => {
        const waiting = await merging.operationOf(tx, ctx.vault.id, name.toLowerCase());
        if (waiting) {
          await merging.forget(tx, ctx.vault.id, name.toLowerCase());
          return waiting;
        }
        const r = await storedOperation(tx, ctx.vault.id, name);
        await store.deleteOperation(tx, ctx.vault.id, name.toLowerCase());
        return r;
      }),

    /**
     * `PATCH /certificates/{name}/pending` with `cancellation_requested: true`: a request waiting
     * for its merge is cancelled (it can no longer be merged); a finished operation records the
     * request and stays as it is.
     */
    cancelOperation: (ctx: ObjectCallContext, rawName: string) =>
      pendingWrite(ctx, rawName, OPS.updateOperation, async (tx, name) => {
        const nameLower = name.toLowerCase();
        const waiting = await merging.cancel(tx, ctx.vault.id, nameLower);
        if (waiting) return waiting;
        const cur = await storedOperation(tx, ctx.vault.id, name);
        const next = { ...cur.operation, cancellationRequested: true };
        await store.putOperation(tx, ctx.vault.id, nameLower, JSON.stringify(next), clock.now());
        return { name: cur.name, operation: next };
      }),

    /**
     * `POST /certificates/{name}/{version}/revoke` (Latchkey's own; Azure has none): a version
     * signed by the tenant's CA goes into its CRL with the reason given, the certificate staying
     * as it is. A version the CA did not sign (or expired) is 400; revoking twice keeps the first.
     *
     * `deleted: true` is `POST /deletedcertificates/{name}/{version}/revoke`: the same for a
     * soft-deleted certificate (a key found compromised after the delete need not wait for the
     * purge, which purge protection may hold off for the whole retention period). Each route
     * finds only its own state: a live certificate is 404 there, a deleted one 404 here.
     */
    async revoke(
      ctx: ObjectCallContext,
      rawName: string,
      rawVersion: string,
      reason: RevocationReason,
      options: { deleted?: boolean } = {},
    ): Promise<{ name: string; version: string; serialNumber: string; reason: RevocationReason }> {
      const name = checkCertificateName(rawName);
      const version = checkCertificateVersion(rawVersion);
      const deleted = options.deleted === true;
      return guard.write(ctx, OPS.revoke, name, async (tx) => {
        const cur = await store.find(tx, ctx.vault.id, name.toLowerCase(), version);
        if (!cur || (cur.deletedAt !== null) !== deleted)
          throw deleted ? CERTIFICATE_RULES.deletedNotFound(name) : certificateNotFound(name, version);
        const r = await authority.revokeIssued(tx, ctx.vault.tenantId, [{ der: cur.cer }], reason);
        if (!r.ours)
          throw bad(
            `Certificate '${cur.name}' version '${version}' was not signed by the tenant's CA (issuer Latchkey) or has expired: only those can be revoked.`,
          );
        return {
          name: cur.name,
          version,
          serialNumber: new X509Certificate(cur.cer).serialNumber.toLowerCase(),
          reason,
        };
      });
    },

    /** `POST /certificates/{name}/pending/merge` (certificate-merge.ts). */
    async merge(
      ctx: ObjectCallContext,
      rawName: string,
      input: { x5c: readonly string[]; enabled?: boolean; tags?: Record<string, string> | null },
    ): Promise<CertificateWithPolicy> {
      const name = checkCertificateName(rawName);
      checkTags(input.tags);
      return merging.merge(ctx, name, input);
    },

    /**
     * The tenant's CA (issuer `Latchkey`, certificate-ca.ts): the published chain (PEM), its
     * generations, their CRLs, rotation.
     */
    caCertificatePem: (tenantId: string) => authority.chainPem(tenantId),
    ca: authority,

    /** The lifetime-actions job's round (certificate-lifetime.ts). */
    runLifetimeActions: (now: number) => lifetime.runDue(now),

    /** Certificate issuers (`/certificates/issuers`, certificate-issuers.ts). */
    issuers,
  };
}
export type Certificates = ReturnType<typeof createCertificates>;
