import { X509Certificate } from 'node:crypto';
import { LatchkeyError } from '../../errors/index.js';
import type { CertificateRecord, CertificateWithPolicy } from '../../vault/certificates.js';
import { VAULT_LIMITS } from '../../vault/model.js';
import {
  badge,
  dataTable,
  input,
  integer,
  mono,
  props,
  required,
  seg,
  select,
  text,
  time,
} from '../components.js';
import { type ConsoleContext, type PageResult, params } from '../context.js';
import { html } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { certificateLinks } from './vault-certificate-settings.js';
import { dataVault, vaultBase, vaultDataSection } from './vault-common.js';
import { objectPage, registerSoftDelete } from './vault-deleted.js';
import { KEY_TYPES as KEYS_TYPES } from './vault-keys.js';
import { objectHref, objectListPage } from './vault-objects.js';

const CERTIFICATES = { noun: 'certificate', collection: 'certificates' } as const;

/** Azure's certificate key types: those of keys without P-256K. */
const KEY_TYPES = KEYS_TYPES.filter((t) => t.value !== 'EC:P-256K');

const certificateHref = (ctx: ConsoleContext, name: string) => objectHref(ctx, 'certificates', name);
/** The SHA-1 thumbprint as Azure's portal shows it (upper-case hex). */
const thumbprintHex = (r: Pick<CertificateRecord, 'x5t'>) =>
  Buffer.from(r.x5t, 'base64url').toString('hex').toUpperCase();

/** What the certificate itself says (its DER is public): subject, issuer, SANs. */
function x509Of(der: Buffer): { subject: string; issuer: string; sans: string[] } {
  try {
    const x = new X509Certificate(der);
    const oneLine = (dn: string) => dn.split('\n').join(', ');
    return {
      subject: oneLine(x.subject),
      issuer: oneLine(x.issuer),
      sans: x.subjectAltName ? x.subjectAltName.split(', ') : [],
    };
  } catch {
    return { subject: '—', issuer: '—', sans: [] };
  }
}

/**
 * The certificate's key and secret of the same name, managed by it (Azure's `managed: true`):
 * read on their pages, changed only with the certificate. A non-exportable key has no secret.
 */
const managedLinks = (ctx: ConsoleContext, c: CertificateWithPolicy) =>
  html`<span id="certificate-managed"><a href="${objectHref(ctx, 'keys', c.name)}">key ${c.name}</a>${
    c.policy.key_props.exportable === false
      ? html`, no secret (the key is not exportable)`
      : html` and <a href="${objectHref(ctx, 'secrets', c.name)}">secret ${c.name}</a>`
  } <span class="badge">managed</span> <span class="muted">(changed only with this certificate)</span></span>`;

function listPage(ctx: ConsoleContext): Promise<PageResult> {
  return objectListPage(ctx, {
    kind: { ...CERTIFICATES, title: 'Certificates' },
    intro: (b) => certificateLinks(b, 'certificates'),
    service: ctx.s.certificates,
    columns: [
      {
        label: 'Name',
        cell: (c: CertificateRecord) => html`<a href="${certificateHref(ctx, c.name)}">${c.name}</a>`,
      },
      { label: 'Thumbprint', cell: (c) => mono(thumbprintHex(c)) },
      { label: 'Status', cell: (c) => badge(c.enabled) },
      { label: 'Expires', cell: (c) => time(c.exp) },
    ],
    create: {
      summary: 'Create a certificate',
      fields: html`<div class="form-row">${input({ id: 'certificate-name', name: 'name', label: 'Name', required: true, maxLength: 127 })}
${input({ id: 'certificate-subject', name: 'subject', label: 'Subject', required: true, maxLength: 1024, value: 'CN=', hint: 'An X.500 name, e.g. CN=www.example.com, O=Contoso', mono: true })}</div>
<div class="form-row">${input({ id: 'certificate-validity', name: 'validity', label: 'Validity (months)', type: 'number', min: 1, max: 1200, value: '12', required: true })}
${select({ id: 'certificate-key', name: 'key', label: 'Key type and size', options: KEY_TYPES })}</div>
<div class="form-row">${input({ id: 'certificate-issuer', name: 'issuer', label: 'Issuer', value: 'Self', maxLength: 127, list: 'certificate-issuers-known', hint: "Self (self-signed), Latchkey (the tenant's certificate authority), or an issuer of this vault (Issuers, above).", mono: true })}
<datalist id="certificate-issuers-known"><option value="Self"></option><option value="Latchkey"></option></datalist></div>
<button type="submit" class="btn-primary">Create certificate</button>`,
    },
  });
}

async function certificatePage(ctx: ConsoleContext): Promise<PageResult> {
  // duplicate-ok: an object's page opens as the key's (vault, name, a refusable section); its sections differ.
  const { vault, call } = await dataVault(ctx);
  const name = params(ctx).certificate!;
  const href = certificateHref(ctx, name);
  const details = await vaultDataSection(
    ctx,
    vault,
    'certificates',
    async () => {
      const c: CertificateWithPolicy = await ctx.s.certificates.get(call, name);
      const x = x509Of(c.cer);
      const k = c.policy.key_props;
      const page = await ctx.s.certificates.listVersions(call, name, {
        max: VAULT_LIMITS.pageMax,
        newestFirst: true,
      });
      return html`${props([
        ['Subject', mono(x.subject)],
        ['Issuer', html`${mono(x.issuer)} <span class="muted">(issuer ${c.policy.issuer.name})</span>`],
        [
          'Subject alternative names',
          x.sans.length
            ? html`<ul class="plain">${x.sans.map((s) => html`<li class="mono">${s}</li>`)}</ul>`
            : mono(null),
        ],
        ['Thumbprint (SHA-1)', mono(thumbprintHex(c))],
        ['Valid from', time(c.nbf)],
        ['Expires', time(c.exp)],
        ['Key', k.kty === 'EC' ? `EC ${k.crv ?? ''}` : `RSA ${k.key_size ?? ''}`],
        ['Secret content type', mono(c.policy.secret_props.contentType)],
        ['Key and secret', managedLinks(ctx, c)],
        ['Current version', mono(c.version)],
      ])}
${dataTable({
  caption: 'Versions (newest first)',
  id: 'certificate-versions',
  rows: page.items,
  empty: 'No versions.',
  columns: [
    { label: 'Version', cell: (v: CertificateRecord) => mono(v.version) },
    { label: 'Thumbprint', cell: (v) => mono(thumbprintHex(v)) },
    { label: 'Status', cell: (v) => badge(v.enabled) },
    { label: 'Created', cell: (v) => time(v.created) },
    { label: 'Expires', cell: (v) => time(v.exp) },
  ],
})}`;
    },
    { back: `certificates/${name}`, only403: true },
  );
  return objectPage(ctx, vault, CERTIFICATES, name, href, details);
}

// duplicate-ok: the create route has the same opening as the secrets' and keys' (dataVault, then the
// name); after it a certificate is issued from a subject, validity and key type.
export function registerCertificatePages(r: ConsoleRouter): void {
  const base = '/vaults/:rg/:name';
  r.page(`${base}/certificates`, listPage);
  r.action(
    `${base}/certificates`,
    async (ctx, form) => {
      const { vault, call } = await dataVault(ctx);
      const name = required(form, 'name', 'The certificate name', 127);
      const subject = required(form, 'subject', 'The subject', 1024);
      const validity = integer(form, 'validity', 'The validity (months)', 1, 1200);
      const type = KEY_TYPES.find((t) => t.value === text(form, 'key', 16));
      if (!type) throw new LatchkeyError('BadParameter', 'Choose a key type.');
      const [kty, size] = type.value.split(':') as ['RSA' | 'EC', string];
      const issuer = text(form, 'issuer', 127) || 'Self';
      // Issuer Unknown makes a CSR to be signed elsewhere and merged: not a console flow.
      if (issuer.toLowerCase() === 'unknown')
        throw new LatchkeyError(
          'BadParameter',
          'Issuer Unknown makes a signing request to merge later: use `latchkey keyvault certificate create` and `pending merge`, or an SDK.',
        );
      const r = await ctx.s.certificates.create(call, name, {
        policy: {
          issuer: { name: issuer },
          key_props: kty === 'RSA' ? { kty, key_size: Number(size) } : { kty, crv: size },
          x509_props: { subject, validity_months: validity },
        },
      });
      return {
        redirect: `${vaultBase(vault)}/certificates/${seg(r.name)}`,
        flash: { kind: 'success', text: `Certificate ${r.name} created.` },
      };
    },
    listPage,
  );
  r.page(`${base}/certificates/:certificate`, certificatePage);
  registerSoftDelete(r, {
    base,
    kind: CERTIFICATES,
    param: 'certificate',
    service: (ctx) => ctx.s.certificates,
    objectView: certificatePage,
    listView: listPage,
  });
}
