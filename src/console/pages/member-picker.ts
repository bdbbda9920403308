import { BUILT_IN_ROLES } from '../../access/roles.js';
import type { Principal } from '../../authority/principals.js';
import { LatchkeyError } from '../../errors/index.js';
import { isGuid } from '../../lib/ids.js';
import { input, postForm, select } from '../components.js';
import { type ConsoleContext, query } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { principalKindLabel } from './shared.js';

/**
 * The "Add role assignment" form of an IAM page (subscription, resource group, vault): the picker's
 * search, then a role (`defaultRole` chosen) and the picked member, posted to `action`.
 */
export function addRoleAssignmentForm(
  ctx: ConsoleContext,
  action: string,
  picker: { search: SafeHtml; field: SafeHtml },
  defaultRole: string,
): SafeHtml {
  return html`${picker.search}
${postForm(
  ctx,
  action,
  html`${select({
    id: 'iam-role',
    name: 'role',
    label: 'Role',
    options: BUILT_IN_ROLES.map((r) => ({ value: r.id, label: r.roleName })),
    value: BUILT_IN_ROLES.find((r) => r.roleName === defaultRole)?.id ?? '',
  })}
${picker.field}
<button type="submit" class="btn-primary">Add role assignment</button>`,
)}`;
}

/** The longest search term (longer input is cut, not refused: it is a search box). */
export const MEMBER_TERM_MAX = 100;
/** At most this many matches per search. */
export const MEMBER_RESULTS_MAX = 20;
/** The JSON route of the live search (progressive enhancement of the GET form). */
export const MEMBER_SEARCH_PATH = '/console/directory/members';

/**
 * Members matching `term` (display name, user name, object id or app id) in the
 * signed-in user's tenant, searched through the directory as that user: only
 * principals they may read (users with `users/read`, applications and
 * identities with `servicePrincipals/read`). `denied` when they may read neither.
 */
export async function findMembers(
  ctx: ConsoleContext,
  raw: string,
): Promise<{ term: string; found: Principal[] | 'denied' }> {
  const term = raw.trim().slice(0, MEMBER_TERM_MAX);
  if (!term) return { term, found: [] };
  try {
    return { term, found: (await ctx.s.directory.search(ctx.caller, term, MEMBER_RESULTS_MAX)).principals };
  } catch (e) {
    if (e instanceof LatchkeyError && e.status === 403) return { term, found: 'denied' };
    throw e;
  }
}

/**
 * The member picker of an "Add role assignment" form: a search (a plain GET of
 * the page with `?member=`, so it works without JavaScript; console.js turns it
 * into a live search through {@link MEMBER_SEARCH_PATH}) and the form's member
 * field — the matches to choose from, or a typed user name or id.
 */
export async function memberPicker(
  ctx: ConsoleContext,
  pageHref: string,
): Promise<{ search: SafeHtml; field: SafeHtml }> {
  const { term, found } = await findMembers(ctx, query(ctx).member ?? '');
  const search = html`<form method="get" action="${pageHref}" class="panel" aria-label="Find a member" role="search">
${input({ id: 'member-search', name: 'member', label: 'Find a member', type: 'search', value: term, maxLength: MEMBER_TERM_MAX, hint: 'Part of the name or the ID of a user, application, service principal or managed identity.' })}
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
  const wrap = (inner: SafeHtml) =>
    html`<div id="member-field" data-member-field data-member-search="${MEMBER_SEARCH_PATH}">${inner}</div>`;
  if (!term) return { search, field: wrap(typedField) };
  if (found === 'denied')
    return {
      search,
      field: wrap(
        html`<div class="alert alert-warning" id="member-note">Searching the directory needs <span class="mono">Microsoft.Directory/users/read</span> or <span class="mono">Microsoft.Directory/servicePrincipals/read</span> at the tenant root, which you do not have. Enter the member's user name or ID instead.</div>${typedField}`,
      ),
    };
  if (found.length === 0)
    return {
      search,
      field: wrap(
        html`<p class="muted" id="member-note">No member you may see matches “${term}”.</p>${typedField}`,
      ),
    };
  return {
    search,
    field: wrap(
      html`<fieldset id="member-results"><legend>Member</legend>${found.map(
        (p, i) =>
          html`<div class="check"><input type="radio" id="member-${String(i)}" name="assignee" value="${p.id}"${i === 0 ? html` checked` : ''}><label for="member-${String(i)}">${p.displayName} <span class="muted">${principalKindLabel(p)}</span><span class="hint mono">${p.id}</span></label></div>`,
      )}</fieldset>`,
    ),
  };
}

/**
 * `GET /console/directory/members?q=`: the live search of the member picker, as JSON
 * `{ value: [{ id, displayName, kind }] }` (at most {@link MEMBER_RESULTS_MAX}); a user
 * who may read no directory object gets 403 with the actions they lack.
 */
export function registerMemberSearch(r: ConsoleRouter): void {
  r.json(MEMBER_SEARCH_PATH.slice('/console'.length), async (ctx) => {
    const { found } = await findMembers(ctx, query(ctx).q ?? '');
    if (found === 'denied')
      throw new LatchkeyError(
        'Forbidden',
        'Searching the directory needs Microsoft.Directory/users/read or Microsoft.Directory/servicePrincipals/read at the tenant root.',
      );
    return {
      value: found.map((p) => ({ id: p.id, displayName: p.displayName, kind: principalKindLabel(p) })),
    };
  });
}
