import { LatchkeyError } from '../../errors/index.js';
import { VAULT_LIMITS } from '../../vault/model.js';
import type { SecretRecord } from '../../vault/secrets.js';
import {
  actionButton,
  badge,
  checkbox,
  dataTable,
  dateTime,
  dateTimeValue,
  input,
  isOn,
  mono,
  postForm,
  required,
  section,
  seg,
  text,
  time,
} from '../components.js';
import { type ConsoleContext, done, type FormInput, type PageResult, params, query } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { dataVault, vaultBase, vaultDataSection, vaultHeader } from './vault-common.js';
import { deletedSection, managedMark, objectPage, registerSoftDelete } from './vault-deleted.js';

const SECRETS = { noun: 'secret', collection: 'secrets' } as const;

const cursor = (q: Record<string, string>, name: string) => {
  const v = q[name];
  return v && v.length <= 1000 ? v : undefined;
};

/** The value fields of "create" and "new version" (the value goes only in the POST body). */
const valueFields = (prefix: string, withName: boolean): SafeHtml =>
  html`${withName ? input({ id: `${prefix}-name`, name: 'name', label: 'Name', required: true, maxLength: 127, hint: '1–127 letters, digits and hyphens.' }) : ''}
<div class="field"><label for="${prefix}-value">Secret value</label>
<textarea id="${prefix}-value" name="value" required maxlength="${String(VAULT_LIMITS.secretValueBytes)}" autocomplete="off" spellcheck="false"></textarea></div>
<div class="form-row">${input({ id: `${prefix}-content-type`, name: 'contentType', label: 'Content type (optional)', maxLength: VAULT_LIMITS.contentTypeChars })}
${input({ id: `${prefix}-expires`, name: 'expires', label: 'Expires (UTC, optional)', type: 'datetime-local' })}
${input({ id: `${prefix}-not-before`, name: 'notBefore', label: 'Not before (UTC, optional)', type: 'datetime-local' })}</div>
${checkbox({ id: `${prefix}-enabled`, name: 'enabled', label: 'Enabled', checked: true })}`;

const secretHref = (ctx: ConsoleContext, name: string) => {
  const p = params(ctx);
  return `${vaultBase({ resourceGroup: p.rg!, name: p.name! })}/secrets/${seg(name)}`;
};

async function listPage(ctx: ConsoleContext): Promise<PageResult> {
  const { vault, call } = await dataVault(ctx);
  const b = vaultBase(vault);
  const q = query(ctx);
  const after = cursor(q, 'after');
  const list = await vaultDataSection(ctx, vault, 'secrets', async () => {
    const page = await ctx.s.secrets.list(call, { max: VAULT_LIMITS.pageMax, ...(after ? { after } : {}) });
    return html`${dataTable({
      caption: 'Secrets',
      id: 'secrets',
      rows: page.items,
      empty: 'No secrets in this vault yet.',
      columns: [
        {
          label: 'Name',
          cell: (s: SecretRecord) =>
            html`<a href="${secretHref(ctx, s.name)}">${s.name}</a>${managedMark(s)}`,
        },
        { label: 'Status', cell: (s) => badge(s.enabled) },
        { label: 'Content type', cell: (s) => s.contentType ?? html`<span class="muted">—</span>` },
        { label: 'Expires', cell: (s) => time(s.exp) },
        { label: 'Updated', cell: (s) => time(s.updated) },
      ],
    })}
<div class="pager">${after ? html`<a href="${b}/secrets">First page</a>` : ''}${page.next ? html`<a href="${b}/secrets?after=${encodeURIComponent(page.next)}">Next page</a>` : ''}</div>`;
  });
  const deleted = await section(() => deletedSection(ctx, vault, call, SECRETS, ctx.s.secrets));
  return {
    title: `${vault.name} · Secrets`,
    nav: 'vaults',
    body: html`${vaultHeader(vault, 'secrets')}
<details class="panel"><summary>Add a secret</summary>
${postForm(ctx, `${b}/secrets`, html`${valueFields('new-secret', true)}<button type="submit" class="btn-primary">Add secret</button>`)}
</details>
${list}
<h2>Deleted secrets</h2>
${deleted}`,
  };
}

async function secretPage(
  ctx: ConsoleContext,
  revealed?: { version: string; value: string },
): Promise<PageResult> {
  const { vault, call } = await dataVault(ctx);
  const name = params(ctx).secret!;
  const q = query(ctx);
  const after = cursor(q, 'after');
  const href = secretHref(ctx, name);

  const reveal = revealed
    ? html`<section class="panel" aria-labelledby="revealed-heading">
<h2 id="revealed-heading">Value of version <span class="mono">${revealed.version}</span></h2>
<pre class="secret-value" id="secret-value">${revealed.value}</pre>
<div class="actions"><button type="button" data-copy="secret-value" hidden>Copy value</button><a href="${href}">Hide</a></div>
<p class="hint">Shown for this response only: it is not in the address, not stored by the browser, and gone when you leave or reload.</p>
</section>`
    : '';
  const versionRow = (s: SecretRecord) => {
    const vb = `${href}/versions/${seg(s.version)}`;
    const show = s.enabled
      ? actionButton(ctx, `${href}/reveal`, 'Show value', { hidden: { version: s.version } })
      : '';
    // A certificate's secret (Azure's `managed`): read only; the vault refuses Disable and expiry.
    if (s.managed === true) return { s, actions: html`<div class="actions">${show}</div>` };
    return {
      s,
      actions: html`<div class="actions">${show}
${actionButton(ctx, `${vb}/enabled`, s.enabled ? 'Disable' : 'Enable', { hidden: { enabled: s.enabled ? 'off' : 'on' } })}</div>
${postForm(
  ctx,
  `${vb}/expiry`,
  html`<div class="field"><label for="exp-${s.version}">Expires (UTC)</label><input type="datetime-local" id="exp-${s.version}" name="expires" value="${dateTimeValue(s.exp)}"></div><button type="submit" class="btn-small">Save expiry</button>`,
  { label: `Expiry of version ${s.version}` },
)}`,
    };
  };
  let managed = false;
  const versions = await vaultDataSection(
    ctx,
    vault,
    'secrets',
    async () => {
      const page = await ctx.s.secrets.listVersions(call, name, {
        max: VAULT_LIMITS.pageMax,
        newestFirst: true,
        ...(after ? { after } : {}),
      });
      managed = page.items.some((v) => v.managed === true);
      return html`${dataTable({
        caption: 'Versions (newest first)',
        id: 'versions',
        rows: page.items.map(versionRow),
        empty: 'No versions.',
        columns: [
          { label: 'Version', cell: (r) => mono(r.s.version) },
          { label: 'Status', cell: (r) => badge(r.s.enabled) },
          { label: 'Created', cell: (r) => time(r.s.created) },
          { label: 'Expires', cell: (r) => time(r.s.exp) },
          { label: 'Actions', cell: (r) => r.actions },
        ],
      })}
<div class="pager">${page.next ? html`<a href="${href}?after=${encodeURIComponent(page.next)}">Older versions</a>` : ''}</div>`;
    },
    { back: `secrets/${name}`, only403: true },
  );
  return objectPage(
    ctx,
    vault,
    SECRETS,
    name,
    href,
    html`${reveal}
${versions}
${
  managed
    ? ''
    : html`<details class="panel"><summary>New version</summary>
${postForm(ctx, `${vaultBase(vault)}/secrets`, html`<input type="hidden" name="name" value="${name}">${valueFields('new-version', false)}<button type="submit" class="btn-primary">Create version</button>`)}
</details>`
}`,
    { managed },
  );
}

function setInput(form: FormInput) {
  const exp = dateTime(form, 'expires', 'The expiry');
  const nbf = dateTime(form, 'notBefore', 'The not-before date');
  const contentType = text(form, 'contentType', VAULT_LIMITS.contentTypeChars);
  const value = text(form, 'value', VAULT_LIMITS.secretValueBytes * 4, { raw: true });
  if (!value) throw new LatchkeyError('BadParameter', 'The secret value is required.');
  return {
    value,
    enabled: isOn(form, 'enabled'),
    ...(exp !== null ? { exp } : {}),
    ...(nbf !== null ? { nbf } : {}),
    ...(contentType ? { contentType } : {}),
  };
}

export function registerSecretPages(r: ConsoleRouter): void {
  const base = '/vaults/:rg/:name';
  r.page(`${base}/secrets`, listPage);
  r.action(
    `${base}/secrets`,
    async (ctx, form) => {
      const { vault, call } = await dataVault(ctx);
      const name = required(form, 'name', 'The secret name', 127);
      const rec = await ctx.s.secrets.set(call, name, setInput(form));
      return done(
        `${vaultBase(vault)}/secrets/${seg(rec.name)}`,
        `Secret ${rec.name} saved (version ${rec.version}).`,
      );
    },
    listPage,
  );
  r.page(`${base}/secrets/:secret`, (ctx) => secretPage(ctx));
  r.action(
    `${base}/secrets/:secret/reveal`,
    async (ctx, form) => {
      const { call } = await dataVault(ctx);
      const version = required(form, 'version', 'The version', 64);
      const rec = await ctx.s.secrets.get(call, params(ctx).secret!, version);
      return { page: await secretPage(ctx, { version: rec.version, value: rec.value ?? '' }) };
    },
    (ctx) => secretPage(ctx),
  );
  /** A change to one version (`what`: enabled, expiry): the form → the update and the message. */
  const versionAction = (
    what: string,
    change: (
      form: FormInput,
      p: Record<string, string | undefined>,
    ) => { update: { enabled: boolean } | { exp: number | null }; text: string },
  ) =>
    r.action(
      `${base}/secrets/:secret/versions/:version/${what}`,
      async (ctx, form) => {
        const { call } = await dataVault(ctx);
        const p = params(ctx);
        const { update, text } = change(form, p);
        await ctx.s.secrets.update(call, p.secret!, p.version!, update);
        return done(secretHref(ctx, p.secret!), text);
      },
      (ctx) => secretPage(ctx),
    );
  versionAction('enabled', (form, p) => {
    const enabled = text(form, 'enabled', 4) === 'on';
    return { update: { enabled }, text: `Version ${p.version} ${enabled ? 'enabled' : 'disabled'}.` };
  });
  versionAction('expiry', (form, p) => ({
    update: { exp: dateTime(form, 'expires', 'The expiry') },
    text: `Expiry of ${p.secret} version ${p.version} saved.`,
  }));
  registerSoftDelete(r, {
    base,
    kind: SECRETS,
    param: 'secret',
    service: (ctx) => ctx.s.secrets,
    objectView: (ctx) => secretPage(ctx),
    listView: listPage,
  });
}
