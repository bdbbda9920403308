import type { Caller } from '../../access/caller.js';
import { LatchkeyError } from '../../errors/index.js';
import { KeyVaultReferenceError, parseKeyVaultReference, referenceUrl } from '../../lib/kv-references.js';
import { identityType, identityTypeOf } from '../../management/app-identity.js';
import type { App } from '../../management/apps.js';
import { keyVaultIdentity } from '../../management/host-agent.js';
import {
  actionButton,
  checkbox,
  confirmed,
  copyable,
  dangerForm,
  dataTable,
  input,
  isOn,
  mono,
  postForm,
  props,
  // duplicate-ok: an import list (the same names imported by several pages), not code to share
  required,
  section,
  seg,
  select,
  text,
  time,
} from '../components.js';
import { type ConsoleContext, done, type PageResult, params } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { breadcrumbs, tabs } from '../layout.js';
import type { ConsoleRouter } from '../routes.js';
import { APP_LIST_ACCESS, emptyText, listAccess } from './access-hint.js';
import { ADD_ASSIGNMENT, addAssignmentLinks } from './iam.js';
import {
  filteredEmpty,
  listFilter,
  registerResourceDelete,
  resourceGroupSelect,
  resourceListHead,
  subscription,
} from './shared.js';

const LIST = '/console/apps';
const KV_REFERENCE_RE = /^@Microsoft\.KeyVault\(.*\)$/;
/** At most this many references get a status on one page view (each is an access decision and a lookup). */
export const MAX_REFERENCE_STATUSES = 50;
const base = (a: Pick<App, 'resourceGroup' | 'name'>) => `${LIST}/${seg(a.resourceGroup)}/${seg(a.name)}`;

async function loadApp(ctx: ConsoleContext): Promise<App> {
  const p = params(ctx);
  return ctx.s.apps.get(ctx.caller, subscription(ctx), p.rg!, p.name!);
}

function appHeader(a: App, current: 'overview' | 'identity' | 'settings'): SafeHtml {
  return html`${breadcrumbs([{ label: 'Apps', href: LIST }, { label: a.name }])}
<h1>${a.name}</h1>
<p class="lead">App in resource group ${a.resourceGroup}</p>
${tabs([
  { label: 'Overview', href: base(a), current: current === 'overview' },
  { label: 'Identity', href: `${base(a)}/identity`, current: current === 'identity' },
  { label: 'Settings', href: `${base(a)}/settings`, current: current === 'settings' },
])}`;
}

async function listPage(ctx: ConsoleContext): Promise<PageResult> {
  const all = await ctx.s.apps.list(ctx.caller, subscription(ctx));
  const access = await listAccess(ctx, APP_LIST_ACCESS, all.length);
  const filter = listFilter(ctx, { action: LIST, id: 'app-search', what: 'apps' });
  const list = all.filter((a) => filter.matches(a.name, a.resourceGroup));
  const create = postForm(
    ctx,
    LIST,
    html`${input({ id: 'app-name', name: 'name', label: 'Name', required: true, maxLength: 60, hint: '2–60 letters, digits and hyphens.' })}
${await resourceGroupSelect(ctx, 'app-rg')}
${checkbox({
  id: 'app-system',
  name: 'systemAssigned',
  label: 'System-assigned managed identity',
  hint: 'An identity created with the app and deleted with it.',
})}
<button type="submit" class="btn-primary">Create app</button>`,
  );
  return {
    title: 'Apps',
    nav: 'apps',
    body: html`${resourceListHead({
      heading: 'Apps',
      lead: html`Workloads that get tokens from the identity endpoint of the host they run on, with no secret of their own.`,
      access,
      createLabel: 'Create an app',
      create,
      open: all.length === 0,
      filter,
    })}
${dataTable({
  caption: 'Apps',
  id: 'apps',
  rows: list,
  empty: filteredEmpty(filter.term, 'app', emptyText(access, 'apps', 'Create one above.')),
  columns: [
    { label: 'Name', cell: (a) => html`<a href="${base(a)}">${a.name}</a>` },
    { label: 'Resource group', cell: (a) => a.resourceGroup },
    { label: 'Identity', cell: (a) => identityType(a) },
    { label: 'Created', cell: (a) => time(a.createdAt) },
  ],
})}`,
  };
}

async function overviewPage(ctx: ConsoleContext): Promise<PageResult> {
  const a = await loadApp(ctx);
  const host = await ctx.s.hosts.readableById(ctx.caller, a.hostId);
  return {
    title: a.name,
    nav: 'apps',
    body: html`${appHeader(a, 'overview')}
${props([
  ['Resource ID', copyable('app-resource-id', a.armId)],
  ['Host', host ? host.name : mono(a.hostId)],
  ['Identity', identityType(a)],
  ['Key Vault references use', a.keyVaultReferenceIdentity ?? 'SystemAssigned'],
  ['Created', time(a.createdAt)],
])}
<h2>Delete</h2>
${dangerForm(ctx, `${base(a)}/delete`, {
  id: 'confirm-delete-app',
  button: 'Delete app',
  confirmText: `Delete ${a.name}, its settings and its system-assigned identity (with that identity's role assignments). This cannot be undone.`,
})}`,
  };
}

async function identityPage(ctx: ConsoleContext): Promise<PageResult> {
  const a = await loadApp(ctx);
  const available = await section(async () => {
    const all = await ctx.s.userIdentities.list(ctx.caller, subscription(ctx));
    const attached = new Set(a.userIdentities.map((u) => u.armId.toLowerCase()));
    const free = all.filter((u) => !attached.has(u.armId.toLowerCase()));
    if (free.length === 0)
      return html`<p class="empty">No other user-assigned identity to attach. <a href="/console/identities">Create one</a>.</p>`;
    return postForm(
      ctx,
      `${base(a)}/identity/user`,
      html`${select({
        id: 'attach-identity',
        name: 'identity',
        label: 'User-assigned identity',
        options: free.map((u) => ({ value: u.armId, label: `${u.name} (${u.resourceGroup})` })),
      })}<button type="submit">Attach</button>`,
    );
  });
  const system = a.systemPrincipalId
    ? html`<p><span class="badge badge-ok">On</span> The app has its own identity.</p>
${props([
  ['Object (principal) ID', copyable('system-principal-id', a.systemPrincipalId)],
  ['Client ID', copyable('system-client-id', a.systemClientId ?? '')],
])}
<p>${addAssignmentLinks(a.systemPrincipalId, a.resourceGroup)}</p>
<p><a class="btn btn-danger" href="${base(a)}/identity/system-off">Turn off…</a></p>`
    : html`<p><span class="badge badge-off">Off</span> The app has no system-assigned identity.</p>
${postForm(ctx, `${base(a)}/identity/system`, html`<button type="submit" class="btn-primary">Turn on</button>`)}`;
  return {
    title: `${a.name} · Identity`,
    nav: 'apps',
    body: html`${appHeader(a, 'identity')}
<h2 id="system-assigned">System assigned</h2>
<p class="lead">An identity tied to this app: created with it, deleted with it. Grant it access to vaults in their Access control (IAM) page.</p>
${system}
<h2 id="user-assigned">User assigned</h2>
${dataTable({
  caption: 'Attached user-assigned identities',
  id: 'user-identities',
  rows: a.userIdentities,
  empty: 'No user-assigned identity is attached.',
  columns: [
    { label: 'Name', cell: (u) => u.name },
    { label: 'Client ID', cell: (u) => mono(u.clientId) },
    { label: 'Principal ID', cell: (u) => mono(u.principalId) },
    {
      label: 'Actions',
      cell: (u) =>
        html`<div class="actions"><a class="btn btn-small" href="${ADD_ASSIGNMENT}?member=${u.principalId}">Add role assignment</a>${actionButton(
          ctx,
          `${base(a)}/identity/user/detach`,
          'Detach',
          { hidden: { identity: u.armId }, confirm: `Detach ${u.name} from ${a.name}?` },
        )}</div>`,
    },
  ],
})}
<h3>Attach an identity</h3>
${available}`,
  };
}

async function systemOffPage(ctx: ConsoleContext): Promise<PageResult> {
  const a = await loadApp(ctx);
  if (!a.systemPrincipalId)
    throw new LatchkeyError('BadParameter', 'The system-assigned identity is already off.');
  return {
    title: `${a.name} · Turn off the system-assigned identity`,
    nav: 'apps',
    body: html`${appHeader(a, 'identity')}
<h2>Turn off the system-assigned identity?</h2>
<div class="alert alert-warning">
<strong>What turning it off does</strong>
<p>The identity (object ID <span class="mono">${a.systemPrincipalId}</span>) is deleted from the directory, now:</p>
<ul>
<li>every role assignment granted to it is removed, and vault access policies naming it stop matching anything;</li>
<li>the app can no longer get tokens for it, and tokens it already holds are refused at once;</li>
<li>Key Vault references in the app's settings that use it stop resolving.</li>
</ul>
<p>Turning it on again creates a <em>new</em> identity with a new object ID; nothing granted to the old one comes back.</p>
</div>
${dangerForm(ctx, `${base(a)}/identity/system-off`, {
  id: 'confirm-system-off',
  button: 'Turn off and delete the identity',
  confirmText: `I understand: delete the system-assigned identity of ${a.name}.`,
})}
<p><a href="${base(a)}/identity">Cancel</a></p>`,
  };
}

type ReferenceStatus = { ok: boolean; text: string };

/**
 * What App Service would show for a Key Vault reference: decided as the app's Key Vault reference
 * identity (the access decision and a metadata lookup; the value is never read). Only called once
 * the signed-in user was allowed to list the app's settings.
 */
async function referenceStatus(ctx: ConsoleContext, a: App, value: string): Promise<ReferenceStatus> {
  let ref: ReturnType<typeof parseKeyVaultReference>;
  try {
    ref = parseKeyVaultReference(value);
    if (ref) referenceUrl(ref, ctx.s.vaultBaseUrl('{name}'));
  } catch (e) {
    if (e instanceof KeyVaultReferenceError) return { ok: false, text: 'Invalid reference' };
    throw e;
  }
  if (!ref) return { ok: false, text: 'Invalid reference' };
  const vault = await ctx.s.vaults.byName(ref.vaultName);
  if (!vault || vault.deletedAt !== null || vault.tenantId !== ctx.tenant.id)
    return { ok: false, text: 'Vault not found' };
  const id = keyVaultIdentity(a);
  if (!id) return { ok: false, text: 'No identity' };
  const as: Caller = { tenantId: ctx.tenant.id, oid: id.principalId, appId: id.clientId, kind: 'app' };
  switch (await ctx.s.secrets.referenceStatus(as, vault, ref.secretName, ref.version)) {
    case 'resolved':
      return { ok: true, text: 'Resolved' };
    case 'notFound':
      return { ok: false, text: 'Secret not found' };
    case 'disabled':
      return { ok: false, text: 'Secret disabled' };
    case 'denied':
      return {
        ok: false,
        text: vault.enableRbacAuthorization
          ? 'Access denied (the identity lacks getSecret: grant Key Vault Secrets User)'
          : 'Access denied (the identity lacks get on secrets: add it to an access policy)',
      };
  }
}

async function settingsPage(ctx: ConsoleContext, reveal = false): Promise<PageResult> {
  const a = await loadApp(ctx);
  const { settings } = await ctx.s.apps.listSettings(
    ctx.caller,
    ctx.meta,
    subscription(ctx),
    a.resourceGroup,
    a.name,
  );
  const rows = Object.entries(settings).sort(([x], [y]) => x.localeCompare(y));
  const statuses = new Map<string, ReferenceStatus>();
  for (const [k, v] of rows.filter(([, v]) => KV_REFERENCE_RE.test(v)).slice(0, MAX_REFERENCE_STATUSES))
    statuses.set(k, await referenceStatus(ctx, a, v));
  const statusBadge = (k: string) => {
    const st = statuses.get(k);
    if (!st) return html`<span class="badge">Key Vault reference</span>`;
    return html`<span class="badge ${st.ok ? 'badge-ok' : 'badge-off'}" data-reference-status>${st.text}</span>`;
  };
  const valueCell = ([k, v]: [string, string]) =>
    KV_REFERENCE_RE.test(v)
      ? html`${statusBadge(k)} ${mono(v)}`
      : reveal
        ? mono(v)
        : html`<span class="muted">Hidden (${String(v.length)} characters)</span>`;
  return {
    title: `${a.name} · Settings`,
    nav: 'apps',
    body: html`${appHeader(a, 'settings')}
<h2>Application settings</h2>
<p class="lead">Given to the app as environment variables by <span class="mono">latchkey run</span>. A value
<span class="mono">@Microsoft.KeyVault(VaultName=shop;SecretName=db-password)</span> (or <span class="mono">SecretUri=…</span>)
is a Key Vault reference: it is resolved through the app's identity when the app starts.</p>
${dataTable({
  caption: 'Settings',
  id: 'settings',
  rows,
  empty: 'No settings yet.',
  columns: [
    { label: 'Name', cell: ([k]) => mono(k) },
    { label: 'Value', cell: valueCell },
    {
      label: 'Actions',
      cell: ([k]) =>
        actionButton(ctx, `${base(a)}/settings/delete`, 'Delete', {
          hidden: { name: k },
          danger: true,
          confirm: `Delete the setting ${k}?`,
        }),
    },
  ],
})}
${!reveal && rows.some(([, v]) => !KV_REFERENCE_RE.test(v)) ? html`<div class="actions">${actionButton(ctx, `${base(a)}/settings/reveal`, 'Show values')}</div>` : ''}
<h2>Add or change a setting</h2>
${postForm(
  ctx,
  `${base(a)}/settings`,
  html`<div class="form-row">${input({ id: 'setting-name', name: 'name', label: 'Name', required: true, maxLength: 128, mono: true })}
${input({
  id: 'setting-value',
  name: 'value',
  label: 'Value',
  maxLength: 16_384,
  mono: true,
  hint: 'A plain value or a Key Vault reference.',
})}</div>
<button type="submit" class="btn-primary">Save setting</button>`,
)}`,
  };
}

/** Applies an identity change to the app (PATCH semantics: other identities stay). */
async function patchIdentity(
  ctx: ConsoleContext,
  a: App,
  system: boolean,
  changes: Record<string, unknown> = {},
  userLeft = a.userIdentities.length,
) {
  const user = userLeft > 0;
  const type = identityTypeOf(system, user);
  await ctx.s.apps.createOrUpdate(
    ctx.caller,
    ctx.meta,
    {
      subscriptionId: a.subscriptionId,
      resourceGroup: a.resourceGroup,
      name: a.name,
      identity: { type, userAssignedIdentities: changes },
    },
    'patch',
  );
}

export function registerAppPages(r: ConsoleRouter): void {
  r.page('/apps', listPage);
  r.action(
    '/apps',
    async (ctx, form) => {
      const name = required(form, 'name', 'The name', 60);
      const rg = required(form, 'resourceGroup', 'The resource group', 90);
      const { app } = await ctx.s.apps.createOrUpdate(ctx.caller, ctx.meta, {
        subscriptionId: subscription(ctx),
        resourceGroup: rg,
        name,
        ...(isOn(form, 'systemAssigned') ? { identity: { type: 'SystemAssigned' } } : {}),
      });
      return done(`${base(app)}/identity`, `App ${app.name} created.`);
    },
    listPage,
  );
  r.page('/apps/:rg/:name', overviewPage);
  registerResourceDelete(r, '/apps/:rg/:name', {
    noun: 'App',
    list: LIST,
    remove: (ctx, sub, rg, name) => ctx.s.apps.delete(ctx.caller, ctx.meta, sub, rg, name),
    view: overviewPage,
  });
  r.page('/apps/:rg/:name/identity', identityPage);
  r.action(
    '/apps/:rg/:name/identity/system',
    async (ctx) => {
      const a = await loadApp(ctx);
      await patchIdentity(ctx, a, true);
      return done(`${base(a)}/identity`, `The system-assigned identity of ${a.name} is on.`);
    },
    identityPage,
  );
  r.page('/apps/:rg/:name/identity/system-off', systemOffPage);
  r.action(
    '/apps/:rg/:name/identity/system-off',
    confirmed(async (ctx) => {
      const a = await loadApp(ctx);
      await patchIdentity(ctx, a, false);
      return done(
        `${base(a)}/identity`,
        `The system-assigned identity of ${a.name} was turned off and deleted.`,
      );
    }),
    systemOffPage,
  );
  // Attach and detach a user-assigned identity (its ARM id in `identity`).
  for (const [path, attach] of [
    ['/apps/:rg/:name/identity/user', true],
    ['/apps/:rg/:name/identity/user/detach', false],
  ] as const) {
    r.action(
      path,
      async (ctx, form) => {
        const a = await loadApp(ctx);
        const id = required(form, 'identity', 'The identity', 600);
        const left = attach
          ? a.userIdentities.length + 1
          : a.userIdentities.filter((u) => u.armId.toLowerCase() !== id.toLowerCase()).length;
        await patchIdentity(ctx, a, !!a.systemPrincipalId, { [id]: attach ? {} : null }, left);
        const text = `Identity ${id.split('/').pop()} ${attach ? 'attached to' : 'detached from'} ${a.name}.`;
        return done(`${base(a)}/identity`, text);
      },
      identityPage,
    );
  }
  r.page('/apps/:rg/:name/settings', (ctx) => settingsPage(ctx));
  r.action(
    '/apps/:rg/:name/settings/reveal',
    async (ctx) => ({ page: await settingsPage(ctx, true) }),
    settingsPage,
  );
  const changeSettings = async (ctx: ConsoleContext, change: (s: Record<string, string>) => string) => {
    const a = await loadApp(ctx);
    const sub = subscription(ctx);
    const { settings } = await ctx.s.apps.listSettings(ctx.caller, ctx.meta, sub, a.resourceGroup, a.name);
    const next = { ...settings };
    const message = change(next);
    await ctx.s.apps.replaceSettings(ctx.caller, ctx.meta, sub, a.resourceGroup, a.name, next);
    return done(`${base(a)}/settings`, message);
  };
  r.action(
    '/apps/:rg/:name/settings',
    (ctx, form) => {
      const name = required(form, 'name', 'The setting name', 128);
      const value = text(form, 'value', 16_384, { raw: true });
      return changeSettings(ctx, (s) => {
        s[name] = value;
        return `Setting ${name} saved.`;
      });
    },
    (ctx) => settingsPage(ctx),
  );
  r.action(
    '/apps/:rg/:name/settings/delete',
    (ctx, form) => {
      const name = required(form, 'name', 'The setting name', 128);
      return changeSettings(ctx, (s) => {
        if (!Object.hasOwn(s, name)) throw new LatchkeyError('NotFound', `There is no setting ${name}.`);
        delete s[name];
        return `Setting ${name} deleted.`;
      });
    },
    (ctx) => settingsPage(ctx),
  );
}
