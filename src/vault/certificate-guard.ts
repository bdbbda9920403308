import { LatchkeyError } from '../errors/index.js';
import { createObjectGuard, type ObjectGuard, type ObjectOperation } from './object-guard.js';
import { actionOperation, lifecycleOperations, objectKindRules } from './object-kind.js';

// duplicate-ok: each kind's operation table opens with its RBAC prefixes and the shared operation builders (object-kind.ts); the operations differ
const C = 'Microsoft.KeyVault/vaults/certificates';
/** Issuers are Azure's `certificatecas` in RBAC; their audit target is the issuers collection. */
const CA = 'Microsoft.KeyVault/vaults/certificatecas';
const ISSUERS = 'certificates/issuers';

/**
 * Each certificate operation: audit name, RBAC data action (Azure's), access-policy
 * permission (Azure's certificate permissions). Reads are `certificates/read`.
 */
export const CERTIFICATE_OPERATIONS = {
  create: actionOperation('Certificate', C, 'create'),
  import: actionOperation('Certificate', C, 'import'),
  get: { op: 'CertificateGet', action: `${C}/read`, perm: 'get' },
  update: actionOperation('Certificate', C, 'update'),
  getPolicy: { op: 'CertificatePolicyGet', action: `${C}/read`, perm: 'get' },
  setPolicy: { op: 'CertificatePolicyUpdate', action: `${C}/update/action`, perm: 'update' },
  getOperation: { op: 'CertificatePendingGet', action: `${C}/read`, perm: 'get' },
  deleteOperation: { op: 'CertificatePendingDelete', action: `${C}/delete`, perm: 'delete' },
  ...lifecycleOperations('Certificate', C, `${C}/read`),
  merge: { op: 'CertificateMerge', action: `${C}/create/action`, perm: 'create' },
  updateOperation: { op: 'CertificatePendingUpdate', action: `${C}/update/action`, perm: 'update' },
  /** Latchkey's own (Azure has no revoke): as permanent as a purge, so it needs what a delete needs. */
  revoke: { op: 'CertificateRevoke', action: `${C}/delete`, perm: 'delete' },
  listIssuers: {
    op: 'CertificateIssuerList',
    action: `${CA}/read`,
    perm: 'listissuers',
    targetPath: ISSUERS,
  },
  getIssuer: { op: 'CertificateIssuerGet', action: `${CA}/read`, perm: 'getissuers', targetPath: ISSUERS },
  setIssuer: { op: 'CertificateIssuerSet', action: `${CA}/write`, perm: 'setissuers', targetPath: ISSUERS },
  updateIssuer: {
    op: 'CertificateIssuerUpdate',
    action: `${CA}/write`,
    perm: 'setissuers',
    targetPath: ISSUERS,
  },
  deleteIssuer: {
    op: 'CertificateIssuerDelete',
    action: `${CA}/delete`,
    perm: 'deleteissuers',
    targetPath: ISSUERS,
  },
  // Contacts: access policies `managecontacts` for all three (Azure's REST reference). RBAC has one data
  // action, `certificatecontacts/write` (Certificates Officer's); reading the list is guarded by it too,
  // so that the Officer may read what it sets and a Reader (`*/read`) never sees the addresses.
  ...(Object.fromEntries(
    (['get', 'set', 'delete'] as const).map((verb) => [
      `${verb}Contacts`,
      {
        op: `CertificateContacts${verb[0]?.toUpperCase()}${verb.slice(1)}`,
        action: 'Microsoft.KeyVault/vaults/certificatecontacts/write',
        perm: 'managecontacts',
        targetPath: 'certificates/contacts',
      },
    ]),
  ) as Record<'getContacts' | 'setContacts' | 'deleteContacts', ObjectOperation>),
} satisfies Record<string, ObjectOperation>;

/** A certificate's name and version rules and errors (object-kind.ts). */
export const CERTIFICATE_RULES = objectKindRules('certificate');
export const {
  notFound: certificateNotFound,
  deletedNotFound: deletedCertificateNotFound,
  checkName: checkCertificateName,
  checkVersion: checkCertificateVersion,
} = CERTIFICATE_RULES;
export const pendingNotFound = (name: string) =>
  new LatchkeyError('CertificateNotFound', `Pending certificate not found: ${name}`);

/** Authorization and audit for certificate operations (objects.ts). */
export function createCertificateGuard(
  deps: Omit<Parameters<typeof createObjectGuard>[0], 'collection' | 'orRead'>,
) {
  return createObjectGuard({ ...deps, collection: 'certificates' });
}
export type CertificateGuard = ObjectGuard;
