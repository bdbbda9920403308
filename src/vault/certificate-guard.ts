import { LatchkeyError } from '../errors/index.js';
import { isObjectName, VERSION_RE } from './model.js';
import { createObjectGuard, type ObjectGuard } from './object-guard.js';

const C = 'Microsoft.KeyVault/vaults/certificates';
/** Issuers are Azure's `certificatecas` in RBAC; their audit target is the issuers collection. */
const CA = 'Microsoft.KeyVault/vaults/certificatecas';
const ISSUERS = 'certificates/issuers';

/**
 * Each certificate operation: audit name, RBAC data action (Azure's), access-policy
 * permission (Azure's certificate permissions). Reads are `certificates/read`.
 */
export const CERTIFICATE_OPERATIONS = {
  create: { op: 'CertificateCreate', action: `${C}/create/action`, perm: 'create' },
  import: { op: 'CertificateImport', action: `${C}/import/action`, perm: 'import' },
  get: { op: 'CertificateGet', action: `${C}/read`, perm: 'get' },
  list: { op: 'CertificateList', action: `${C}/read`, perm: 'list' },
  versions: { op: 'CertificateListVersions', action: `${C}/read`, perm: 'list' },
  update: { op: 'CertificateUpdate', action: `${C}/update/action`, perm: 'update' },
  getPolicy: { op: 'CertificatePolicyGet', action: `${C}/read`, perm: 'get' },
  setPolicy: { op: 'CertificatePolicyUpdate', action: `${C}/update/action`, perm: 'update' },
  getOperation: { op: 'CertificatePendingGet', action: `${C}/read`, perm: 'get' },
  deleteOperation: { op: 'CertificatePendingDelete', action: `${C}/delete`, perm: 'delete' },
  delete: { op: 'CertificateDelete', action: `${C}/delete`, perm: 'delete' },
  listDeleted: { op: 'CertificateListDeleted', action: `${C}/read`, perm: 'list' },
  getDeleted: { op: 'CertificateGetDeleted', action: `${C}/read`, perm: 'get' },
  recover: { op: 'CertificateRecover', action: `${C}/recover/action`, perm: 'recover' },
  purge: { op: 'CertificatePurge', action: `${C}/purge/action`, perm: 'purge' },
  merge: { op: 'CertificateMerge', action: `${C}/create/action`, perm: 'create' },
  updateOperation: { op: 'CertificatePendingUpdate', action: `${C}/update/action`, perm: 'update' },
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
} as const;

export const certificateNotFound = (name: string, version?: string) =>
  new LatchkeyError(
    'CertificateNotFound',
    `A certificate with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command.`,
  );
export const deletedCertificateNotFound = (name: string) =>
  new LatchkeyError('CertificateNotFound', `Deleted Certificate not found: ${name}`);
export const pendingNotFound = (name: string) =>
  new LatchkeyError('CertificateNotFound', `Pending certificate not found: ${name}`);

export function checkCertificateName(name: string): string {
  if (!isObjectName(name))
    throw new LatchkeyError(
      'BadParameter',
      'The certificate name is invalid: use 1–127 letters, digits and hyphens.',
    );
  return name;
}

export function checkCertificateVersion(version: string): string {
  if (!VERSION_RE.test(version))
    throw new LatchkeyError(
      'BadParameter',
      'The certificate version is invalid: it is 32 hexadecimal characters.',
    );
  return version.toLowerCase();
}

/** Authorization and audit for certificate operations (objects.ts). */
export function createCertificateGuard(
  deps: Omit<Parameters<typeof createObjectGuard>[0], 'collection' | 'orRead'>,
) {
  return createObjectGuard({ ...deps, collection: 'certificates' });
}
export type CertificateGuard = ObjectGuard;
