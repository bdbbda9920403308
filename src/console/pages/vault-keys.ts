import { LatchkeyError } from '../../errors/index.js';
import type { KeyRecord } from '../../vault/key-model.js';
import { VAULT_LIMITS } from '../../vault/model.js';
import {
  actionButton,
  badge,
  dataTable,
  input,
  mono,
  postForm,
  required,
  section,
  seg,
  select,
  text,
  time,
} from '../components.js';
import { type ConsoleContext, done, type PageResult, params, query } from '../context.js';
import { html } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { dataVault, vaultBase, vaultDataSection, vaultHeader } from './vault-common.js';
import { deletedSection, objectPage, registerSoftDelete } from './vault-deleted.js';

const KEYS = { noun: 'key', collection: 'keys' } as const;

const KEY_TYPES = [
  { value: 'RSA:2048', label: 'RSA 2048' },
  { value: 'RSA:3072', label: 'RSA 3072' },
  { value: 'RSA:4096', label: 'RSA 4096' },
  { value: 'EC:P-256', label: 'EC P-256' },
  { value: 'EC:P-384', label: 'EC P-384' },
  { value: 'EC:P-521', label: 'EC P-521' },
  { value: 'EC:P-256K', label: 'EC P-256K' },
] as const;

const keyHref = (ctx: ConsoleContext, name: string) => {
  const p = params(ctx);
  return `${vaultBase({ resourceGroup: p.rg!, name: p.name! })}/keys/${seg(name)}`;
};
const describe = (k: KeyRecord): string =>
  k.jwk.kty === 'EC' ? `EC ${k.jwk.crv}` : `RSA ${Buffer.from(k.jwk.n, 'base64url').length * 8}`;

async function listPage(ctx: ConsoleContext): Promise<PageResult> {
  const { vault, call } = await dataVault(ctx);
  const b = vaultBase(vault);
  const after = query(ctx).after;
  const list = await vaultDataSection(ctx, vault, 'keys', async () => {
    const page = await ctx.s.keys.list(call, {
      max: VAULT_LIMITS.pageMax,
      ...(after && after.length <= 1000 ? { after } : {}),
    });
    return html`${dataTable({
      caption: 'Keys',
      id: 'keys',
      rows: page.items,
      empty: 'No keys in this vault yet.',
      columns: [
        { label: 'Name', cell: (k: KeyRecord) => html`<a href="${keyHref(ctx, k.name)}">${k.name}</a>` },
        { label: 'Type', cell: (k) => describe(k) },
        { label: 'Status', cell: (k) => badge(k.enabled) },
        { label: 'Updated', cell: (k) => time(k.updated) },
      ],
    })}
<div class="pager">${page.next ? html`<a href="${b}/keys?after=${encodeURIComponent(page.next)}">Next page</a>` : ''}</div>`;
  });
  return {
    title: `${vault.name} · Keys`,
    nav: 'vaults',
    body: html`${vaultHeader(vault, 'keys')}
<details class="panel"><summary>Create a key</summary>
${postForm(
  ctx,
  `${b}/keys`,
  html`<div class="form-row">${input({ id: 'key-name', name: 'name', label: 'Name', required: true, maxLength: 127 })}
${select({ id: 'key-type', name: 'type', label: 'Key type and size', options: KEY_TYPES })}</div>
<button type="submit" class="btn-primary">Create key</button>`,
)}
</details>
${list}
<h2>Deleted keys</h2>
${await section(() => deletedSection(ctx, vault, call, KEYS, ctx.s.keys))}`,
  };
}

async function keyPage(ctx: ConsoleContext): Promise<PageResult> {
  const { vault, call } = await dataVault(ctx);
  const name = params(ctx).key!;
  const href = keyHref(ctx, name);
  const versions = await vaultDataSection(
    ctx,
    vault,
    'keys',
    async () => {
      const page = await ctx.s.keys.listVersions(call, name, {
        max: VAULT_LIMITS.pageMax,
        newestFirst: true,
      });
      return dataTable({
        caption: 'Versions (newest first)',
        id: 'key-versions',
        rows: page.items,
        empty: 'No versions.',
        columns: [
          { label: 'Version', cell: (k: KeyRecord) => mono(k.version) },
          { label: 'Type', cell: (k) => describe(k) },
          { label: 'Operations', cell: (k) => k.keyOps.join(', ') },
          { label: 'Status', cell: (k) => badge(k.enabled) },
          { label: 'Created', cell: (k) => time(k.created) },
          { label: 'Expires', cell: (k) => time(k.exp) },
        ],
      });
    },
    { back: `keys/${name}`, only403: true },
  );
  return objectPage(
    ctx,
    vault,
    KEYS,
    name,
    href,
    html`${versions}
<h2>Rotate</h2>
<p>Rotation creates a new version with the same type and size; the old versions stay usable to decrypt and verify.</p>
${actionButton(ctx, `${href}/rotate`, 'Rotate now')}`,
  );
}

export function registerKeyPages(r: ConsoleRouter): void {
  const base = '/vaults/:rg/:name';
  r.page(`${base}/keys`, listPage);
  r.action(
    `${base}/keys`,
    async (ctx, form) => {
      const { vault, call } = await dataVault(ctx);
      const name = required(form, 'name', 'The key name', 127);
      const type = KEY_TYPES.find((t) => t.value === text(form, 'type', 16));
      if (!type) throw new LatchkeyError('BadParameter', 'Choose a key type.');
      const [kty, size] = type.value.split(':') as [string, string];
      const rec = await ctx.s.keys.create(
        call,
        name,
        kty === 'RSA' ? { kty, size: Number(size) } : { kty, curve: size },
      );
      return done(`${vaultBase(vault)}/keys/${seg(rec.name)}`, `Key ${rec.name} created.`);
    },
    listPage,
  );
  r.page(`${base}/keys/:key`, keyPage);
  r.action(
    `${base}/keys/:key/rotate`,
    async (ctx) => {
      const { call } = await dataVault(ctx);
      const rec = await ctx.s.keys.rotate(call, params(ctx).key!);
      return done(keyHref(ctx, rec.name), `Key ${rec.name} rotated: new version ${rec.version}.`);
    },
    keyPage,
  );
  registerSoftDelete(r, {
    base,
    kind: KEYS,
    param: 'key',
    service: (ctx) => ctx.s.keys,
    objectView: keyPage,
    listView: listPage,
  });
}
