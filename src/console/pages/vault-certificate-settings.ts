import { LatchkeyError } from '../../errors/index.js';
import { type CertificateContact, CONTACT_LIMITS } from '../../vault/certificate-contacts.js';
import {
  BUILT_IN_ISSUERS,
  type CertificateIssuer,
  ISSUER_LIMITS,
  PROVIDERS,
} from '../../vault/certificate-issuers.js';
import {
  actionButton,
  badge,
  checkbox,
  confirmed,
  // duplicate-ok: an import list (the same names imported by several pages), not code to share
  dangerForm,
  dataTable,
  input,
  isOn,
  mono,
  postForm,
  required,
  seg,
  select,
  text,
  time,
} from '../components.js';
import { type ConsoleContext, done, type FormInput, type PageResult, params } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { dataVault, vaultBase, vaultDataSection, vaultHeader } from './vault-common.js';

/**
 * The Certificates tab's settings of a vault: its certificate issuers (`/certificates/issuers`,
 * provider Latchkey: the tenant's CA) and its certificate contacts (`/certificates/contacts`),
 * through the same services, and so the same access checks, as the vault's REST API.
 */

/** The links between the Certificates tab's three views. */
export function certificateLinks(base: string, current: 'certificates' | 'issuers' | 'contacts'): SafeHtml {
  const link = (to: typeof current, href: string, label: string) =>
    html`<li><a href="${href}"${to === current ? html` aria-current="page"` : ''}>${label}</a></li>`;
  return html`<nav aria-label="Certificate settings" id="certificate-links" class="sublinks"><ul>${link('certificates', `${base}/certificates`, 'Certificates')}${link('issuers', `${base}/certificates/issuers`, 'Issuers')}${link('contacts', `${base}/certificates/contacts`, 'Contacts')}</ul></nav>`;
}

/** A settings page of the Certificates tab. */
const settingsPage = (
  vault: { name: string; resourceGroup: string },
  label: 'Issuers' | 'Contacts',
  body: SafeHtml,
): PageResult => ({
  title: `${vault.name} · Certificate ${label.toLowerCase()}`,
  nav: 'vaults',
  body: html`${vaultHeader(vault, 'certificates', [{ label: 'Certificates' }, { label }])}
${certificateLinks(vaultBase(vault), label === 'Issuers' ? 'issuers' : 'contacts')}
${body}`,
});

const admins = (i: CertificateIssuer) =>
  (i.details.org_details?.admin_details ?? []).map((a) =>
    [[a.first_name, a.last_name].filter(Boolean).join(' '), a.email ? `<${a.email}>` : '', a.phone ?? '']
      .filter(Boolean)
      .join(' '),
  );

async function issuersPage(ctx: ConsoleContext): Promise<PageResult> {
  const { vault, call } = await dataVault(ctx);
  const b = `${vaultBase(vault)}/certificates/issuers`;
  const list = await vaultDataSection(ctx, vault, 'certificates', async () =>
    dataTable({
      caption: 'Certificate issuers',
      id: 'certificate-issuers',
      rows: await ctx.s.certificates.issuers.list(call),
      empty: 'No issuers in this vault yet.',
      columns: [
        { label: 'Name', cell: (i: CertificateIssuer) => mono(i.name) },
        { label: 'Provider', cell: (i) => i.provider },
        { label: 'Account id', cell: (i) => mono(i.details.account_id ?? null) },
        { label: 'Organization id', cell: (i) => mono(i.details.org_details?.id ?? null) },
        {
          label: 'Administrators',
          cell: (i) =>
            admins(i).length
              ? html`<ul class="plain">${admins(i).map((a) => html`<li>${a}</li>`)}</ul>`
              : html`<span class="muted">—</span>`,
        },
        { label: 'Status', cell: (i) => badge(i.enabled) },
        { label: 'Updated', cell: (i) => time(i.updated) },
        {
          label: 'Actions',
          cell: (i) =>
            actionButton(ctx, `${b}/${seg(i.name)}/delete`, 'Delete', {
              danger: true,
              confirm: `Delete issuer ${i.name}?`,
            }),
        },
      ],
    }),
  );
  const providers = PROVIDERS.map((p) => ({ value: p, label: `${p} (the tenant's certificate authority)` }));
  return settingsPage(
    vault,
    'Issuers',
    html`<p class="hint">A certificate's policy names its issuer. ${BUILT_IN_ISSUERS.map((n, i) => html`${i ? ', ' : ''}<span class="mono">${n}</span>`)} need no issuer here (<span class="mono">Self</span>: self-signed; <span class="mono">Unknown</span>: a CSR to have signed elsewhere, then merged; <span class="mono">Latchkey</span>: the tenant's own CA). An issuer of the vault names a provider; this vault's one provider is Latchkey.</p>
<details class="panel"><summary>Add an issuer</summary>
${postForm(
  ctx,
  b,
  html`<div class="form-row">${input({ id: 'issuer-name', name: 'name', label: 'Name', required: true, maxLength: 127, hint: '1–127 letters, digits and hyphens; not Self, Unknown or Latchkey.' })}
${select({ id: 'issuer-provider', name: 'provider', label: 'Provider', options: providers })}</div>
<div class="form-row">${input({ id: 'issuer-account', name: 'accountId', label: 'Account id (optional)', maxLength: ISSUER_LIMITS.chars })}
${input({ id: 'issuer-org', name: 'organizationId', label: 'Organization id (optional)', maxLength: ISSUER_LIMITS.chars })}</div>
<div class="form-row">${input({ id: 'issuer-admin-email', name: 'adminEmail', label: 'Administrator email (optional)', maxLength: ISSUER_LIMITS.chars })}
${input({ id: 'issuer-admin-first', name: 'adminFirstName', label: 'First name', maxLength: ISSUER_LIMITS.chars })}
${input({ id: 'issuer-admin-last', name: 'adminLastName', label: 'Last name', maxLength: ISSUER_LIMITS.chars })}
${input({ id: 'issuer-admin-phone', name: 'adminPhone', label: 'Phone', maxLength: ISSUER_LIMITS.chars })}</div>
${checkbox({ id: 'issuer-enabled', name: 'enabled', label: 'Enabled (a disabled issuer issues nothing)', checked: true })}
<button type="submit" class="btn-primary">Add issuer</button>`,
)}
</details>
${list}`,
  );
}

/** The issuer of the create form (the service checks the name, provider and lengths). */
function issuerInput(form: FormInput) {
  const f = (name: string) => text(form, name, ISSUER_LIMITS.chars);
  const admin = {
    email: f('adminEmail'),
    first_name: f('adminFirstName'),
    last_name: f('adminLastName'),
    phone: f('adminPhone'),
  };
  const given = Object.entries(admin).filter(([, v]) => v !== '');
  if (given.length && !admin.email)
    throw new LatchkeyError('BadParameter', "The administrator's email address is required.");
  const accountId = f('accountId');
  const orgId = f('organizationId');
  return {
    provider: required(form, 'provider', 'The provider', 64),
    ...(accountId ? { credentials: { account_id: accountId } } : {}),
    ...(orgId || given.length
      ? {
          org_details: {
            ...(orgId ? { id: orgId } : {}),
            admin_details: given.length ? [Object.fromEntries(given)] : [],
          },
        }
      : {}),
    attributes: { enabled: isOn(form, 'enabled') },
  };
}

/** Up to `max` values of a repeated field. */
function repeated(form: FormInput, name: string, max: number): string[] {
  const v = form[name];
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  if (list.length > max) throw new LatchkeyError('BadParameter', `Too many values for '${name}'.`);
  return list.map((x) => String(x).trim());
}

/** The contact rows of the form: those with anything in them (an email address is then required). */
function contactsInput(form: FormInput): CertificateContact[] {
  const rows = CONTACT_LIMITS.contacts + 1;
  const [emails, names, phones] = ['email', 'name', 'phone'].map((n) => repeated(form, n, rows)) as [
    string[],
    string[],
    string[],
  ];
  const out: CertificateContact[] = [];
  for (let i = 0; i < Math.max(emails.length, names.length, phones.length); i++) {
    const [email, name, phone] = [emails[i] ?? '', names[i] ?? '', phones[i] ?? ''];
    if (!email && !name && !phone) continue;
    if (!email) throw new LatchkeyError('BadParameter', `Contact ${i + 1} needs an email address.`);
    out.push({ email, ...(name ? { name } : {}), ...(phone ? { phone } : {}) });
  }
  if (!out.length)
    throw new LatchkeyError('BadParameter', 'Give at least one contact (or delete all contacts).');
  return out;
}

async function contactsPage(ctx: ConsoleContext): Promise<PageResult> {
  const { vault, call } = await dataVault(ctx);
  const b = `${vaultBase(vault)}/certificates/contacts`;
  let current: CertificateContact[] = [];
  const shown = await vaultDataSection(ctx, vault, 'certificates', async () => {
    try {
      current = await ctx.s.certificates.getContacts(call);
    } catch (e) {
      // None set is the vault's 404 "Contacts not found": an empty list here.
      if (!(e instanceof LatchkeyError) || e.status !== 404) throw e;
    }
    const rows = [...current, ...(current.length < CONTACT_LIMITS.contacts ? [{ email: '' }] : [])];
    const row = (c: CertificateContact, i: number) =>
      html`<fieldset class="form-row" id="contact-row-${String(i)}"><legend>Contact ${String(i + 1)}</legend>
${input({ id: `contact-email-${i}`, name: 'email', label: 'Email', value: c.email, maxLength: CONTACT_LIMITS.email })}
${input({ id: `contact-name-${i}`, name: 'name', label: 'Name', value: c.name ?? '', maxLength: CONTACT_LIMITS.name })}
${input({ id: `contact-phone-${i}`, name: 'phone', label: 'Phone', value: c.phone ?? '', maxLength: CONTACT_LIMITS.phone })}</fieldset>`;
    return html`${dataTable({
      caption: 'Certificate contacts',
      id: 'certificate-contacts',
      rows: current,
      empty: 'No contacts are set for this vault.',
      columns: [
        { label: 'Email', cell: (c: CertificateContact) => c.email },
        { label: 'Name', cell: (c) => c.name ?? html`<span class="muted">—</span>` },
        { label: 'Phone', cell: (c) => c.phone ?? html`<span class="muted">—</span>` },
      ],
    })}
<details class="panel"${current.length ? '' : html` open`}><summary>Set contacts</summary>
${postForm(
  ctx,
  b,
  html`<p class="hint">The list replaces the vault's contacts (at most ${String(CONTACT_LIMITS.contacts)}); a row left empty is dropped.</p>
${rows.map(row)}
<button type="submit" class="btn-primary">Save contacts</button>`,
)}
</details>
${current.length ? html`<h2>Delete contacts</h2>${dangerForm(ctx, `${b}/delete`, { id: 'contacts-delete-confirm', button: 'Delete all contacts', confirmText: "Delete all of this vault's certificate contacts" })}` : ''}`;
  });
  return settingsPage(
    vault,
    'Contacts',
    html`<p class="hint">Whom a certificate's <span class="mono">EmailContacts</span> lifetime action concerns. Latchkey sends no mail: near expiry it writes an audit event.</p>
${shown}`,
  );
}

export function registerCertificateSettingsPages(r: ConsoleRouter): void {
  const base = '/vaults/:rg/:name/certificates';
  r.page(`${base}/issuers`, issuersPage);
  r.action(
    `${base}/issuers`,
    // duplicate-ok: opens as the secrets' create (dataVault, then the name); then an issuer is set.
    async (ctx, form) => {
      const { vault, call } = await dataVault(ctx);
      const name = required(form, 'name', 'The issuer name', 127);
      const i = await ctx.s.certificates.issuers.set(call, name, issuerInput(form));
      return done(`${vaultBase(vault)}/certificates/issuers`, `Issuer ${i.name} saved.`);
    },
    issuersPage,
  );
  r.action(
    `${base}/issuers/:issuer/delete`,
    async (ctx) => {
      const { vault, call } = await dataVault(ctx);
      const i = await ctx.s.certificates.issuers.delete(call, params(ctx).issuer!);
      return done(`${vaultBase(vault)}/certificates/issuers`, `Issuer ${i.name} deleted.`);
    },
    issuersPage,
  );
  r.page(`${base}/contacts`, contactsPage);
  r.action(
    `${base}/contacts`,
    async (ctx, form) => {
      const { vault, call } = await dataVault(ctx);
      const set = await ctx.s.certificates.setContacts(call, contactsInput(form));
      return done(`${vaultBase(vault)}/certificates/contacts`, `${set.length} contact(s) saved.`);
    },
    contactsPage,
  );
  r.action(
    `${base}/contacts/delete`,
    confirmed(async (ctx) => {
      const { vault, call } = await dataVault(ctx);
      await ctx.s.certificates.deleteContacts(call);
      return done(`${vaultBase(vault)}/certificates/contacts`, 'Contacts deleted.');
    }),
    contactsPage,
  );
}
