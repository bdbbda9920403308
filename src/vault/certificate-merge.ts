import { createPublicKey, type KeyObject, randomUUID, X509Certificate } from 'node:crypto';
import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { pemBlocks } from '../lib/pem.js';
import type { Queryable } from '../storage/port.js';
import { certificateRequestStore as requests } from '../storage/vault/certificate-request-store.js';
import {
  type CertificateGuard,
  CERTIFICATE_OPERATIONS as OPS,
  pendingNotFound,
} from './certificate-guard.js';
import type { CertificatePolicy } from './certificate-policy.js';
import type {
  CertificateOperation,
  CertificateWithPolicy,
  createCertificateVersions,
} from './certificate-versions.js';
import { loadX509, policyExtensions, signingKeys, subjectOf } from './certificate-x509.js';
import { importMaterial, type KeyMaterial, type PrivateJwk } from './key-material.js';
import type { Vault } from './model.js';
import type { ObjectCallContext } from './objects.js';

const bad = (message: string) => new LatchkeyError('BadParameter', message);

/** A PKCS#10 request for the key, with the policy's subject, SANs, key usages and EKUs (DER). */
export async function makeCsr(policy: CertificatePolicy, privateJwk: PrivateJwk): Promise<Buffer> {
  const x509 = await loadX509();
  const { alg, keys } = await signingKeys(privateJwk);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subjectOf(x509, policy.x509_props.subject),
    keys,
    signingAlgorithm: alg,
    extensions: policyExtensions(x509, policy),
  });
  return Buffer.from(csr.rawData);
}

/** Most certificates one merge takes (the leaf and its chain), and the largest one (base64). */
export const MERGE_LIMITS = { certificates: 10, chars: 16 * 1024 } as const;

/**
 * The certificates of a merge's `x5c`: each base64 of an X.509 certificate, DER, or (as the
 * SDK samples send) base64 of the certificate's PEM or base64 text. Each is parsed; a 400 names
 * the one that is not a certificate.
 */
export function readX5c(x5c: readonly string[]): X509Certificate[] {
  if (x5c.length === 0) throw bad('x5c must hold the signed certificate (and optionally its chain).');
  if (x5c.length > MERGE_LIMITS.certificates)
    throw bad(`x5c holds at most ${MERGE_LIMITS.certificates} certificates.`);
  return x5c.map((b64, i) => {
    let der = Buffer.from(b64, 'base64');
    if (der[0] !== 0x30) {
      const text = der.toString('latin1');
      const pem = pemBlocks(text).find((b) => b.label === 'CERTIFICATE');
      der = Buffer.from((pem ? pem.body : text).replace(/\s/g, ''), 'base64');
    }
    try {
      return new X509Certificate(der);
    } catch {
      throw bad(`x5c[${i}] is not an X.509 certificate (base64 of its DER).`);
    }
  });
}

const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });

/** Azure's answer when the merged certificate is not for the request's key. */
export const keyMismatch = () =>
  bad("Public key from x509 certificate and key of this instance doesn't match");

/**
 * The CSR flow (issuer `Unknown`), as Azure: a create makes the key and a PKCS#10 request and
 * answers a pending operation (`inProgress`, with `csr`); an outside CA signs it; the merge
 * (`POST /certificates/{name}/pending/merge`) checks the certificate is for that key and stores
 * it as the certificate's new version (key, secret, policy) . The key waits sealed in
 * `certificate_requests` (AAD bound to the vault, name and request id), never served.
 */
export function createCertificateMerge(deps: {
  clock: Clock;
  sealer: Sealer;
  guard: CertificateGuard;
  versions: Pick<ReturnType<typeof createCertificateVersions>, 'addVersion'>;
}) {
  const { clock, sealer, guard } = deps;
  const aad = (v: Vault, nameLower: string, requestId: string) =>
    `certreq|${v.tenantId}|${v.id}|${nameLower}|${requestId}`;

  return {
    /** A create with issuer `Unknown`, inside the create's transaction: stores the request, returns its operation. */
    async request(
      q: Queryable,
      vault: Vault,
      name: string,
      a: {
        policy: CertificatePolicy;
        material: KeyMaterial;
        enabled: boolean;
        tags: Record<string, string> | null;
      },
    ): Promise<CertificateOperation> {
      const csr = await makeCsr(a.policy, a.material.privateJwk);
      const requestId = randomUUID().replaceAll('-', '');
      const operation: CertificateOperation = {
        issuer: a.policy.issuer.name,
        status: 'inProgress',
        statusDetails: 'Pending certificate created. Please Perform Merge to complete the request.',
        requestId,
        cancellationRequested: false,
        error: null,
        csr: csr.toString('base64'),
      };
      const now = clock.now();
      const nameLower = name.toLowerCase();
      const stored = await requests.insert(q, vault.id, {
        name,
        requestId,
        policy: JSON.stringify(a.policy),
        csr,
        sealedKey: sealer.seal(JSON.stringify(a.material.privateJwk), aad(vault, nameLower, requestId)),
        operation: JSON.stringify(operation),
        enabled: a.enabled,
        tags: a.tags,
        created: now,
        updated: now,
      });
      if (!stored) throw pendingConflict(name);
      return operation;
    },

    /** `POST /certificates/{name}/pending/merge`: the signed certificate (and chain) for the pending request. */
    async merge(
      ctx: ObjectCallContext,
      name: string,
      input: { x5c: readonly string[]; enabled?: boolean; tags?: Record<string, string> | null },
    ): Promise<CertificateWithPolicy> {
      return guard.write(ctx, OPS.merge, name, async (tx) => {
        const certs = readX5c(input.x5c);
        const nameLower = name.toLowerCase();
        const req = await requests.find(tx, ctx.vault.id, nameLower);
        if (!req) throw pendingNotFound(name);
        const op = JSON.parse(req.operation) as CertificateOperation;
        if (op.status !== 'inProgress')
          throw bad(`The pending operation of ${req.name} is ${op.status}: it cannot be merged.`);
        const privateJwk = JSON.parse(
          sealer.open(req.sealedKey, aad(ctx.vault, nameLower, req.requestId)).toString('utf8'),
        ) as PrivateJwk;
        const own = spki(createPublicKey({ key: { ...privateJwk }, format: 'jwk' }));
        const leaf = certs.findIndex((c) => spki(c.publicKey).equals(own));
        if (leaf < 0) throw keyMismatch();
        const [cert] = certs.splice(leaf, 1);
        const r = await deps.versions.addVersion(tx, ctx.vault, req.name, {
          der: Buffer.from(cert!.raw),
          chain: certs.map((c) => Buffer.from(c.raw)),
          material: await importMaterial({ ...privateJwk }),
          policy: JSON.parse(req.policy) as CertificatePolicy,
          enabled: input.enabled ?? req.enabled,
          tags: input.tags === undefined ? req.tags : input.tags,
          operation: { ...op, status: 'completed', statusDetails: null },
        });
        await requests.delete(tx, ctx.vault.id, nameLower);
        return r;
      });
    },

    /**
     * A first version waiting for its merge, as `GET /certificates/{name}` shows it (as Azure: the
     * certificate exists, without `cer`, until the merge): the request id is its version.
     */
    async pendingBundle(
      q: Queryable,
      vaultId: string,
      nameLower: string,
    ): Promise<CertificateWithPolicy | undefined> {
      const r = await requests.find(q, vaultId, nameLower);
      return (
        r && {
          name: r.name,
          version: r.requestId,
          cer: Buffer.alloc(0),
          x5t: '',
          tags: r.tags,
          enabled: r.enabled,
          nbf: null,
          exp: null,
          created: r.created,
          updated: r.updated,
          deletedAt: null,
          scheduledPurgeAt: null,
          policy: JSON.parse(r.policy) as CertificatePolicy,
          policyCreated: r.created,
          policyUpdated: r.updated,
        }
      );
    },

    /** The pending request's operation, if there is one. */
    async operationOf(q: Queryable, vaultId: string, nameLower: string) {
      const r = await requests.find(q, vaultId, nameLower);
      return r && { name: r.name, operation: JSON.parse(r.operation) as CertificateOperation };
    },

    /** `PATCH …/pending` with `cancellation_requested: true` on a request: it can no longer be merged. */
    async cancel(q: Queryable, vaultId: string, nameLower: string) {
      const r = await requests.find(q, vaultId, nameLower);
      if (!r) return undefined;
      const op = JSON.parse(r.operation) as CertificateOperation;
      const next: CertificateOperation =
        op.status === 'inProgress'
          ? {
              ...op,
              cancellationRequested: true,
              status: 'cancelled',
              statusDetails: 'The operation was cancelled.',
            }
          : op;
      await requests.setOperation(q, vaultId, nameLower, JSON.stringify(next), clock.now());
      return { name: r.name, operation: next };
    },

    /** Forgets the request (`DELETE …/pending`, or the certificate's delete); whether there was one. */
    forget: (q: Queryable, vaultId: string, nameLower: string) => requests.delete(q, vaultId, nameLower),

    /** A create while a request waits for its merge is refused (409). */
    async refusePending(q: Queryable, vaultId: string, name: string) {
      if (await requests.find(q, vaultId, name.toLowerCase())) throw pendingConflict(name);
    },
  };
}
export type CertificateMerge = ReturnType<typeof createCertificateMerge>;

const pendingConflict = (name: string) =>
  new LatchkeyError(
    'Conflict',
    `Certificate ${name} has a pending operation waiting for a merge: merge it, or delete the pending operation (DELETE /certificates/${name}/pending), before creating a new version.`,
  );
