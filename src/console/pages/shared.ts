import type { RoleAssignmentView } from '../../access/arm-views.js';
import { roleById } from '../../access/roles.js';
import { LatchkeyError } from '../../errors/index.js';
import {
  actionButton,
  type Column,
  confirmed,
  dangerForm,
  dataTable,
  input,
  mono,
  postForm,
  seg,
  select,
  time,
} from '../components.js';
import { type ConsoleContext, done, params, query, typed, type View } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import type { ListAccessState } from './access-hint.js';

/**
 * The top of a resource list page (apps, identities, key vaults): heading, lead, the access note,
 * the create form in a panel for who may create (open when `open`), and the filter.
 */
export function resourceListHead(p: {
  heading: string;
  lead: SafeHtml;
  access: ListAccessState;
  createLabel: string;
  create: SafeHtml;
  open: boolean;
  filter: { form: SafeHtml };
}): SafeHtml {
  return html`<h1>${p.heading}</h1>
<p class="lead">${p.lead}</p>
${p.access.note}
${p.access.mayCreate ? html`<details class="panel"${p.open ? html` open` : ''}><summary>${p.createLabel}</summary>${p.create}</details>` : ''}
${p.filter.form}`;
}

/**
 * A table of audit events (the overview's recent changes, a provisioning key's use): time,
 * operation, result, then `who` (the caller, or the address), then the target.
 */
export function auditEventsTable<
  E extends { time: string; operation: string; status: number; target: string | null },
>(p: { caption: string; id?: string; rows: readonly E[]; empty: string; who: Column<E> }): SafeHtml {
  const { who, ...table } = p;
  return dataTable({
    ...table,
    columns: [
      { label: 'Time', cell: (e) => time(Date.parse(e.time)) },
      { label: 'Operation', cell: (e) => e.operation },
      { label: 'Result', cell: (e) => String(e.status) },
      who,
      { label: 'Target', cell: (e) => mono(e.target) },
    ],
  });
}

/** The subscription the console works in; a tenant without one cannot hold resources yet. */
export function subscription(ctx: ConsoleContext): string {
  if (!ctx.subscriptionId)
    throw new LatchkeyError('ResourceNotFound', 'This tenant has no subscription yet.');
  return ctx.subscriptionId;
}

/** A resource-group picker for create forms. */
export async function resourceGroupSelect(ctx: ConsoleContext, id: string): Promise<SafeHtml> {
  const groups = ctx.subscriptionId
    ? await ctx.s.readableScopes.resourceGroups(ctx.caller, ctx.subscriptionId, 500)
    : [];
  return select({
    id,
    name: 'resourceGroup',
    label: 'Resource group',
    options: groups.map((g) => ({ value: g.name, label: g.name })),
    value:
      typed(ctx, 'resourceGroup', 90) ||
      (groups.find((g) => g.name.toLowerCase() === 'default')?.name ?? groups[0]?.name ?? ''),
  });
}

/** The longest name filter of a list page. */
const FILTER_MAX = 120;

/**
 * The name filter of a list page (`?q=`, a plain GET form): the form, the term, and a
 * test that keeps a row when any of its names contains the term (case-insensitive).
 */
export function listFilter(
  ctx: ConsoleContext,
  o: { action: string; id: string; what: string },
): { term: string; form: SafeHtml; matches: (...names: (string | null | undefined)[]) => boolean } {
  const term = (query(ctx).q ?? '').trim().slice(0, FILTER_MAX);
  const needle = term.toLowerCase();
  return {
    term,
    form: html`<form method="get" action="${o.action}" class="panel" role="search" aria-label="Search ${o.what}">
${input({ id: o.id, name: 'q', label: 'Search by name', type: 'search', value: term, maxLength: FILTER_MAX })}
<button type="submit">Search</button>${term ? html` <a href="${o.action}">Clear</a>` : ''}</form>`,
    matches: (...names) => !needle || names.some((n) => !!n && n.toLowerCase().includes(needle)),
  };
}

/** The empty text of a filtered list: what was searched for, or the list's own empty text. */
export const filteredEmpty = (term: string, what: string, empty: string): string =>
  term ? `No ${what} you may read matches “${term}”.` : empty;

/**
 * A principal's readable name for tables (display name and user name or app id),
 * by object id — only for principals the signed-in user may read in the
 * directory (users with `users/read`, applications and identities with
 * `servicePrincipals/read`; always their own name). Others keep only their id.
 */
export async function principalNames(
  ctx: ConsoleContext,
  ids: Iterable<string>,
): Promise<Map<string, string>> {
  const readable = await ctx.s.directory.readable(ctx.caller, ids);
  return new Map(readable.map((p) => [p.id, `${p.displayName} (${principalKindLabel(p)})`]));
}

/** What a principal is, for a reader: its user name (a user), `managed identity` or `application`. */
export const principalKindLabel = (p: { kind: string; userName: string | null }): string =>
  p.kind === 'user'
    ? (p.userName ?? 'user')
    : p.kind === 'managedIdentity'
      ? 'managed identity'
      : 'application';

/**
 * `{path}/:id/enable`, `{path}/:id/disable` and `{path}/:id/delete` (with its
 * confirmation) for a directory object (a user, a service principal): each
 * back to the object's page, or after a delete to the list, with a message.
 */
export function registerSignInActions<T extends { id: string }>(
  r: ConsoleRouter,
  o: {
    /** The router path of the list, e.g. `/users`. */
    path: string;
    name: (x: T) => string;
    show: (ctx: ConsoleContext, id: string) => Promise<T>;
    setEnabled: (ctx: ConsoleContext, id: string, enabled: boolean) => Promise<T>;
    remove: (ctx: ConsoleContext, id: string) => Promise<void>;
    view: View;
  },
): void {
  const list = `/console${o.path}`;
  for (const [action, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    r.action(
      `${o.path}/:id/${action}`,
      async (ctx) => {
        const x = await o.setEnabled(ctx, params(ctx).id!, enabled);
        return done(`${list}/${seg(x.id)}`, `${o.name(x)} ${enabled ? 'enabled' : 'disabled'}.`);
      },
      o.view,
    );
  }
  r.action(
    `${o.path}/:id/delete`,
    confirmed(async (ctx) => {
      const x = await o.show(ctx, params(ctx).id!);
      await o.remove(ctx, x.id);
      return done(list, `Deleted ${o.name(x)}.`);
    }),
    o.view,
  );
}

/**
 * `{path}/delete`, `path` naming a resource by `:rg` and `:name` (`/apps/:rg/:name`): its delete,
 * with the confirmation, then back to `list` with "{noun} {name} deleted."
 */
export function registerResourceDelete(
  r: ConsoleRouter,
  path: string,
  o: {
    noun: string;
    list: string;
    remove: (ctx: ConsoleContext, sub: string, rg: string, name: string) => Promise<unknown>;
    view: View;
  },
): void {
  r.action(
    `${path}/delete`,
    confirmed(async (ctx) => {
      const p = params(ctx);
      await o.remove(ctx, subscription(ctx), p.rg!, p.name!);
      return done(o.list, `${o.noun} ${p.name} deleted.`);
    }),
    o.view,
  );
}

/** The forms of {@link registerSignInActions}: enable or disable sign-in, and delete with a confirmation. */
export function signInSections(
  ctx: ConsoleContext,
  base: string,
  o: { enabled: boolean; onDisable: string; onEnable: string; deleteButton: string; deleteText: string },
): SafeHtml {
  return html`<h2>${o.enabled ? 'Disable' : 'Enable'}</h2>
<p>${o.enabled ? o.onDisable : o.onEnable}</p>
${postForm(
  ctx,
  `${base}/${o.enabled ? 'disable' : 'enable'}`,
  html`<button type="submit"${o.enabled ? html` class="btn-danger"` : ''}>${o.enabled ? 'Disable sign-in' : 'Enable sign-in'}</button>`,
)}
<h2>Delete</h2>
${dangerForm(ctx, `${base}/delete`, { id: 'confirm-delete', button: o.deleteButton, confirmText: o.deleteText })}`;
}

/**
 * The role assignments that apply at `scope` (subscription, resource group or vault IAM pages):
 * principal by name where the user may read it, role name, where it was made, and Remove for
 * those made at this scope.
 */
export async function roleAssignmentsTable(
  ctx: ConsoleContext,
  o: {
    list: readonly RoleAssignmentView[];
    scope: string;
    removeAction: string;
    caption: string;
    empty: string;
    scopeLabel: (assignmentScope: string) => string;
  },
): Promise<SafeHtml> {
  const names = await principalNames(
    ctx,
    o.list.map((a) => a.properties.principalId),
  );
  const here = (a: RoleAssignmentView) => a.properties.scope.toLowerCase() === o.scope.toLowerCase();
  return dataTable({
    caption: o.caption,
    id: 'role-assignments',
    rows: [...o.list],
    empty: o.empty,
    columns: [
      {
        label: 'Principal',
        cell: (a) =>
          html`<div>${names.get(a.properties.principalId) ?? 'Unknown principal'}</div>${mono(a.properties.principalId)}`,
      },
      {
        label: 'Role',
        cell: (a) =>
          roleById(a.properties.roleDefinitionId.split('/').pop() ?? '')?.roleName ??
          a.properties.roleDefinitionId,
      },
      { label: 'Scope', cell: (a) => o.scopeLabel(a.properties.scope) },
      {
        label: 'Actions',
        cell: (a) =>
          here(a)
            ? actionButton(ctx, o.removeAction, 'Remove', {
                danger: true,
                hidden: { id: a.name },
                confirm: 'Remove this role assignment?',
              })
            : html`<span class="muted">Inherited: remove at its scope</span>`,
      },
    ],
  });
}
