import type { VaultAccessModel } from '../access/decision.js';
import type { VaultRecord } from '../storage/vault/vault-store.js';

/** What every object (secret, key) version is; the records live with their store. */
export type { ObjectAttributes, ObjectRecord } from '../storage/vault/object-store.js';
export type { AccessPolicy, AccessPolicyPermissions, Sku } from '../storage/vault/vault-store.js';

/** Limits and rules of Azure Key Vault (PROTOCOLS.md §3). */
export const VAULT_LIMITS = Object.freeze({
  /** Secret value: at most 25 KiB of UTF-8. */
  secretValueBytes: 25 * 1024,
  contentTypeChars: 255,
  tags: 15,
  tagNameChars: 512,
  tagValueChars: 256,
  /** Page size bounds for list operations (`maxresults`). */
  pageMax: 25,
  retentionMinDays: 7,
  retentionMaxDays: 90,
  accessPolicies: 1024,
});

/** Control-plane actions (Azure's names), checked at the vault's ARM id. */
export const VAULT_ACTIONS = {
  read: 'Microsoft.KeyVault/vaults/read',
  write: 'Microsoft.KeyVault/vaults/write',
  delete: 'Microsoft.KeyVault/vaults/delete',
  accessPolicies: 'Microsoft.KeyVault/vaults/accessPolicies/write',
  deletedRead: 'Microsoft.KeyVault/locations/deletedVaults/read',
  purge: 'Microsoft.KeyVault/locations/deletedVaults/purge/action',
  /**
   * Also needed to change a vault's permission model or access policies (or to create one
   * with access policies): that decides who reads its data, so it is granting access, as Azure rules.
   */
  grantAccess: 'Microsoft.Authorization/roleAssignments/write',
} as const;

/** Vault names: 3–24 letters, digits and hyphens, starting with a letter, not ending in or doubling a hyphen. */
export const VAULT_NAME_RE = /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/;
/** Object (secret, key) names: 1–127 letters, digits and hyphens; compared case-insensitively. */
export const OBJECT_NAME_RE = /^[0-9a-zA-Z-]{1,127}$/;
/** Object versions: 32 hex characters. */
export const VERSION_RE = /^[0-9a-fA-F]{32}$/;

export const isVaultName = (s: string): boolean => VAULT_NAME_RE.test(s);
export const isObjectName = (s: string): boolean => OBJECT_NAME_RE.test(s);

export const SECRET_PERMISSIONS = ['get', 'list', 'set', 'delete', 'recover', 'backup', 'restore', 'purge'];
export const KEY_PERMISSIONS = [
  'encrypt',
  'decrypt',
  'wrapKey',
  'unwrapKey',
  'sign',
  'verify',
  'get',
  'list',
  'create',
  'update',
  'import',
  'delete',
  'backup',
  'restore',
  'recover',
  'purge',
  'rotate',
  'getrotationpolicy',
  'setrotationpolicy',
  'release',
];
export const CERTIFICATE_PERMISSIONS = [
  'get',
  'list',
  'delete',
  'create',
  'import',
  'update',
  'managecontacts',
  'getissuers',
  'listissuers',
  'setissuers',
  'deleteissuers',
  'manageissuers',
  'recover',
  'purge',
  'backup',
  'restore',
];
export const STORAGE_PERMISSIONS = [
  'get',
  'list',
  'delete',
  'set',
  'update',
  'regeneratekey',
  'recover',
  'purge',
  'backup',
  'restore',
  'setsas',
  'listsas',
  'getsas',
  'deletesas',
];

/** A vault as the domain sees it: the stored record, its ARM id (what clients see) and its access model. */
export interface Vault extends VaultRecord {
  armId: string;
  /** What the authorization decision point needs. */
  access: VaultAccessModel;
}

export const vaultArmId = (subscriptionId: string, resourceGroup: string, name: string): string =>
  `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.KeyVault/vaults/${name}`;

/**
 * A vault's URL, `https://{name}.{vaultDomain}[:port]` (no port for 443); with
 * the name `{name}`, the installation's vault URL template.
 */
export const vaultUrl = (name: string, vaultDomain: string, port: number): string =>
  `https://${name}.${vaultDomain}${port === 443 ? '' : `:${port}`}`;

export function vaultFromRecord(r: VaultRecord): Vault {
  const armId = vaultArmId(r.subscriptionId, r.resourceGroup, r.name);
  const { id, ...rest } = r;
  return {
    id,
    armId,
    ...rest,
    access: {
      id: armId,
      tenantId: r.tenantId,
      enableRbacAuthorization: r.enableRbacAuthorization,
      accessPolicies: r.accessPolicies,
    },
  };
}

/** Azure's `recoveryLevel` for objects in a vault (soft delete is always on). */
export function recoveryLevel(v: Pick<Vault, 'enablePurgeProtection' | 'softDeleteRetentionInDays'>): string {
  const custom = v.softDeleteRetentionInDays < 90 ? 'Customized' : '';
  return v.enablePurgeProtection ? `${custom}Recoverable` : `${custom}Recoverable+Purgeable`;
}

export const DAY_MS = 86_400_000;

/**
 * The lock every change of a vault's row takes in its transaction before it reads the row (PUT,
 * PATCH, access policies, delete, recover, purge): on PostgreSQL two nodes' changes then run one
 * after the other, each reading what the other committed, so none writes back a row read before
 * another's change (an access policy removed, purge protection switched on). SQLite's writers are
 * serialized already. Vault changes are rare: one lock for all of them.
 */
export const VAULT_ROW_LOCK = 'latchkey:vault-names';
