import { ROLE_ASSIGNMENT_ACTIONS } from '../../access/assignments-service.js';
import { BUILT_IN_ROLES, roleById } from '../../access/roles.js';
import { LatchkeyError } from '../../errors/index.js';
import { isGuid, newGuid } from '../../lib/ids.js';
import { dataTable, input, mono, postForm, required, section, seg, select, text } from '../components.js';
import { type ConsoleContext, type PageResult, params, query } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { breadcrumbs } from '../layout.js';
import type { ConsoleRouter } from '../routes.js';
import { principalKindLabel, principalNames, roleAssignmentsTable, subscription } from './shared.js';

const RG_LIST = '/console/resource-groups';
const MEMBER_MAX = 100;

/** The scope of an IAM page: the subscription, or one of its resource groups (it must exist). */
async function scopeOf(ctx: ConsoleContext): Promise<{ id: string; label: string; href: string }> {
  const sub = subscription(ctx);
  const rg = params(ctx).rg;
  if (rg === undefined)
    return { id: `/subscriptions/${sub}`, label: `Subscription ${sub}`, href: '/console/subscription/iam' };
  const { scope } = await ctx.s.scopeResolver.resolve(
    ctx.tenant.id,
    `/subscriptions/${sub}/resourceGroups/${rg}`,
  );
  return { id: scope, label: `Resource group ${rg}`, href: `${RG_LIST}/${seg(rg)}/iam` };
}

/**
 * The member picker: a search (GET) over the directory as the signed-in user,
 * so it lists only principals they may read (users with `users/read`,
 * applications and identities with `servicePrincipals/read`); without either,
 * a message says so and the typed name or id field remains.
 */
export async function memberPicker(
  ctx: ConsoleContext,
  pageHref: string,
): Promise<{ search: SafeHtml; field: SafeHtml }> {
  const term = (query(ctx).member ?? '').trim().slice(0, MEMBER_MAX);
  const search = html`<form method="get" action="${pageHref}" class="panel" aria-label="Find a member" role="search">
${input({ id: 'member-search', name: 'member', label: 'Find a member', type: 'search', value: term, maxLength: MEMBER_MAX, hint: 'Part of the name of a user, application, service principal or managed identity.' })}
<button type="submit">Search</button></form>`;
  const typedField = input({
    id: 'iam-assignee',
    name: 'assignee',
    label: 'Assign to',
    required: true,
    ...(isGuid(term) ? { value: term } : {}),
    maxLength: 255,
    mono: true,
    hint: 'A user name, or the object (principal) ID or client ID of an app, managed identity or service principal.',
  });
  if (!term) return { search, field: typedField };
  let found: Awaited<ReturnType<typeof ctx.s.directory.search>>;
  try {
    found = await ctx.s.directory.search(ctx.caller, term, 20);
  } catch (e) {
    if (!(e instanceof LatchkeyError) || e.status !== 403) throw e;
    return {
      search,
      field: html`<div class="alert alert-warning" id="member-note">Searching the directory needs <span class="mono">Microsoft.Directory/users/read</span> or <span class="mono">Microsoft.Directory/servicePrincipals/read</span> at the tenant root, which you do not have. Enter the member's user name or ID instead.</div>${typedField}`,
    };
  }
  if (found.principals.length === 0)
    return {
      search,
      field: html`<p class="muted" id="member-note">No member you may see matches “${term}”.</p>${typedField}`,
    };
  return {
    search,
    field: html`<fieldset id="member-results"><legend>Member</legend>${found.principals.map(
      (p, i) =>
        html`<div class="check"><input type="radio" id="member-${String(i)}" name="assignee" value="${p.id}"${i === 0 ? html` checked` : ''}><label for="member-${String(i)}">${p.displayName} <span class="muted">${principalKindLabel(p)}</span><span class="hint mono">${p.id}</span></label></div>`,
    )}</fieldset>`,
  };
}

/** The role assignments at or above a scope, with remove buttons for those made at it. */
const assignmentsAt = (ctx: ConsoleContext, scope: string, removeAction: string): Promise<SafeHtml> =>
  section(async () =>
    roleAssignmentsTable(ctx, {
      list: await ctx.s.roleAssignments.list(ctx.caller, scope, { atScope: true }),
      scope,
      removeAction,
      caption: 'Role assignments that apply here',
      empty: 'No role assignments apply here.',
      scopeLabel: (at) =>
        at.toLowerCase() === scope.toLowerCase()
          ? 'This scope'
          : at === '/'
            ? 'Tenant root (inherited)'
            : 'Subscription (inherited)',
    }),
  );

async function iamPage(ctx: ConsoleContext): Promise<PageResult> {
  const scope = await scopeOf(ctx);
  const picker = await memberPicker(ctx, scope.href);
  const mayWrite = await ctx.s.access.allows(ctx.caller, ROLE_ASSIGNMENT_ACTIONS.write, scope.id);
  const rg = params(ctx).rg;
  return {
    title: `${scope.label} · Access control (IAM)`,
    nav: 'resourceGroups',
    body: html`${breadcrumbs(
      rg === undefined
        ? [{ label: 'Subscription' }, { label: 'Access control (IAM)' }]
        : [{ label: 'Resource groups', href: RG_LIST }, { label: rg }, { label: 'Access control (IAM)' }],
    )}
<h1>Access control (IAM)</h1>
<p class="lead">${scope.label}: a role assigned here applies to everything in it. <span class="mono">${scope.id}</span></p>
<h2>Add role assignment</h2>
${
  mayWrite
    ? html`${picker.search}
${postForm(
  ctx,
  scope.href,
  html`${select({
    id: 'iam-role',
    name: 'role',
    label: 'Role',
    options: BUILT_IN_ROLES.map((r) => ({ value: r.id, label: r.roleName })),
    value: BUILT_IN_ROLES.find((r) => r.roleName === 'Reader')?.id ?? '',
  })}
${picker.field}
<button type="submit" class="btn-primary">Add role assignment</button>`,
)}`
    : html`<p class="muted" id="iam-note">Adding a role assignment here needs <span class="mono">${ROLE_ASSIGNMENT_ACTIONS.write}</span> (Owner) at this scope or above.</p>`
}
<h2>Role assignments</h2>
${await assignmentsAt(ctx, scope.id, `${scope.href}/remove`)}`,
  };
}

async function groupsPage(ctx: ConsoleContext): Promise<PageResult> {
  const sub = subscription(ctx);
  const q = (query(ctx).q ?? '').trim().toLowerCase().slice(0, 90);
  const visible = (await ctx.s.readableScopes.resourceGroups(ctx.caller, sub, 500)).filter(
    (g) => !q || g.name.toLowerCase().includes(q),
  );
  return {
    title: 'Resource groups',
    nav: 'resourceGroups',
    body: html`<h1>Resource groups</h1>
<p class="lead">The resource groups of subscription <span class="mono">${sub}</span> that you may read. <a href="/console/subscription/iam">Access control (IAM) of the subscription</a></p>
<form method="get" action="${RG_LIST}" class="panel" role="search" aria-label="Search resource groups">
${input({ id: 'rg-search', name: 'q', label: 'Search by name', type: 'search', value: q, maxLength: 90 })}
<button type="submit">Search</button></form>
${dataTable({
  caption: 'Resource groups',
  id: 'resource-groups',
  rows: visible,
  empty: q ? 'No resource group you may read matches.' : 'No resource group you may read.',
  columns: [
    { label: 'Name', cell: (g) => g.name },
    { label: 'Location', cell: (g) => g.location },
    { label: 'Resource ID', cell: (g) => mono(g.id) },
    { label: 'Access', cell: (g) => html`<a href="${RG_LIST}/${seg(g.name)}/iam">Access control (IAM)</a>` },
  ],
})}`,
  };
}

export function registerIamPages(r: ConsoleRouter): void {
  r.page('/resource-groups', groupsPage);
  for (const path of ['/subscription/iam', '/resource-groups/:rg/iam']) {
    r.page(path, iamPage);
    r.action(
      path,
      async (ctx, form) => {
        const scope = await scopeOf(ctx);
        const role = roleById(text(form, 'role', 64));
        if (!role) throw new LatchkeyError('BadParameter', 'Choose a role.');
        const assignee = required(form, 'assignee', 'The member', 255);
        let pid: string;
        try {
          pid = (await ctx.s.roleAssignments.resolvePrincipal(ctx.caller, assignee)).id;
        } catch (e) {
          // Without directory read, an object id is taken as it is (the service checks it exists).
          if (!(e instanceof LatchkeyError && e.status === 403 && isGuid(assignee))) throw e;
          pid = assignee.toLowerCase();
        }
        await ctx.s.roleAssignments.create(ctx.caller, ctx.meta, scope.id, newGuid(), {
          roleDefinitionId: role.id,
          principalId: pid,
        });
        const name = (await principalNames(ctx, [pid])).get(pid) ?? pid;
        return {
          redirect: scope.href,
          flash: { kind: 'success', text: `${role.roleName} granted to ${name} on ${scope.label}.` },
        };
      },
      iamPage,
    );
    r.action(
      `${path}/remove`,
      async (ctx, form) => {
        const scope = await scopeOf(ctx);
        const id = required(form, 'id', 'The role assignment', 64);
        const removed = await ctx.s.roleAssignments.delete(ctx.caller, ctx.meta, scope.id, id);
        if (!removed)
          throw new LatchkeyError('NotFound', 'That role assignment does not exist at this scope.');
        return {
          redirect: scope.href,
          flash: { kind: 'success', text: `Role assignment ${id} removed from ${scope.label}.` },
        };
      },
      iamPage,
    );
  }
}
