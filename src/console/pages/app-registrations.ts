import type { CredentialInfo } from '../../authority/credentials.js';
import { LatchkeyError } from '../../errors/index.js';
import type { ServicePrincipalView } from '../../management/directory.js';
import type { ApplicationRef } from '../../management/federated-credentials.js';
import {
  actionButton,
  badge,
  dataTable,
  input,
  mono,
  postForm,
  props,
  required,
  section,
  // duplicate-ok: an import list (the same names imported by several pages), not code to share
  seg,
  select,
  text,
  time,
} from '../components.js';
import { type ConsoleContext, done, type PageResult, params } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { federatedCredentialsSection, registerFederatedCredentialActions } from './federated-credentials.js';
import { filteredEmpty, listFilter, registerSignInActions, signInSections } from './shared.js';

/**
 * App registrations: the tenant's service principals (what `az ad sp` manages)
 * through the same directory service as the management API, so the same
 * `Microsoft.Directory/servicePrincipals/*` actions at the tenant root decide
 * what a user may do, and every change is audited with the user as caller.
 * A client secret's value is shown in the one response that creates it.
 */

const LIST = '/console/app-registrations';
const EXPIRY = [
  { value: '90d', label: '90 days', days: 90 },
  { value: '180d', label: '180 days', days: 180 },
  { value: '1y', label: '1 year', years: 1 },
  { value: '2y', label: '2 years', years: 2 },
] as const;
const NO_SECRET = { value: 'none', label: 'No secret (add a credential later)' };

const isManaged = (sp: ServicePrincipalView) => sp.servicePrincipalType === 'ManagedIdentity';

/** The expiry chosen in a form, as the directory service takes it. */
function expiryOf(value: string): { days: number } | { years: number } {
  const e = EXPIRY.find((x) => x.value === value);
  if (!e) throw new LatchkeyError('BadParameter', 'Choose when the secret expires.');
  return 'days' in e ? { days: e.days } : { years: e.years };
}

/** A new client secret, in this one response only. */
const shownOnce = (ctx: ConsoleContext, sp: ServicePrincipalView, secret: string): SafeHtml =>
  html`<section class="alert alert-success" aria-labelledby="new-secret-heading">
<strong id="new-secret-heading">Client secret for ${sp.displayName} — copy it now</strong>
<p>This is the only time the secret is shown. It is stored only as a hash.</p>
${props([
  ['Tenant (directory) ID', mono(ctx.tenant.id)],
  ['Application (client) ID', mono(sp.appId)],
])}
<pre class="secret-value" id="client-secret-value">${secret}</pre>
<button type="button" data-copy="client-secret-value" hidden>Copy secret</button>
</section>`;

/** An application's principal as its federated credentials' service takes it. */
const appRef = (ctx: ConsoleContext, id: string): ApplicationRef => ({ id, tenantId: ctx.caller.tenantId });

/**
 * The application of the request, found as the Graph routes find it: one the caller may read
 * (404 otherwise), and an application, not a managed identity (whose credentials the platform owns).
 */
async function application(ctx: ConsoleContext): Promise<ApplicationRef> {
  const sp = await ctx.s.directory.show(ctx.caller, params(ctx).id!);
  if (isManaged(sp))
    throw new LatchkeyError(
      'BadParameter',
      "A managed identity's credentials are the platform's; a user-assigned identity's federated credentials are on its page under Managed identities.",
    );
  return appRef(ctx, sp.id);
}

async function listPage(ctx: ConsoleContext, created?: SafeHtml): Promise<PageResult> {
  const filter = listFilter(ctx, { action: LIST, id: 'sp-search', what: 'service principals' });
  const sps = (await ctx.s.directory.list(ctx.caller)).filter((sp) =>
    filter.matches(sp.displayName, sp.appId, sp.id),
  );
  const create = postForm(
    ctx,
    LIST,
    html`${input({ id: 'sp-name', name: 'displayName', label: 'Display name', maxLength: 120, required: true })}
${select({
  id: 'sp-secret',
  name: 'secret',
  label: 'First client secret expires in',
  options: [...EXPIRY.map((e) => ({ value: e.value, label: e.label })), NO_SECRET],
  value: '180d',
})}
<button type="submit" class="btn-primary">Register</button>`,
  );
  return {
    title: 'App registrations',
    nav: 'registrations',
    body: html`<h1>App registrations</h1>
<p class="lead">Service principals: the identities of applications and pipelines that sign in with a client secret or a certificate. Managed identities appear here too; the platform manages their credentials.</p>
${created ?? ''}
<details class="panel"${sps.length === 0 && !filter.term ? html` open` : ''}><summary>Register an application</summary>${create}</details>
${filter.form}
${dataTable({
  caption: 'Service principals',
  id: 'app-registrations',
  rows: sps,
  empty: filteredEmpty(filter.term, 'service principal', 'No service principals.'),
  columns: [
    { label: 'Name', cell: (sp) => html`<a href="${LIST}/${seg(sp.id)}">${sp.displayName}</a>` },
    { label: 'Application (client) ID', cell: (sp) => mono(sp.appId) },
    { label: 'Type', cell: (sp) => (isManaged(sp) ? 'Managed identity' : 'Application') },
    { label: 'State', cell: (sp) => badge(sp.accountEnabled) },
    { label: 'Created', cell: (sp) => time(Date.parse(sp.createdDateTime)) },
  ],
})}`,
  };
}

async function detailPage(
  ctx: ConsoleContext,
  id = params(ctx).id!,
  created?: SafeHtml,
): Promise<PageResult> {
  const sp = await ctx.s.directory.show(ctx.caller, id);
  const base = `${LIST}/${seg(sp.id)}`;
  const managed = isManaged(sp);
  const credentials = await section(async () =>
    dataTable<CredentialInfo>({
      caption: 'Client secrets and certificates',
      id: 'credentials',
      rows: await ctx.s.directory.listCredentials(ctx.caller, sp.id),
      empty: 'No credentials: nothing can sign in as this application.',
      columns: [
        { label: 'Type', cell: (c) => (c.type === 'Password' ? 'Client secret' : 'Certificate') },
        { label: 'Description', cell: (c) => c.displayName || '—' },
        {
          label: 'Value or thumbprint',
          cell: (c) => mono(c.type === 'Password' ? `${c.hint ?? ''}…` : c.hint),
        },
        { label: 'Expires', cell: (c) => time(Date.parse(c.endDateTime)) },
        { label: 'Key ID', cell: (c) => mono(c.keyId) },
        ...(managed
          ? []
          : [
              {
                label: 'Actions',
                cell: (c: CredentialInfo) =>
                  actionButton(ctx, `${base}/credentials/${seg(c.keyId)}/delete`, 'Remove', {
                    danger: true,
                    confirm: 'Remove this credential? Whatever signs in with it stops working.',
                  }),
              },
            ]),
      ],
    }),
  );
  return {
    title: sp.displayName,
    nav: 'registrations',
    body: html`<nav class="breadcrumbs" aria-label="Breadcrumb"><ol><li><a href="${LIST}">App registrations</a></li><li><span aria-current="page">${sp.displayName}</span></li></ol></nav>
<h1>${sp.displayName}</h1>
${created ?? ''}
${props([
  ['Application (client) ID', mono(sp.appId)],
  ['Object ID', mono(sp.id)],
  ['Tenant (directory) ID', mono(sp.appOwnerOrganizationId)],
  ['Type', managed ? 'Managed identity' : 'Application'],
  ['State', badge(sp.accountEnabled)],
  ['Created', time(Date.parse(sp.createdDateTime))],
  ...(sp.identifierUris.length
    ? [['Application ID URI', mono(sp.identifierUris[0])] as [string, SafeHtml]]
    : []),
])}
<h2>Credentials</h2>
${credentials}
${
  managed
    ? html`<p>The platform creates and rolls this managed identity's credentials, and deletes it with its resource.</p>`
    : html`<h3>Add a client secret</h3>
${postForm(
  ctx,
  `${base}/credentials`,
  html`<div class="form-row">${input({ id: 'cred-name', name: 'description', label: 'Description (optional)', maxLength: 120 })}
${select({ id: 'cred-expiry', name: 'expiry', label: 'Expires in', options: EXPIRY.map((e) => ({ value: e.value, label: e.label })), value: '180d' })}</div>
<button type="submit">Add secret</button>`,
)}
${federatedCredentialsSection(
  ctx,
  base,
  await ctx.s.appFederatedCredentials.list(appRef(ctx, sp.id)),
  "A workload outside Latchkey (a CI job, a Kubernetes pod) signs in as this application, with its application (client) ID, by exchanging its own OIDC token when the token's issuer, subject and audience match one of these.",
)}
${signInSections(ctx, base, {
  enabled: sp.accountEnabled,
  onDisable: 'A disabled application cannot sign in, and its tokens are refused at once.',
  onEnable: 'The application can sign in again with its credentials.',
  deleteButton: 'Delete application',
  deleteText: `Delete ${sp.displayName}, its credentials and its role assignments. This cannot be undone.`,
})}`
}`,
  };
}

export function registerAppRegistrationPages(r: ConsoleRouter): void {
  r.page('/app-registrations', (ctx) => listPage(ctx));
  r.action(
    '/app-registrations',
    async (ctx, form) => {
      const displayName = required(form, 'displayName', 'Display name', 120);
      const secret = text(form, 'secret', 8);
      const { servicePrincipal: sp, credential } = await ctx.s.directory.create(ctx.caller, ctx.meta, {
        displayName,
        credential:
          secret === NO_SECRET.value
            ? null
            : { type: 'Password', displayName: 'console', ...expiryOf(secret) },
      });
      if (!credential?.secretText) return done(`${LIST}/${seg(sp.id)}`, `Registered ${sp.displayName}.`);
      return { page: await detailPage(ctx, sp.id, shownOnce(ctx, sp, credential.secretText)) };
    },
    (ctx) => listPage(ctx),
  );
  r.page('/app-registrations/:id', (ctx) => detailPage(ctx));
  r.action(
    '/app-registrations/:id/credentials',
    async (ctx, form) => {
      const expiry = expiryOf(text(form, 'expiry', 8));
      const description = text(form, 'description', 120);
      const sp = await ctx.s.directory.show(ctx.caller, params(ctx).id!);
      const c = await ctx.s.directory.resetCredential(ctx.caller, ctx.meta, sp.id, {
        type: 'Password',
        append: true,
        ...(description ? { displayName: description } : {}),
        ...expiry,
      });
      return { page: await detailPage(ctx, sp.id, shownOnce(ctx, sp, c.secretText!)) };
    },
    (ctx) => detailPage(ctx),
  );
  r.action(
    '/app-registrations/:id/credentials/:keyId/delete',
    async (ctx) => {
      const { id, keyId } = params(ctx);
      await ctx.s.directory.deleteCredential(ctx.caller, ctx.meta, id!, keyId!);
      return done(`${LIST}/${seg(id!)}`, `Credential ${keyId} removed.`);
    },
    (ctx) => detailPage(ctx),
  );
  registerFederatedCredentialActions(r, {
    path: '/app-registrations/:id',
    here: (ctx) => `${LIST}/${seg(params(ctx).id!)}`,
    save: async (ctx, name, input) =>
      ctx.s.appFederatedCredentials.create(ctx.caller, ctx.meta, await application(ctx), name, input),
    remove: async (ctx, name) =>
      ctx.s.appFederatedCredentials.delete(ctx.caller, ctx.meta, await application(ctx), name),
    view: (ctx) => detailPage(ctx),
  });
  registerSignInActions<ServicePrincipalView>(r, {
    path: '/app-registrations',
    name: (sp) => sp.displayName,
    show: (ctx, id) => ctx.s.directory.show(ctx.caller, id),
    setEnabled: (ctx, id, enabled) => ctx.s.directory.setEnabled(ctx.caller, ctx.meta, id, enabled),
    remove: (ctx, id) => ctx.s.directory.delete(ctx.caller, ctx.meta, id),
    view: (ctx) => detailPage(ctx),
  });
}
