import type { UserView } from '../../management/directory.js';
import { badge, dataTable, input, mono, postForm, props, required, seg, text, time } from '../components.js';
import { type ConsoleContext, done, type PageResult, params } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { filteredEmpty, listFilter, registerSignInActions, signInSections } from './shared.js';

/**
 * Users: the people who sign in with a password (the console, the CLI's
 * `login`), through the directory service as `/api/directory/users`: the
 * `Microsoft.Directory/users/*` actions at the tenant root decide, every change
 * is audited with the signed-in user as caller. A generated password is shown
 * in the one response that sets it. Nobody disables or deletes their own account.
 */

const LIST = '/console/users';

const shownOnce = (u: UserView, password: string): SafeHtml =>
  html`<section class="alert alert-success" aria-labelledby="new-password-heading">
<strong id="new-password-heading">Password for ${u.userPrincipalName} — copy it now</strong>
<p>This is the only time the password is shown. It is stored only as a hash; hand it over safely.</p>
<pre class="secret-value" id="user-password-value">${password}</pre>
<button type="button" data-copy="user-password-value" hidden>Copy password</button>
</section>`;

async function listPage(ctx: ConsoleContext): Promise<PageResult> {
  const filter = listFilter(ctx, { action: LIST, id: 'user-search', what: 'users' });
  const users = (await ctx.s.directory.users.list(ctx.caller)).filter((u) =>
    filter.matches(u.displayName, u.userPrincipalName, u.id),
  );
  const create = postForm(
    ctx,
    LIST,
    html`<div class="form-row">${input({ id: 'user-name', name: 'userName', label: 'User name', maxLength: 255, required: true, hint: 'What they type to sign in, e.g. alice@contoso.example.' })}
${input({ id: 'user-display', name: 'displayName', label: 'Display name', maxLength: 120, required: true })}</div>
${input({ id: 'user-password', name: 'password', label: 'Password (optional)', type: 'password', maxLength: 256, autocomplete: 'new-password', hint: '12–256 characters. Leave empty to generate one, shown once.' })}
<button type="submit" class="btn-primary">Create user</button>`,
  );
  return {
    title: 'Users',
    nav: 'users',
    body: html`<h1>Users</h1>
<p class="lead">People who sign in with a password. What they may do comes from their role assignments (IAM).</p>
<details class="panel"><summary>Create a user</summary>${create}</details>
${filter.form}
${dataTable({
  caption: 'Users',
  id: 'users',
  rows: users,
  empty: filteredEmpty(filter.term, 'user', 'No users.'),
  columns: [
    { label: 'User name', cell: (u) => html`<a href="${LIST}/${seg(u.id)}">${u.userPrincipalName}</a>` },
    { label: 'Display name', cell: (u) => u.displayName },
    { label: 'State', cell: (u) => badge(u.accountEnabled) },
    { label: 'Created', cell: (u) => time(Date.parse(u.createdDateTime)) },
  ],
})}`,
  };
}

async function userPage(ctx: ConsoleContext, id = params(ctx).id!, created?: SafeHtml): Promise<PageResult> {
  const u = await ctx.s.directory.users.show(ctx.caller, id);
  const base = `${LIST}/${seg(u.id)}`;
  const self = u.id === ctx.caller.oid;
  return {
    title: u.userPrincipalName,
    nav: 'users',
    body: html`<nav class="breadcrumbs" aria-label="Breadcrumb"><ol><li><a href="${LIST}">Users</a></li><li><span aria-current="page">${u.userPrincipalName}</span></li></ol></nav>
<h1>${u.displayName}</h1>
${created ?? ''}
${props([
  ['User name', mono(u.userPrincipalName)],
  ['Object ID', mono(u.id)],
  ['State', badge(u.accountEnabled)],
  ['Created', time(Date.parse(u.createdDateTime))],
])}
<h2>Reset password</h2>
<p>Sets a generated password, shown once, and signs them out of the console. Tokens already issued stay valid until they expire.</p>
${postForm(ctx, `${base}/reset-password`, html`<button type="submit">Reset password</button>`)}
${
  self
    ? html`<p>This is your own account: another administrator can disable or delete it.</p>`
    : signInSections(ctx, base, {
        enabled: u.accountEnabled,
        onDisable: 'A disabled user cannot sign in, and their tokens are refused at once.',
        onEnable: 'The user can sign in again.',
        deleteButton: 'Delete user',
        deleteText: `Delete ${u.userPrincipalName} and their role assignments. This cannot be undone.`,
      })
}`,
  };
}

// duplicate-ok: alike in shape with app-registrations.ts: both directory pages end in the shared
// signInSections and register a create that shows a generated secret once; fields and calls differ.
export function registerUserPages(r: ConsoleRouter): void {
  r.page('/users', (ctx) => listPage(ctx));
  r.action(
    '/users',
    async (ctx, form) => {
      const password = text(form, 'password', 256, { raw: true });
      const { user, password: generated } = await ctx.s.directory.users.create(ctx.caller, ctx.meta, {
        userName: required(form, 'userName', 'User name', 255),
        displayName: required(form, 'displayName', 'Display name', 120),
        ...(password ? { password } : {}),
      });
      if (!generated) return done(`${LIST}/${seg(user.id)}`, `Created ${user.userPrincipalName}.`);
      return { page: await userPage(ctx, user.id, shownOnce(user, generated)) };
    },
    (ctx) => listPage(ctx),
  );
  r.page('/users/:id', (ctx) => userPage(ctx));
  r.action(
    '/users/:id/reset-password',
    async (ctx) => {
      const u = await ctx.s.directory.users.show(ctx.caller, params(ctx).id!);
      const { password } = await ctx.s.directory.users.resetPassword(ctx.caller, ctx.meta, u.id);
      return { page: await userPage(ctx, u.id, shownOnce(u, password!)) };
    },
    (ctx) => userPage(ctx),
  );
  registerSignInActions<UserView>(r, {
    path: '/users',
    name: (u) => u.userPrincipalName,
    show: (ctx, id) => ctx.s.directory.users.show(ctx.caller, id),
    setEnabled: (ctx, id, enabled) => ctx.s.directory.users.setEnabled(ctx.caller, ctx.meta, id, enabled),
    remove: (ctx, id) => ctx.s.directory.users.delete(ctx.caller, ctx.meta, id),
    view: (ctx) => userPage(ctx),
  });
}
