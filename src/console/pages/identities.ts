import { copyable, dangerForm, dataTable, input, postForm, required, seg, time } from '../components.js';
import { type ConsoleContext, done, type FormInput, type PageResult, params, typed } from '../context.js';
import { html } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { emptyText, IDENTITY_LIST_ACCESS, listAccess } from './access-hint.js';
import { federatedCredentialsSection, registerFederatedCredentialActions } from './federated-credentials.js';
import { addAssignmentLinks } from './iam.js';
import {
  filteredEmpty,
  listFilter,
  // duplicate-ok: an import list (the same names imported by several pages), not code to share
  registerResourceDelete,
  resourceGroupSelect,
  resourceListHead,
  subscription,
} from './shared.js';

const LIST = '/console/identities';

async function listPage(ctx: ConsoleContext): Promise<PageResult> {
  const sub = subscription(ctx);
  const all = await ctx.s.userIdentities.list(ctx.caller, sub);
  const access = await listAccess(ctx, IDENTITY_LIST_ACCESS, all.length);
  const filter = listFilter(ctx, { action: LIST, id: 'identity-search', what: 'identities' });
  const list = all.filter((u) => filter.matches(u.name, u.resourceGroup, u.clientId, u.principalId));
  const create = postForm(
    ctx,
    LIST,
    html`${input({
      id: 'identity-name',
      name: 'name',
      label: 'Name',
      required: true,
      maxLength: 128,
      value: typed(ctx, 'name', 128),
      hint: '3–128 letters, digits, hyphens and underscores.',
    })}
${await resourceGroupSelect(ctx, 'identity-rg')}
<button type="submit" class="btn-primary">Create identity</button>`,
  );
  return {
    title: 'Managed identities',
    nav: 'identities',
    body: html`${resourceListHead({
      heading: 'User-assigned managed identities',
      lead: html`A user-assigned identity is a standalone identity that several apps can share. Grant it roles like any principal; attach it to apps on their Identity tab. On an identity's page, federated credentials let workloads outside Latchkey sign in as it, with tokens of <a href="/console/settings/federation">the tenant's allowed issuers</a>.`,
      access,
      createLabel: 'Create a user-assigned identity',
      create,
      open: all.length === 0,
      filter,
    })}
${dataTable({
  caption: 'User-assigned identities',
  id: 'identities',
  rows: list,
  empty: filteredEmpty(
    filter.term,
    'identity',
    emptyText(access, 'user-assigned identities', 'Create one above.'),
  ),
  columns: [
    {
      label: 'Name',
      cell: (u) =>
        html`<strong><a href="${LIST}/${seg(u.resourceGroup)}/${seg(u.name)}">${u.name}</a></strong><br><span class="muted">${u.resourceGroup}</span>`,
    },
    {
      label: 'IDs',
      cell: (u) => html`<span class="muted">Client ID</span> ${copyable(`client-${u.name}`, u.clientId)}<br>
<span class="muted">Principal ID</span> ${copyable(`principal-${u.name}`, u.principalId)}<br>
<span class="muted">Resource ID</span> ${copyable(`resource-${u.name}`, u.armId)}`,
    },
    { label: 'Created', cell: (u) => time(u.createdAt) },
    {
      label: 'Actions',
      cell: (u) =>
        html`<p>${addAssignmentLinks(u.principalId, u.resourceGroup, `add-role-${u.name}`)}</p>${dangerForm(
          ctx,
          `${LIST}/${seg(u.resourceGroup)}/${seg(u.name)}/delete`,
          {
            id: `delete-${u.name}`,
            button: 'Delete',
            confirmText: `Delete ${u.name}: apps using it lose it, and its role assignments are removed.`,
          },
        )}`,
    },
  ],
})}`,
  };
}

/** One identity: its federated identity credentials (docs/federation.md), listed, added, deleted. */
async function identityPage(ctx: ConsoleContext): Promise<PageResult> {
  const { here, path, name, rg } = ficTarget(ctx);
  const creds = await ctx.s.federatedCredentials.list(ctx.caller, path);
  return {
    title: `Identity ${name}`,
    nav: 'identities',
    body: html`<h1>Identity ${name}</h1>
<p class="lead"><a href="${LIST}">Managed identities</a> / ${rg} / ${name}</p>
${federatedCredentialsSection(
  ctx,
  here,
  creds,
  "A workload outside Latchkey (a CI job, a Kubernetes pod) exchanges its own OIDC token for this identity's token when the token's issuer, subject and audience match one of these.",
)}`,
  };
}

/** The identity page of the request and the identity's path for the credentials service. */
const ficTarget = (ctx: ConsoleContext) => {
  const p = params(ctx);
  return {
    name: p.name!,
    rg: p.rg!,
    here: `${LIST}/${seg(p.rg!)}/${seg(p.name!)}`,
    path: { sub: subscription(ctx), rg: p.rg!, identity: p.name! },
  };
};

export function registerIdentityPages(r: ConsoleRouter): void {
  r.page('/identities', listPage);
  r.page('/identities/:rg/:name', identityPage);
  registerFederatedCredentialActions(r, {
    path: '/identities/:rg/:name',
    here: (ctx) => ficTarget(ctx).here,
    save: (ctx, name, input) =>
      ctx.s.federatedCredentials.createOrUpdate(
        ctx.caller,
        ctx.meta,
        { ...ficTarget(ctx).path, name },
        input,
      ),
    remove: (ctx, name) =>
      ctx.s.federatedCredentials.delete(ctx.caller, ctx.meta, { ...ficTarget(ctx).path, name }),
    view: identityPage,
  });
  r.action(
    '/identities',
    async (ctx, form: FormInput) => {
      const name = required(form, 'name', 'The name', 128);
      const rg = required(form, 'resourceGroup', 'The resource group', 90);
      const { identity } = await ctx.s.userIdentities.createOrUpdate(ctx.caller, ctx.meta, {
        subscriptionId: subscription(ctx),
        resourceGroup: rg,
        name,
      });
      return done(LIST, `Identity ${identity.name} created (client ID ${identity.clientId}).`);
    },
    listPage,
  );
  registerResourceDelete(r, '/identities/:rg/:name', {
    noun: 'Identity',
    list: LIST,
    remove: (ctx, sub, rg, name) => ctx.s.userIdentities.delete(ctx.caller, ctx.meta, sub, rg, name),
    view: listPage,
  });
}
