import { PROVISIONING_SCOPES } from '../../access/provisioning-scopes.js';
import { LatchkeyError } from '../../errors/index.js';
import type { ProvisioningKeyView } from '../../provisioning/keys.js';
import {
  checkbox,
  checked,
  dangerForm,
  dataTable,
  input,
  mono,
  postForm,
  props,
  section,
  seg,
  select,
  text,
  time,
} from '../components.js';
import { type ConsoleContext, done, type PageResult, params } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { auditEventsTable } from './shared.js';

const LIST = '/console/provisioning-keys';
const LIFETIMES = [
  { value: '3600', label: '1 hour' },
  { value: '86400', label: '1 day' },
  { value: '604800', label: '7 days' },
  { value: '2592000', label: '30 days' },
];
const GRACE = [
  { value: '0', label: 'none (the old key stops at once)' },
  { value: '3600', label: '1 hour' },
  { value: '86400', label: '1 day' },
];
const ms = (iso: string | null) => (iso ? Date.parse(iso) : null);
const stateBadge = (k: ProvisioningKeyView) =>
  html`<span class="badge ${k.state === 'active' ? 'badge-ok' : 'badge-off'}">${k.state}</span>`;

/** The value of a new key, shown in this one response only. */
const shownOnce = (id: string, key: string): SafeHtml =>
  html`<section class="alert alert-success" aria-labelledby="new-key-heading">
<strong id="new-key-heading">Provisioning key ${id} — copy it now</strong>
<p>This is the only time the key is shown. It is stored only as a hash.</p>
<pre class="secret-value" id="provisioning-key-value">${key}</pre>
<button type="button" data-copy="provisioning-key-value" hidden>Copy key</button>
</section>`;

async function listPage(ctx: ConsoleContext, created?: SafeHtml): Promise<PageResult> {
  const keys = await ctx.s.provisioningKeys.list(ctx.caller);
  const groups = ctx.subscriptionId
    ? await ctx.s.readableScopes.resourceGroups(ctx.caller, ctx.subscriptionId, 500)
    : [];
  const maxSeconds = ctx.s.config.limits.provisioningKeyMaxSeconds;
  const create = postForm(
    ctx,
    LIST,
    html`${input({ id: 'pk-name', name: 'displayName', label: 'Display name', maxLength: 120 })}
<fieldset><legend>Scopes (what the key may do)</legend><div class="grid-checks">${Object.keys(
      PROVISIONING_SCOPES,
    ).map((s) =>
      checkbox({ id: `pk-scope-${s.replace(':', '-')}`, name: 'scopes', value: s, label: s }),
    )}</div></fieldset>
<div class="form-row">${select({
      id: 'pk-expires',
      name: 'expiresIn',
      label: 'Expires in',
      options: LIFETIMES.filter((l) => Number(l.value) <= maxSeconds),
      value: '86400',
    })}
${input({ id: 'pk-max-uses', name: 'maxUses', label: 'Maximum uses (optional)', type: 'number', min: 1, max: 1_000_000 })}
${select({
  id: 'pk-rg',
  name: 'resourceGroup',
  label: 'Limit to resource group (optional)',
  options: [{ value: '', label: 'No limit' }, ...groups.map((g) => ({ value: g.id, label: g.name }))],
})}</div>
${input({ id: 'pk-cidrs', name: 'allowedCidrs', label: 'Allowed addresses (optional)', maxLength: 1000, hint: 'CIDR ranges separated by commas, e.g. 10.0.0.0/8, 192.0.2.7.' })}
<button type="submit" class="btn-primary">Create key</button>`,
  );
  return {
    title: 'Provisioning keys',
    nav: 'provisioning',
    body: html`<h1>Provisioning keys</h1>
<p class="lead">Short-lived keys for hosts and pipelines: limited to their scopes, never more than that, and audited on every use.</p>
${created ?? ''}
<details class="panel"${keys.length === 0 ? html` open` : ''}><summary>Create a provisioning key</summary>${create}</details>
${dataTable({
  caption: 'Provisioning keys',
  id: 'provisioning-keys',
  rows: keys,
  empty: 'No provisioning keys.',
  columns: [
    {
      label: 'Key',
      cell: (k) => html`<a href="${LIST}/${seg(k.id)}">${k.displayName || k.id}</a><br>${mono(k.id)}`,
    },
    { label: 'Scopes', cell: (k) => k.scopes.join(', ') },
    { label: 'State', cell: stateBadge },
    { label: 'Expires', cell: (k) => time(ms(k.expiresOn)) },
    { label: 'Uses', cell: (k) => `${k.uses}${k.maxUses !== null ? ` of ${k.maxUses}` : ''}` },
    { label: 'Last used', cell: (k) => time(ms(k.lastUsedOn)) },
  ],
})}`,
  };
}

async function keyPage(ctx: ConsoleContext, created?: SafeHtml): Promise<PageResult> {
  const id = params(ctx).id!;
  const k = await ctx.s.provisioningKeys.show(ctx.caller, id);
  const usage = await section(async () => {
    const page = await ctx.s.auditQueries.list(ctx.caller, ctx.meta, { provisioningKeyId: k.id, limit: 20 });
    return auditEventsTable({
      caption: 'Recent use and lifecycle events (newest first)',
      id: 'key-usage',
      rows: page.events,
      empty: 'The key has not been used yet.',
      who: { label: 'Address', cell: (e) => mono(e.clientIp) },
    });
  });
  const active = k.state === 'active';
  return {
    title: `Provisioning key ${k.id}`,
    nav: 'provisioning',
    body: html`<nav class="breadcrumbs" aria-label="Breadcrumb"><ol><li><a href="${LIST}">Provisioning keys</a></li><li><span aria-current="page">${k.id}</span></li></ol></nav>
<h1>${k.displayName || k.id}</h1>
${created ?? ''}
${props([
  ['ID', mono(k.id)],
  ['State', stateBadge(k)],
  ['Scopes', k.scopes.join(', ')],
  ['Created', html`${time(ms(k.createdOn))}${k.createdBy ? html` by ${mono(k.createdBy)}` : ''}`],
  ['Expires', time(ms(k.expiresOn))],
  ['Uses', `${k.uses}${k.maxUses !== null ? ` of ${k.maxUses}` : ' (no limit)'}`],
  ['Last used', time(ms(k.lastUsedOn))],
  ['Allowed addresses', k.allowedCidrs.length ? k.allowedCidrs.join(', ') : 'any'],
  ['Resource group', k.resourceGroup ? mono(k.resourceGroup) : 'any'],
  ...(k.graceUntil ? ([['Valid until (grace)', time(ms(k.graceUntil))]] as [string, SafeHtml][]) : []),
  ...(k.successorId
    ? ([['Replaced by', html`<a href="${LIST}/${seg(k.successorId)}">${k.successorId}</a>`]] as [
        string,
        SafeHtml,
      ][])
    : []),
])}
${
  active
    ? html`<h2>Rotate</h2>
${postForm(
  ctx,
  `${LIST}/${seg(k.id)}/rotate`,
  html`${select({ id: 'pk-grace', name: 'grace', label: 'Keep the old key working for', options: GRACE, value: '3600' })}<button type="submit">Rotate key</button>`,
)}
<h2>Revoke</h2>
${dangerForm(ctx, `${LIST}/${seg(k.id)}/revoke`, {
  id: 'confirm-revoke',
  button: 'Revoke key',
  confirmText: 'Revoke the key now: every further use is refused. This cannot be undone.',
})}`
    : ''
}
<h2>Usage</h2>
${usage}`,
  };
}

export function registerProvisioningPages(r: ConsoleRouter): void {
  r.page('/provisioning-keys', (ctx) => listPage(ctx));
  r.action(
    '/provisioning-keys',
    async (ctx, form) => {
      const scopes = checked(form, 'scopes', 20);
      if (scopes.length === 0) throw new LatchkeyError('BadParameter', 'Choose at least one scope.');
      const expires = LIFETIMES.find((l) => l.value === text(form, 'expiresIn', 12));
      if (!expires) throw new LatchkeyError('BadParameter', 'Choose when the key expires.');
      const maxUses = text(form, 'maxUses', 8);
      if (maxUses && !/^\d{1,7}$/.test(maxUses))
        throw new LatchkeyError('BadParameter', 'Maximum uses must be a whole number.');
      const cidrs = text(form, 'allowedCidrs', 1000)
        .split(',')
        .map((c) => c.trim())
        .filter(Boolean);
      const rg = text(form, 'resourceGroup', 300);
      const displayName = text(form, 'displayName', 120);
      const k = await ctx.s.provisioningKeys.create(ctx.caller, ctx.meta, {
        scopes,
        expiresInSeconds: Number(expires.value),
        ...(displayName ? { displayName } : {}),
        ...(maxUses ? { maxUses: Number(maxUses) } : {}),
        ...(cidrs.length ? { allowedCidrs: cidrs } : {}),
        ...(rg ? { resourceGroup: rg } : {}),
      });
      return { page: await listPage(ctx, shownOnce(k.id, k.key)) };
    },
    (ctx) => listPage(ctx),
  );
  r.page('/provisioning-keys/:id', (ctx) => keyPage(ctx));
  r.action(
    '/provisioning-keys/:id/rotate',
    async (ctx, form) => {
      const grace = GRACE.find((g) => g.value === text(form, 'grace', 12));
      if (!grace) throw new LatchkeyError('BadParameter', 'Choose a grace period.');
      const next = await ctx.s.provisioningKeys.rotate(ctx.caller, ctx.meta, params(ctx).id!, {
        graceSeconds: Number(grace.value),
      });
      return { page: await listPage(ctx, shownOnce(next.id, next.key)) };
    },
    (ctx) => keyPage(ctx),
  );
  r.action(
    '/provisioning-keys/:id/revoke',
    async (ctx, form) => {
      if (form.confirm !== 'yes')
        throw new LatchkeyError('BadParameter', 'Tick the confirmation box to revoke the key.');
      const k = await ctx.s.provisioningKeys.revoke(ctx.caller, ctx.meta, params(ctx).id!);
      return done(`${LIST}/${seg(k.id)}`, `Key ${k.id} revoked.`);
    },
    (ctx) => keyPage(ctx),
  );
}
