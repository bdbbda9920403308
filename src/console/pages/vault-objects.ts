import type { ObjectRecord } from '../../vault/model.js';
import { VAULT_LIMITS } from '../../vault/model.js';
import type { ObjectCallContext, Page } from '../../vault/objects.js';
import { type Column, dataTable, postForm, section, seg } from '../components.js';
import { type ConsoleContext, type PageResult, params, query } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { dataVault, vaultBase, vaultDataSection, vaultHeader } from './vault-common.js';
import { deletedSection, type ObjectKindLabels, type SoftDeletable } from './vault-deleted.js';

/** The URL of an object's page under the vault of the current URL. */
export const objectHref = (ctx: ConsoleContext, collection: ObjectKindLabels['collection'], name: string) => {
  const p = params(ctx);
  return `${vaultBase({ resourceGroup: p.rg!, name: p.name! })}/${collection}/${seg(name)}`;
};

/**
 * A vault's Keys or Certificates tab: the objects (a page of them, with Next), a create form in a
 * panel, and the deleted ones; a refused list offers the tab's Officer role (vault-common.ts).
 */
export async function objectListPage<R extends ObjectRecord>(
  ctx: ConsoleContext,
  o: {
    kind: ObjectKindLabels & { title: string };
    service: SoftDeletable & {
      list(call: ObjectCallContext, opts: { max?: number; after?: string }): Promise<Page<R>>;
    };
    columns: readonly Column<R>[];
    /** The create panel's summary, and its form's fields and button. */
    create: { summary: string; fields: SafeHtml };
    /** Shown under the tabs (the Certificates tab's links to its issuers and contacts). */
    intro?: (vaultBase: string) => SafeHtml;
  },
): Promise<PageResult> {
  const { vault, call } = await dataVault(ctx);
  const { collection, title } = o.kind;
  const b = vaultBase(vault);
  const after = query(ctx).after;
  const list = await vaultDataSection(ctx, vault, collection, async () => {
    const page = await o.service.list(call, {
      max: VAULT_LIMITS.pageMax,
      ...(after && after.length <= 1000 ? { after } : {}),
    });
    return html`${dataTable({
      caption: title,
      id: collection,
      rows: page.items,
      empty: `No ${collection} in this vault yet.`,
      columns: o.columns,
    })}
<div class="pager">${page.next ? html`<a href="${b}/${collection}?after=${encodeURIComponent(page.next)}">Next page</a>` : ''}</div>`;
  });
  return {
    title: `${vault.name} · ${title}`,
    nav: 'vaults',
    body: html`${vaultHeader(vault, collection)}
${o.intro?.(b) ?? ''}
<details class="panel"><summary>${o.create.summary}</summary>
${postForm(ctx, `${b}/${collection}`, o.create.fields)}
</details>
${list}
<h2>Deleted ${collection}</h2>
${await section(() => deletedSection(ctx, vault, call, o.kind, o.service))}`,
  };
}
