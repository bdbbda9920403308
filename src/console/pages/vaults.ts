import { ROLE_ASSIGNMENT_ACTIONS } from '../../access/assignments-service.js';
import { findRole } from '../../access/roles.js';
import { LatchkeyError } from '../../errors/index.js';
import { newGuid } from '../../lib/ids.js';
import { VAULT_LIMITS } from '../../vault/model.js';
import {
  actionButton,
  badge,
  checkbox,
  confirmed,
  copyable,
  dangerForm,
  dataTable,
  input,
  integer,
  isOn,
  postForm,
  props,
  required,
  // duplicate-ok: an import list (the same names imported by several pages), not code to share
  section,
  seg,
  text,
  time,
} from '../components.js';
import { type ConsoleContext, done, type PageResult, params, typed } from '../context.js';
import { html } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { emptyText, listAccess, VAULT_LIST_ACCESS } from './access-hint.js';
import { filteredEmpty, listFilter, resourceGroupSelect, resourceListHead, subscription } from './shared.js';
import { controlVault, VAULTS, vaultBase, vaultHeader } from './vault-common.js';

async function listPage(ctx: ConsoleContext): Promise<PageResult> {
  const sub = subscription(ctx);
  const all = await ctx.s.vaults.list(ctx.caller, sub);
  const access = await listAccess(ctx, VAULT_LIST_ACCESS, all.length);
  const filter = listFilter(ctx, { action: VAULTS, id: 'vault-search', what: 'key vaults' });
  const list = all.filter((v) => filter.matches(v.name, v.resourceGroup));
  const deleted = await section(async () => {
    const rows = await ctx.s.vaults.listDeleted(ctx.caller, sub);
    return dataTable({
      caption: 'Deleted vaults (recoverable until their purge date)',
      id: 'deleted-vaults',
      rows,
      empty: 'No deleted vaults.',
      columns: [
        { label: 'Name', cell: (v) => v.name },
        { label: 'Deleted', cell: (v) => time(v.deletedAt) },
        { label: 'Purged on', cell: (v) => time(v.scheduledPurgeAt) },
        { label: 'Purge protection', cell: (v) => badge(v.enablePurgeProtection, 'On', 'Off') },
        {
          label: 'Actions',
          cell: (v) => {
            const b = `/console/deleted-vaults/${seg(v.location)}/${seg(v.name)}`;
            return html`<div class="actions">${actionButton(ctx, `${b}/recover`, 'Recover')}</div>
${v.enablePurgeProtection ? html`<p class="muted">Purge protection: purged automatically on the date above.</p>` : dangerForm(ctx, `${b}/purge`, { id: `purge-${v.name}`, button: 'Purge', confirmText: `Purge ${v.name} and everything in it now. This cannot be undone.` })}`;
          },
        },
      ],
    });
  });
  const policies = typed(ctx, 'model', 16) === 'policies';
  const create = postForm(
    ctx,
    VAULTS,
    html`<div class="form-row">${input({
      id: 'vault-name',
      name: 'name',
      label: 'Name',
      required: true,
      maxLength: 24,
      value: typed(ctx, 'name', 24),
      hint: '3–24 letters, digits and hyphens, starting with a letter. Unique in this installation.',
    })}
${await resourceGroupSelect(ctx, 'vault-rg')}</div>
<fieldset><legend>Permission model</legend>
<div class="check"><input type="radio" id="model-rbac" name="model" value="rbac"${policies ? '' : html` checked`}><label for="model-rbac">Azure role-based access control (recommended)<span class="hint">Grant roles such as Key Vault Secrets User in Access control (IAM).</span></label></div>
<div class="check"><input type="radio" id="model-policies" name="model" value="policies"${policies ? html` checked` : ''}><label for="model-policies">Vault access policies<span class="hint">Grant per-identity permissions in the vault's Access policies.</span></label></div>
</fieldset>
${input({
  id: 'vault-retention',
  name: 'retention',
  label: 'Days to retain deleted vaults and objects',
  type: 'number',
  value: typed(ctx, 'retention', 3, '90'),
  min: VAULT_LIMITS.retentionMinDays,
  max: VAULT_LIMITS.retentionMaxDays,
  required: true,
  hint: `${VAULT_LIMITS.retentionMinDays}–${VAULT_LIMITS.retentionMaxDays} days.`,
})}
${checkbox({
  id: 'vault-purge-protection',
  name: 'purgeProtection',
  label: 'Purge protection',
  checked: isOn(ctx.failedForm ?? {}, 'purgeProtection'),
  hint: 'Deleted vaults and objects cannot be purged before the retention period ends. Cannot be turned off later.',
})}
${checkbox({
  id: 'vault-self-admin',
  name: 'selfAdmin',
  label: 'Give me the Key Vault Administrator role on it',
  checked: !ctx.failedForm || isOn(ctx.failedForm, 'selfAdmin'),
  hint: 'With role-based access control, so you can add secrets and keys at once (when you may assign roles there).',
})}
<button type="submit" class="btn-primary">Create vault</button>`,
  );
  // duplicate-ok: the same result shape as the apps and identities list pages (title, nav, then the
  // options of resourceListHead and dataTable, the shared helpers): each page its own texts and columns.
  return {
    title: 'Key vaults',
    nav: 'vaults',
    body: html`${resourceListHead({
      heading: 'Key vaults',
      lead: html`Vaults hold secrets and keys, reached at <span class="mono">https://{name}.${ctx.s.config.vaultDomain}</span> by the Azure Key Vault clients.`,
      access,
      createLabel: 'Create a key vault',
      create,
      open: all.length === 0 || !!ctx.failedForm,
      filter,
    })}
${dataTable({
  caption: 'Key vaults',
  id: 'vaults',
  rows: list,
  empty: filteredEmpty(filter.term, 'key vault', emptyText(access, 'key vaults', 'Create one above.')),
  columns: [
    { label: 'Name', cell: (v) => html`<a href="${vaultBase(v)}">${v.name}</a>` },
    { label: 'Resource group', cell: (v) => v.resourceGroup },
    { label: 'Permission model', cell: (v) => (v.enableRbacAuthorization ? 'RBAC' : 'Access policies') },
    { label: 'Retention', cell: (v) => `${v.softDeleteRetentionInDays} days` },
    { label: 'Purge protection', cell: (v) => badge(v.enablePurgeProtection, 'On', 'Off') },
    {
      label: 'Actions',
      cell: (v) =>
        actionButton(ctx, `${vaultBase(v)}/delete`, 'Delete', {
          danger: true,
          confirm: `Delete vault ${v.name}? It stays recoverable for ${v.softDeleteRetentionInDays} days.`,
        }),
    },
  ],
})}
<h2>Deleted vaults</h2>
${deleted}`,
  };
}

async function overviewPage(ctx: ConsoleContext): Promise<PageResult> {
  const v = await controlVault(ctx);
  return {
    title: v.name,
    nav: 'vaults',
    body: html`${vaultHeader(v, 'overview')}
${props([
  ['Vault URI', copyable('vault-uri', `${ctx.s.vaultBaseUrl(v.nameLower)}/`)],
  ['Resource ID', copyable('vault-resource-id', v.armId)],
  ['Resource group', v.resourceGroup],
  [
    'Permission model',
    v.enableRbacAuthorization ? 'Azure role-based access control' : 'Vault access policies',
  ],
  ['Soft-delete retention', `${v.softDeleteRetentionInDays} days`],
  ['Purge protection', badge(v.enablePurgeProtection, 'On', 'Off')],
  ['Created', time(v.createdAt)],
])}
<h2>Settings</h2>
${postForm(
  ctx,
  `${vaultBase(v)}/properties`,
  html`<fieldset><legend>Permission model</legend>
<div class="check"><input type="radio" id="set-model-rbac" name="model" value="rbac"${v.enableRbacAuthorization ? html` checked` : ''}><label for="set-model-rbac">Azure role-based access control</label></div>
<div class="check"><input type="radio" id="set-model-policies" name="model" value="policies"${v.enableRbacAuthorization ? '' : html` checked`}><label for="set-model-policies">Vault access policies</label></div>
</fieldset>
${v.enablePurgeProtection ? html`<p class="muted">Purge protection is on and cannot be turned off.</p>` : checkbox({ id: 'set-purge-protection', name: 'purgeProtection', label: 'Turn on purge protection (irreversible)' })}
<button type="submit">Save</button>`,
)}
<h2>Delete</h2>
${postForm(
  ctx,
  `${vaultBase(v)}/delete`,
  html`<p>The vault and its objects stay recoverable for ${v.softDeleteRetentionInDays} days.</p><button type="submit" class="btn-danger">Delete vault</button>`,
  { confirm: `Delete vault ${v.name}?` },
)}`,
  };
}

const KEY_VAULT_ADMINISTRATOR = findRole('Key Vault Administrator')!.id;

export function registerVaultPages(r: ConsoleRouter): void {
  r.page('/vaults', listPage);
  r.action(
    '/vaults',
    async (ctx, form) => {
      const name = required(form, 'name', 'The vault name', 24);
      const model = text(form, 'model', 16) || 'rbac';
      if (model !== 'rbac' && model !== 'policies')
        throw new LatchkeyError('BadParameter', 'Choose a permission model.');
      // Create only: a PUT over an existing vault would change it.
      const existing = await ctx.s.vaults.byName(name.toLowerCase().slice(0, 64));
      if (existing && existing.deletedAt === null)
        throw new LatchkeyError('Conflict', `The vault name '${name}' is already in use.`);
      const { vault } = await ctx.s.vaults.createOrUpdate(
        ctx.caller,
        ctx.meta,
        {
          subscriptionId: subscription(ctx),
          resourceGroup: required(form, 'resourceGroup', 'The resource group', 90),
          name,
        },
        {
          enableRbacAuthorization: model === 'rbac',
          softDeleteRetentionInDays: integer(
            form,
            'retention',
            'The retention',
            VAULT_LIMITS.retentionMinDays,
            VAULT_LIMITS.retentionMaxDays,
          ),
          ...(isOn(form, 'purgeProtection') ? { enablePurgeProtection: true } : {}),
        },
      );
      // As `latchkey keyvault create`: the creator of an RBAC vault gets a data role at once when it
      // may assign roles there (in Azure it would have to assign itself one first).
      let granted = '';
      if (model === 'rbac' && isOn(form, 'selfAdmin')) {
        if (await ctx.s.access.allows(ctx.caller, ROLE_ASSIGNMENT_ACTIONS.write, vault.armId)) {
          await ctx.s.roleAssignments
            .create(ctx.caller, ctx.meta, vault.armId, newGuid(), {
              roleDefinitionId: KEY_VAULT_ADMINISTRATOR,
              principalId: ctx.caller.oid,
            })
            .catch((e) => {
              if (!(e instanceof LatchkeyError && e.status === 409)) throw e;
            });
          granted = ' You have the Key Vault Administrator role on it.';
        } else
          granted =
            ' You may not assign roles on it, so you have no data access yet: ask an Owner for Key Vault Secrets Officer (or Key Vault Administrator) on it.';
      }
      return done(vaultBase(vault), `Vault ${vault.name} created.${granted}`);
    },
    listPage,
  );
  r.page('/vaults/:rg/:name', overviewPage);
  r.action(
    '/vaults/:rg/:name/properties',
    async (ctx, form) => {
      const v = await controlVault(ctx);
      const model = text(form, 'model', 16);
      await ctx.s.vaults.patch(
        ctx.caller,
        ctx.meta,
        { subscriptionId: v.subscriptionId, resourceGroup: v.resourceGroup, name: v.name },
        {
          ...(model ? { enableRbacAuthorization: model === 'rbac' } : {}),
          ...(isOn(form, 'purgeProtection') ? { enablePurgeProtection: true } : {}),
        },
      );
      return done(vaultBase(v), 'Vault settings saved.');
    },
    overviewPage,
  );
  r.action(
    '/vaults/:rg/:name/delete',
    async (ctx) => {
      const p = params(ctx);
      const existed = await ctx.s.vaults.delete(ctx.caller, ctx.meta, {
        subscriptionId: subscription(ctx),
        resourceGroup: p.rg!,
        name: p.name!,
      });
      if (!existed) throw new LatchkeyError('ResourceNotFound', `Vault ${p.name} was not found.`);
      return done(VAULTS, `Vault ${p.name} deleted. It can be recovered below.`);
    },
    listPage,
  );
  r.action(
    '/deleted-vaults/:location/:name/recover',
    async (ctx) => {
      const p = params(ctx);
      const sub = subscription(ctx);
      const d = await ctx.s.vaults.getDeleted(ctx.caller, sub, p.location!, p.name!);
      await ctx.s.vaults.createOrUpdate(
        ctx.caller,
        ctx.meta,
        { subscriptionId: sub, resourceGroup: d.resourceGroup, name: d.name },
        { createMode: 'recover' },
      );
      return done(vaultBase(d), `Vault ${d.name} recovered.`);
    },
    listPage,
  );
  r.action(
    '/deleted-vaults/:location/:name/purge',
    confirmed(async (ctx) => {
      const p = params(ctx);
      await ctx.s.vaults.purgeDeleted(ctx.caller, ctx.meta, subscription(ctx), p.location!, p.name!);
      return done(VAULTS, `Vault ${p.name} purged.`);
    }),
    listPage,
  );
}
