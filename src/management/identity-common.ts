import { type Caller, callerEvent, type RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditInput } from '../audit/log.js';
import { LatchkeyError } from '../errors/index.js';
import { isGuid } from '../lib/ids.js';
import type { Scopes } from './scopes.js';

/** ARM resource types of the managed-identity domain. */
export const SITE_TYPE = 'Microsoft.Web/sites';
export const UAI_TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';
export const HOST_TYPE = 'Microsoft.Latchkey/hosts';

/** Control-plane actions, checked by `access.require` at the resource's ARM id. */
export const APP_ACTIONS = {
  read: 'Microsoft.Web/sites/read',
  write: 'Microsoft.Web/sites/write',
  delete: 'Microsoft.Web/sites/delete',
  listSettings: 'Microsoft.Web/sites/config/list/action',
  writeSettings: 'Microsoft.Web/sites/config/write',
} as const;
export const UAI_ACTIONS = {
  read: 'Microsoft.ManagedIdentity/userAssignedIdentities/read',
  write: 'Microsoft.ManagedIdentity/userAssignedIdentities/write',
  delete: 'Microsoft.ManagedIdentity/userAssignedIdentities/delete',
  /** Attaching an identity to a resource (Managed Identity Operator has it). */
  assign: 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action',
} as const;
export const HOST_ACTIONS = {
  read: 'Microsoft.Latchkey/hosts/read',
  write: 'Microsoft.Latchkey/hosts/write',
  delete: 'Microsoft.Latchkey/hosts/delete',
  /** Placing an app on a host lets that host obtain tokens for the app's identities. */
  assign: 'Microsoft.Latchkey/hosts/assign/action',
} as const;

export const armId = (subscriptionId: string, resourceGroup: string, type: string, name: string): string =>
  `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${type}/${name}`;

export interface ParsedArmId {
  subscriptionId: string;
  resourceGroup: string;
  type: string;
  name: string;
}

/** Parses `/subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}/{name}` (case-insensitive keywords). */
export function parseArmId(id: string): ParsedArmId | undefined {
  if (id.length > 600) return undefined;
  const m =
    /^\/subscriptions\/([0-9a-fA-F-]{36})\/resourceGroups\/([-\w._()]{1,90})\/providers\/([A-Za-z0-9.]{1,80}\/[A-Za-z0-9]{1,80})\/([A-Za-z0-9_.-]{1,128})\/?$/i.exec(
      id.trim(),
    );
  if (!m || !isGuid(m[1]!)) return undefined;
  return { subscriptionId: m[1]!.toLowerCase(), resourceGroup: m[2]!, type: m[3]!, name: m[4]! };
}

/** App names: 2–60 letters, digits and hyphens, not starting or ending with a hyphen (App Service's rule). */
export const APP_NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])?$/;
/** User-assigned identity names: 3–128 letters, digits, hyphens and underscores, starting with a letter or digit. */
export const UAI_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$/;
/** Host names: 1–63 letters, digits, dots, hyphens and underscores. */
export const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function checkName(re: RegExp, name: string, what: string, rule: string): string {
  if (!re.test(name)) throw new LatchkeyError('BadParameter', `Invalid ${what} name: ${rule}`);
  return name;
}

export const LOCATION_RE = /^[A-Za-z0-9 -]{1,64}$/;
export type Tags = Record<string, string>;

export function checkTags(tags: Tags | undefined): Tags {
  if (!tags) return {};
  const entries = Object.entries(tags);
  if (entries.length > 50) throw new LatchkeyError('BadParameter', 'At most 50 tags are allowed.');
  for (const [k, v] of entries) {
    if (k.length < 1 || k.length > 512 || typeof v !== 'string' || v.length > 256)
      throw new LatchkeyError('BadParameter', 'Tag names are 1–512 characters and values at most 256.');
  }
  return { ...tags };
}

export const parseTags = (text: string): Tags => {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Tags) : {};
  } catch {
    return {};
  }
};

/** The audit record of a caller's operation on a resource (target is an id, never a value). */
export const auditOf = (
  caller: Caller,
  meta: RequestMeta,
  operation: string,
  target: string | null,
  details?: AuditInput['details'],
  status = 200,
): AuditInput => callerEvent(caller, meta, { operation, target, status, details });

export const resourceNotFound = (type: string, name: string): LatchkeyError =>
  new LatchkeyError(
    'ResourceNotFound',
    `The Resource '${type}/${name.slice(0, 128)}' was not found in the resource group.`,
  );

/**
 * GET of an ARM resource of `type` found by `find` (tenant, subscription, group, name). The
 * permission is checked first, at the id as named, so a caller who may not read there gets the
 * same 403 whether or not the resource exists (as ARM); then 404 naming `type/name`, or it.
 */
/**
 * Where a resource of `type` is created or changed (a PUT): `action` is checked at its id as
 * named first (a caller who may not write there hears 403 whether or not its group exists, as
 * ARM), then its subscription and group are looked up (404 for none) and `action` is checked again
 * at the canonical id. Returns the canonical subscription id, group name and resource id.
 */
export async function writableAt(
  access: Access,
  scopes: Pick<Scopes, 'subscription' | 'resourceGroup'>,
  caller: Caller,
  action: string,
  type: string,
  at: { subscriptionId: string; resourceGroup: string; name: string },
): Promise<{ subscriptionId: string; resourceGroup: string; id: string }> {
  await access.require(caller, action, armId(at.subscriptionId, at.resourceGroup, type, at.name));
  const { subscriptionId } = await scopes.subscription(caller.tenantId, at.subscriptionId);
  const { name: resourceGroup } = await scopes.resourceGroup(
    caller.tenantId,
    subscriptionId,
    at.resourceGroup,
  );
  const id = armId(subscriptionId, resourceGroup, type, at.name);
  await access.require(caller, action, id);
  return { subscriptionId, resourceGroup, id };
}

export async function readableAt<T extends { armId: string }>(
  access: Access,
  caller: Caller,
  action: string,
  type: string,
  find: (tenantId: string, sub: string, rg: string, name: string) => Promise<T | undefined>,
  [sub, rg, name]: [sub: string, rg: string, name: string],
): Promise<T> {
  await access.require(caller, action, armId(sub, rg, type, name));
  const found = await find(caller.tenantId, sub, rg, name);
  if (!found) throw resourceNotFound(type, name);
  return found;
}

/** Those of `items` the caller may do `action` (a read) at, in their order; the others are left out. */
export async function readableOnly<T extends { armId: string }>(
  access: Access,
  caller: Caller,
  action: string,
  items: Iterable<T>,
): Promise<T[]> {
  const out: T[] = [];
  for (const i of items) if (await access.allows(caller, action, i.armId)) out.push(i);
  return out;
}
