import type { VaultAccessModel } from '../access/decision.js';

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

export interface AccessPolicyPermissions {
  keys?: string[];
  secrets?: string[];
  certificates?: string[];
  storage?: string[];
}

/** A vault access policy entry (used when `enableRbacAuthorization` is false). */
export interface AccessPolicy {
  tenantId: string;
  objectId: string;
  applicationId?: string;
  permissions: AccessPolicyPermissions;
}

export type Sku = 'standard' | 'premium';

/** A vault as the domain sees it. `id` is internal; `armId` is what clients see. */
export interface Vault {
  id: string;
  armId: string;
  name: string;
  nameLower: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  sku: Sku;
  enableRbacAuthorization: boolean;
  softDeleteRetentionInDays: number;
  enablePurgeProtection: boolean;
  accessPolicies: AccessPolicy[];
  tags: Record<string, string>;
  deletedAt: number | null;
  scheduledPurgeAt: number | null;
  createdAt: number;
  updatedAt: number;
  /** What the authorization decision point needs. */
  access: VaultAccessModel;
}

export interface VaultRow {
  id: string;
  name: string;
  name_lower: string;
  tenant_id: string;
  subscription_id: string;
  resource_group: string;
  location: string;
  sku: string;
  enable_rbac_authorization: number;
  soft_delete_retention_days: number;
  enable_purge_protection: number;
  access_policies: string;
  tags: string;
  deleted_at: number | null;
  scheduled_purge_at: number | null;
  created_at: number;
  updated_at: number;
}

export const vaultArmId = (subscriptionId: string, resourceGroup: string, name: string): string =>
  `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.KeyVault/vaults/${name}`;

export function vaultFromRow(r: VaultRow): Vault {
  const armId = vaultArmId(r.subscription_id, r.resource_group, r.name);
  const accessPolicies = JSON.parse(r.access_policies) as AccessPolicy[];
  const enableRbacAuthorization = Number(r.enable_rbac_authorization) === 1;
  return {
    id: r.id,
    armId,
    name: r.name,
    nameLower: r.name_lower,
    tenantId: r.tenant_id,
    subscriptionId: r.subscription_id,
    resourceGroup: r.resource_group,
    location: r.location,
    sku: r.sku === 'premium' ? 'premium' : 'standard',
    enableRbacAuthorization,
    softDeleteRetentionInDays: Number(r.soft_delete_retention_days),
    enablePurgeProtection: Number(r.enable_purge_protection) === 1,
    accessPolicies,
    tags: JSON.parse(r.tags) as Record<string, string>,
    deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
    scheduledPurgeAt: r.scheduled_purge_at === null ? null : Number(r.scheduled_purge_at),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    access: { id: armId, tenantId: r.tenant_id, enableRbacAuthorization, accessPolicies },
  };
}

/** Azure's `recoveryLevel` for objects in a vault (soft delete is always on). */
export function recoveryLevel(v: Pick<Vault, 'enablePurgeProtection' | 'softDeleteRetentionInDays'>): string {
  const custom = v.softDeleteRetentionInDays < 90 ? 'Customized' : '';
  return v.enablePurgeProtection ? `${custom}Recoverable` : `${custom}Recoverable+Purgeable`;
}

export const DAY_MS = 86_400_000;
