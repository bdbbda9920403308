import { ROLE_ASSIGNMENT_ACTIONS } from '../../access/assignments-service.js';
import type { ConsoleContext } from '../context.js';
import { html, type SafeHtml } from '../html.js';

/** What a list page needs to explain an empty list honestly. */
export interface ListAccess {
  /** Plural noun, e.g. "key vaults". */
  what: string;
  /** The action that lists them, e.g. `Microsoft.KeyVault/vaults/read`. */
  read: string;
  /** The action that creates one, e.g. `Microsoft.KeyVault/vaults/write`. */
  write: string;
  /** Built-in roles that allow the read (named in the message). */
  readRoles: string;
  /** Built-in roles that allow the create. */
  writeRoles: string;
}

export interface ListAccessState {
  /** The caller may read at the subscription (so an empty list really is empty). */
  mayReadAll: boolean;
  /** The caller may create in at least one resource group. */
  mayCreate: boolean;
  /** A note for the page, or null when there is nothing to say. */
  note: SafeHtml | null;
}

const MAX_GROUPS = 200;

/**
 * Decides, through the one access decision point, what the signed-in user may
 * do with a kind of resource in the console's subscription, and words an
 * empty list or a missing create permission as what they lack — the action,
 * the roles that grant it and the scope — instead of "none yet" followed by a 403.
 */
export async function listAccess(
  ctx: ConsoleContext,
  a: ListAccess,
  listed: number,
): Promise<ListAccessState> {
  const { s, caller } = ctx;
  const subScope = `/subscriptions/${ctx.subscriptionId}`;
  const mayReadAll = await s.access.allows(caller, a.read, subScope);
  let mayCreate = await s.access.allows(caller, a.write, subScope);
  if (!mayCreate) {
    const groups = await s.scopes.listResourceGroups(ctx.tenant.id, ctx.subscriptionId);
    for (const g of groups.slice(0, MAX_GROUPS)) {
      if (await s.access.allows(caller, a.write, g.id)) {
        mayCreate = true;
        break;
      }
    }
  }
  const mayGrant = await s.access.allows(caller, ROLE_ASSIGNMENT_ACTIONS.write, subScope);
  const grant = mayGrant
    ? html`<p>You may assign roles at this subscription: <a href="/console/subscription/iam">add a role assignment</a>.</p>`
    : html`<p>Ask an owner of the subscription to assign you a role.</p>`;
  const lacks: SafeHtml[] = [];
  if (!mayReadAll && listed === 0)
    lacks.push(
      html`<li>Listing ${a.what} needs <span class="mono">${a.read}</span> (${a.readRoles}) at subscription <span class="mono">${ctx.subscriptionId}</span> or one of its resource groups. You have no role that grants it, so any ${a.what} here are hidden from you.</li>`,
    );
  if (!mayCreate)
    lacks.push(
      html`<li>Creating ${a.what} needs <span class="mono">${a.write}</span> (${a.writeRoles}) at a resource group. You have no role that grants it.</li>`,
    );
  const note =
    lacks.length === 0
      ? null
      : html`<div class="alert alert-info" id="access-note"><strong>What your roles allow here</strong><ul>${lacks}</ul>${grant}</div>`;
  return { mayReadAll, mayCreate, note };
}

export const VAULT_LIST_ACCESS: ListAccess = {
  what: 'key vaults',
  read: 'Microsoft.KeyVault/vaults/read',
  write: 'Microsoft.KeyVault/vaults/write',
  readRoles: 'for example Reader or Key Vault Reader',
  writeRoles: 'for example Key Vault Contributor or Contributor',
};

export const APP_LIST_ACCESS: ListAccess = {
  what: 'apps',
  read: 'Microsoft.Web/sites/read',
  write: 'Microsoft.Web/sites/write',
  readRoles: 'for example Reader',
  writeRoles: 'for example Contributor',
};

export const IDENTITY_LIST_ACCESS: ListAccess = {
  what: 'user-assigned identities',
  read: 'Microsoft.ManagedIdentity/userAssignedIdentities/read',
  write: 'Microsoft.ManagedIdentity/userAssignedIdentities/write',
  readRoles: 'for example Reader or Managed Identity Operator',
  writeRoles: 'for example Managed Identity Contributor or Contributor',
};

/** The empty state of a list: "none yet" only when the user could see them all. */
export const emptyText = (a: ListAccessState, what: string, createHint: string): string =>
  !a.mayReadAll
    ? `No ${what} that you may read.`
    : a.mayCreate
      ? `No ${what} yet. ${createHint}`
      : `No ${what} yet.`;
