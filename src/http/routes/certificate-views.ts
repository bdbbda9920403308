import { seconds } from '../../lib/clock.js';
import type { CertificateOperation, CertificatePolicy, CertificateRecord } from '../../vault/certificates.js';
import type { Vault } from '../../vault/model.js';
import { objectAttributes as attributes, deletedView, itemFields } from './object-views.js';

/** A certificate version, with its certificate's policy where the operation brings it. */
type WithMaybePolicy = CertificateRecord & {
  policy?: CertificatePolicy;
  policyCreated?: number;
  policyUpdated?: number;
};

/** CertificatePolicy as Azure shapes it: the snake_case sections, `attributes`, and its id. */
export function policyView(
  base: string,
  name: string,
  p: CertificatePolicy,
  created: number,
  updated: number,
) {
  const { enabled, ...sections } = p;
  return {
    id: `${base}/certificates/${name}/policy`,
    ...sections,
    attributes: { enabled, created: seconds(created), updated: seconds(updated) },
  };
}

/** CertificateBundle: `cer` (base64 DER), `x5t`, and the key (`kid`) and secret (`sid`) of the same version. */
export function certificateBundle(base: string, vault: Vault, r: WithMaybePolicy) {
  return {
    id: `${base}/certificates/${r.name}/${r.version}`,
    kid: `${base}/keys/${r.name}/${r.version}`,
    sid: `${base}/secrets/${r.name}/${r.version}`,
    // A certificate waiting for its merge has no certificate yet (certificate-merge.ts).
    ...(r.cer.length > 0 ? { x5t: r.x5t, cer: r.cer.toString('base64') } : {}),
    ...(r.policy ? { contentType: r.policy.secret_props.contentType } : {}),
    attributes: attributes(r, vault),
    ...(r.tags !== null ? { tags: r.tags } : {}),
    ...(r.policy
      ? {
          policy: policyView(
            base,
            r.name,
            r.policy,
            r.policyCreated ?? r.created,
            r.policyUpdated ?? r.updated,
          ),
        }
      : {}),
  };
}

export const deletedCertificateBundle = deletedView('deletedcertificates', certificateBundle);

/** CertificateItem: `versioned` for list-versions (id with the version). */
export function certificateItem(base: string, vault: Vault, r: CertificateRecord, versioned = false) {
  return {
    ...itemFields(base, 'certificates', vault, r, versioned),
    x5t: r.x5t,
  };
}

export const deletedCertificateItem = deletedView('deletedcertificates', certificateItem);

/** CertificateOperation (`/certificates/{name}/pending`). */
export function operationView(base: string, name: string, o: CertificateOperation) {
  return {
    id: `${base}/certificates/${name}/pending`,
    issuer: { name: o.issuer },
    cancellation_requested: o.cancellationRequested,
    status: o.status,
    ...(o.statusDetails !== null ? { status_details: o.statusDetails } : {}),
    ...(o.error !== null ? { error: o.error } : {}),
    target: `${base}/certificates/${name}`,
    request_id: o.requestId,
    ...(o.csr ? { csr: o.csr } : {}),
  };
}
