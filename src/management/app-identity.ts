import type { Caller } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { Principals } from '../authority/principals.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { appStore } from '../storage/management/app-store.js';
import type { Queryable } from '../storage/port.js';
import type { App } from './apps.js';
import type { UserIdentities } from './identities.js';
import { UAI_ACTIONS, UAI_TYPE } from './identity-common.js';

export type IdentityType = 'None' | 'SystemAssigned' | 'UserAssigned' | 'SystemAssigned, UserAssigned';

/** An ARM `identity` block. In a PATCH, a `null` entry detaches that identity. */
export interface IdentityInput {
  type: string;
  userAssignedIdentities?: Record<string, unknown> | null;
}

/** The identity type as ARM spells it, from whether there is a system and any user-assigned identity. */
export function identityTypeOf(system: boolean, user: boolean): IdentityType {
  return system && user
    ? 'SystemAssigned, UserAssigned'
    : system
      ? 'SystemAssigned'
      : user
        ? 'UserAssigned'
        : 'None';
}

/** The identity type string of an app, as ARM spells it. */
export function identityType(a: Pick<App, 'systemPrincipalId' | 'userIdentities'>): IdentityType {
  return identityTypeOf(!!a.systemPrincipalId, a.userIdentities.length > 0);
}

export function parseIdentityType(type: string): { system: boolean; user: boolean } {
  const parts = type
    .split(',')
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean);
  const known = new Set(['none', 'systemassigned', 'userassigned']);
  if (
    parts.length === 0 ||
    parts.length > 2 ||
    parts.some((p) => !known.has(p)) ||
    (parts.includes('none') && parts.length > 1)
  )
    throw new LatchkeyError(
      'BadParameter',
      "identity.type must be 'None', 'SystemAssigned', 'UserAssigned' or 'SystemAssigned, UserAssigned'.",
    );
  return { system: parts.includes('systemassigned'), user: parts.includes('userassigned') };
}

/**
 * Applies an identity block to an app inside the caller's transaction:
 * creates or deletes the system-assigned principal, attaches or detaches
 * user-assigned identities (attaching needs `.../assign/action` on each).
 * `put` makes the set exactly the given one; `patch` adds entries and removes
 * `null` ones. Returns a short list of changes for the audit record.
 */
export async function applyIdentity(
  deps: { db: Queryable; clock: Clock; principals: Principals; access: Access; identities: UserIdentities },
  caller: Caller,
  app: App,
  input: IdentityInput,
  mode: 'put' | 'patch',
): Promise<string[]> {
  const { db: tx, clock, principals, access, identities } = deps;
  const want = parseIdentityType(input.type);
  const entries = Object.entries(input.userAssignedIdentities ?? {});
  if (entries.length > 20)
    throw new LatchkeyError('BadParameter', 'At most 20 user-assigned identities per app.');
  if (!want.user && entries.some(([, v]) => v !== null))
    throw new LatchkeyError(
      'BadParameter',
      "userAssignedIdentities needs identity.type to include 'UserAssigned'.",
    );
  const changes: string[] = [];

  if (want.system && !app.systemPrincipalId) {
    const p = await principals.createServicePrincipal(
      app.tenantId,
      { displayName: app.name, kind: 'managedIdentity', resourceId: app.armId },
      tx,
    );
    await appStore.setSystemPrincipal(tx, app.rowId, p.id);
    changes.push('system+');
  } else if (!want.system && app.systemPrincipalId) {
    await appStore.setSystemPrincipal(tx, app.rowId, null);
    // Its role assignments and credentials cascade; the bus tells the access cache and the authenticator.
    await principals.delete(app.tenantId, app.systemPrincipalId, tx);
    changes.push('system-');
  }

  const current = new Map(app.userIdentities.map((u) => [u.armId.toLowerCase(), u]));
  const desired = new Map<string, string>();
  if (want.user) {
    if (mode === 'patch') for (const [k, u] of current) desired.set(k, u.armId);
    for (const [id, v] of entries) {
      if (v === null) desired.delete(id.toLowerCase());
      else desired.set(id.toLowerCase(), id);
    }
    if (desired.size === 0)
      throw new LatchkeyError(
        'BadParameter',
        "identity.type 'UserAssigned' needs at least one user-assigned identity.",
      );
  }
  for (const [key, id] of desired) {
    if (current.has(key)) continue;
    // At the identity as named first: a caller who may not assign it hears 403 whether or not it exists.
    await access.require(caller, UAI_ACTIONS.assign, id);
    const u = await identities.byArmId(app.tenantId, id, tx);
    if (!u)
      throw new LatchkeyError(
        'BadParameter',
        `The user-assigned identity '${id.slice(0, 300)}' was not found (expected an ARM id of ${UAI_TYPE}).`,
      );
    await access.require(caller, UAI_ACTIONS.assign, u.armId);
    await appStore.linkIdentity(tx, app.rowId, u.rowId, clock.now());
    changes.push(`user+${u.name}`);
  }
  for (const [key, u] of current) {
    if (desired.has(key)) continue;
    await appStore.unlinkIdentity(tx, app.rowId, u.rowId);
    changes.push(`user-${u.name}`);
  }
  return changes;
}
