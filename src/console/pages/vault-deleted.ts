import type { ObjectRecord } from '../../vault/model.js';
import { VAULT_LIMITS, type Vault } from '../../vault/model.js';
import type { ObjectCallContext, Page } from '../../vault/objects.js';
import { actionButton, confirmed, dangerForm, dataTable, postForm, seg, time } from '../components.js';
import { type ConsoleContext, done, type PageResult, params, type View } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { dataVault, refusedActionOffer, vaultBase, vaultHeader } from './vault-common.js';

/**
 * What the Secrets and Keys pages share: soft delete of an object, and the
 * deleted objects of a vault with recover and purge (purge hidden, and
 * refused by the service, when the vault has purge protection). The service
 * calls are the vault's own (objects.ts), authorized as the data plane is.
 */

/** The lifecycle calls of secrets and keys (objects.ts `createObjectLifecycle`). */
export interface SoftDeletable {
  delete(ctx: ObjectCallContext, name: string): Promise<ObjectRecord>;
  listDeleted(ctx: ObjectCallContext, opts: { max?: number }): Promise<Page<ObjectRecord>>;
  recover(ctx: ObjectCallContext, name: string): Promise<ObjectRecord>;
  purge(ctx: ObjectCallContext, name: string): Promise<void>;
}

export interface ObjectKindLabels {
  /** `secret`, `key`: in texts. */
  noun: 'secret' | 'key' | 'certificate';
  /** `secrets`, `keys`: the URL segment of the objects. */
  collection: 'secrets' | 'keys' | 'certificates';
}

const title = (noun: string) => `${noun[0]!.toUpperCase()}${noun.slice(1)}`;

/**
 * The page of one secret or key: the vault's header, the object's heading, the offer to grant back
 * a refused action, the kind's own `sections`, then the Delete section — or, for a certificate's
 * key or secret (`managed`, Azure's `managed: true`), a note that it changes only with its
 * certificate, in place of the Delete section (the vault refuses the delete, certificate-managed.ts).
 */
export async function objectPage(
  ctx: ConsoleContext,
  vault: Vault,
  kind: ObjectKindLabels,
  name: string,
  href: string,
  sections: SafeHtml,
  opts: { managed?: boolean } = {},
): Promise<PageResult> {
  return {
    title: `${vault.name} · ${name}`,
    nav: 'vaults',
    body: html`${vaultHeader(vault, kind.collection, [{ label: title(kind.collection) }, { label: name }])}
<h2>${title(kind.noun)} <span class="mono">${name}</span>${opts.managed ? html` <span class="badge" id="managed-badge">Managed</span>` : ''}</h2>
${opts.managed ? managedNote(vault, kind, name) : ''}
${await refusedActionOffer(ctx, vault, kind.collection, `${kind.collection}/${name}`)}
${sections}
${opts.managed ? '' : deleteSection(ctx, vault, kind, name, href)}`,
  };
}

/** After the name of a certificate's key or secret in a list: "managed" (Azure's `managed: true`). */
export const managedMark = (r: Pick<ObjectRecord, 'managed'>): SafeHtml | string =>
  r.managed === true
    ? html` <span class="badge" title="Managed by the certificate of the same name">managed</span>`
    : '';

/** The note on a certificate's key or secret page: where it is changed instead. */
const managedNote = (vault: Vault, kind: ObjectKindLabels, name: string): SafeHtml =>
  html`<p class="alert alert-warning" id="managed-note">This ${kind.noun} is managed by the certificate <a href="${vaultBase(vault)}/certificates/${seg(name)}">${name}</a>: it is created, renewed, disabled and deleted only with the certificate, and the vault refuses changes made to it directly (as Azure Key Vault does). It can be read here.</p>`;

/** The Delete section of an object's page. */
export function deleteSection(
  ctx: ConsoleContext,
  vault: Vault,
  kind: ObjectKindLabels,
  name: string,
  href: string,
): SafeHtml {
  return html`<h2>Delete</h2>
${postForm(
  ctx,
  `${href}/delete`,
  html`<p>Deleting a ${kind.noun} removes all its versions; it stays recoverable for ${vault.softDeleteRetentionInDays} days.</p><button type="submit" class="btn-danger">Delete ${kind.noun}</button>`,
  { confirm: `Delete ${kind.noun} ${name}?` },
)}`;
}

/** The table of a vault's deleted objects, with Recover and (without purge protection) Purge. */
export function deletedSection(
  ctx: ConsoleContext,
  vault: Vault,
  call: ObjectCallContext,
  kind: ObjectKindLabels,
  service: SoftDeletable,
): Promise<SafeHtml> {
  const b = vaultBase(vault);
  return service.listDeleted(call, { max: VAULT_LIMITS.pageMax }).then((page) =>
    dataTable({
      caption: `Deleted ${kind.collection}`,
      id: `deleted-${kind.collection}`,
      rows: page.items,
      empty: `No deleted ${kind.collection}.`,
      columns: [
        { label: 'Name', cell: (o: ObjectRecord) => o.name },
        { label: 'Deleted', cell: (o) => time(o.deletedAt) },
        { label: 'Purged on', cell: (o) => time(o.scheduledPurgeAt) },
        {
          label: 'Actions',
          cell: (o) =>
            html`<div class="actions">${actionButton(ctx, `${b}/deleted-${kind.collection}/${seg(o.name)}/recover`, 'Recover')}</div>
${vault.enablePurgeProtection ? '' : dangerForm(ctx, `${b}/deleted-${kind.collection}/${seg(o.name)}/purge`, { id: `purge-${kind.noun}-${o.name}`, button: 'Purge', confirmText: `Purge ${o.name} and all its versions now. This cannot be undone.` })}`,
        },
      ],
    }),
  );
}

/**
 * `{base}/{collection}/:{param}/delete`, `{base}/deleted-{collection}/:{param}/recover`
 * and `…/purge` (with its confirmation), each back to the vault's list of that kind.
 */
export function registerSoftDelete(
  r: ConsoleRouter,
  o: {
    base: string;
    kind: ObjectKindLabels;
    /** The route parameter of the object's name (`secret`, `key`). */
    param: string;
    service: (ctx: ConsoleContext) => SoftDeletable;
    objectView: View;
    listView: View;
  },
): void {
  const { collection, noun } = o.kind;
  const back = async (ctx: ConsoleContext, text: string) => {
    const { vault } = await dataVault(ctx);
    return done(`${vaultBase(vault)}/${collection}`, text);
  };
  r.action(
    `${o.base}/${collection}/:${o.param}/delete`,
    async (ctx) => {
      const { call } = await dataVault(ctx);
      const rec = await o.service(ctx).delete(call, params(ctx)[o.param]!);
      return back(ctx, `${title(noun)} ${rec.name} deleted; it can be recovered below.`);
    },
    o.objectView,
  );
  r.action(
    `${o.base}/deleted-${collection}/:${o.param}/recover`,
    async (ctx) => {
      const { call } = await dataVault(ctx);
      const rec = await o.service(ctx).recover(call, params(ctx)[o.param]!);
      return back(ctx, `${title(noun)} ${rec.name} recovered.`);
    },
    o.listView,
  );
  r.action(
    `${o.base}/deleted-${collection}/:${o.param}/purge`,
    confirmed(async (ctx) => {
      const { call } = await dataVault(ctx);
      const name = params(ctx)[o.param]!;
      await o.service(ctx).purge(call, name);
      return back(ctx, `${title(noun)} ${name} purged.`);
    }),
    o.listView,
  );
}
