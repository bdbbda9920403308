import { LatchkeyError } from '../errors/index.js';
import { newGuid } from '../lib/ids.js';
import { normalizePolicies } from './access-policies.js';
import { type AccessPolicy, type Sku, VAULT_LIMITS, type Vault, vaultFromRecord } from './model.js';

/** Where a vault lives in ARM. */
export interface VaultRef {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

/** Properties a PUT or PATCH may set; absent fields keep their value (defaults on create). */
export interface VaultInput {
  location?: string;
  tags?: Record<string, string>;
  tenantId?: string;
  sku?: Sku;
  enableRbacAuthorization?: boolean;
  softDeleteRetentionInDays?: number;
  enablePurgeProtection?: boolean;
  accessPolicies?: AccessPolicy[];
  createMode?: 'default' | 'recover';
  /**
   * `enableRbacAuthorization` of a NEW vault when the input does not set it (default true).
   * ARM passes false for api-versions before 2026-02-01, as Azure does.
   */
  enableRbacAuthorizationDefault?: boolean;
}

const LOCATION_RE = /^[a-zA-Z0-9 -]{1,64}$/;

/** A vault's defaults before a create's input is applied: the caller's tenant, the resource group's location. */
export function blankVault(o: {
  name: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  input: VaultInput;
  now: number;
}): Vault {
  return vaultFromRecord({
    id: newGuid(),
    name: o.name,
    nameLower: o.name.toLowerCase(),
    tenantId: o.tenantId,
    subscriptionId: o.subscriptionId,
    resourceGroup: o.resourceGroup,
    location: o.location,
    sku: 'standard',
    enableRbacAuthorization: o.input.enableRbacAuthorizationDefault ?? true,
    softDeleteRetentionInDays: 90,
    enablePurgeProtection: false,
    accessPolicies: [],
    tags: {},
    deletedAt: null,
    scheduledPurgeAt: null,
    createdAt: o.now,
    updatedAt: o.now,
  });
}

/** Applies PUT/PATCH properties onto a vault (or the defaults of a new one), enforcing Azure's rules. */
export function applyVaultInput(v: Vault, input: VaultInput, creating: boolean, now: number): Vault {
  if (input.tenantId !== undefined && input.tenantId.toLowerCase() !== v.tenantId)
    throw new LatchkeyError('BadParameter', "properties.tenantId must be the caller's tenant.");
  if (input.enablePurgeProtection === false && (v.enablePurgeProtection || creating))
    throw new LatchkeyError(
      'BadParameter',
      'The property "enablePurgeProtection" cannot be set to false. Enabling purge protection is irreversible.',
    );
  const days = input.softDeleteRetentionInDays;
  if (days !== undefined) {
    if (
      !Number.isInteger(days) ||
      days < VAULT_LIMITS.retentionMinDays ||
      days > VAULT_LIMITS.retentionMaxDays
    )
      throw new LatchkeyError('BadParameter', 'softDeleteRetentionInDays must be an integer from 7 to 90.');
    if (!creating && days !== v.softDeleteRetentionInDays)
      throw new LatchkeyError(
        'BadParameter',
        'softDeleteRetentionInDays cannot be changed after the vault is created.',
      );
  }
  if (input.location !== undefined && !LOCATION_RE.test(input.location))
    throw new LatchkeyError('BadParameter', 'location must be 1–64 letters, digits, spaces or hyphens.');
  if (
    !creating &&
    input.location !== undefined &&
    input.location.replaceAll(' ', '').toLowerCase() !== v.location
  )
    throw new LatchkeyError('BadParameter', "A vault's location cannot be changed.");
  return {
    ...v,
    location: input.location?.replaceAll(' ', '').toLowerCase() ?? v.location,
    tags: input.tags ?? v.tags,
    sku: input.sku ?? v.sku,
    enableRbacAuthorization: input.enableRbacAuthorization ?? v.enableRbacAuthorization,
    softDeleteRetentionInDays: days ?? v.softDeleteRetentionInDays,
    enablePurgeProtection: input.enablePurgeProtection ?? v.enablePurgeProtection,
    accessPolicies: input.accessPolicies
      ? normalizePolicies(v.tenantId, input.accessPolicies)
      : v.accessPolicies,
    updatedAt: now,
  };
}
