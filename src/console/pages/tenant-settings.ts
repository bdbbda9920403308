import { LatchkeyError } from '../../errors/index.js';
import { MAX_TENANT_ISSUERS, type TenantFederationView } from '../../management/tenant-settings.js';
import { checkbox, checked, postForm, section, text } from '../components.js';
import { type ConsoleContext, done, type PageResult } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';

/**
 * The tenant's federation issuers (docs/federation.md, "Per-tenant issuer allow-list"): the
 * server's list, the tenant's own narrowing of it and the effective list, through the same service
 * as `GET|PUT /api/tenants/{tenant}/settings/federation`, so only the tenant admin (Owner at the
 * tenant root) reads or sets it; anyone else sees that service's refusal.
 */

const PAGE = '/console/settings/federation';
const MAX_ISSUER = 600;

const issuerList = (id: string, list: readonly string[], empty: string): SafeHtml =>
  list.length === 0
    ? html`<p class="empty" id="${id}">${empty}</p>`
    : html`<ul id="${id}">${list.map((i) => html`<li class="mono">${i}</li>`)}</ul>`;

/** The form: follow the server's list, or tick the server's issuers the tenant allows. */
function issuersForm(ctx: ConsoleContext, v: TenantFederationView): SafeHtml {
  const follows = v.allowedIssuers === null;
  const own = new Set(v.allowedIssuers ?? v.serverAllowedIssuers);
  return postForm(
    ctx,
    PAGE,
    html`<fieldset><legend>This tenant's issuers</legend>
<div class="check"><input type="radio" id="issuers-follow" name="mode" value="server"${follows ? html` checked` : ''}><label for="issuers-follow">Follow the server's list<span class="hint">Every issuer the operator allows, now and later.</span></label></div>
<div class="check"><input type="radio" id="issuers-own" name="mode" value="list"${follows ? '' : html` checked`}><label for="issuers-own">Only the issuers ticked below<span class="hint">None ticked: no federated credential of this tenant is trusted.</span></label></div>
</fieldset>
<fieldset><legend>Issuers on the server's list</legend>${
      v.serverAllowedIssuers.length === 0
        ? html`<p class="empty">None: the operator allows no issuer.</p>`
        : v.serverAllowedIssuers.map((issuer, i) =>
            checkbox({
              id: `issuer-${String(i)}`,
              name: 'issuer',
              value: issuer,
              label: issuer,
              checked: own.has(issuer),
            }),
          )
    }</fieldset>
<button type="submit" class="btn-primary">Save issuers</button>`,
  );
}

async function federationPage(ctx: ConsoleContext): Promise<PageResult> {
  const body = await section(async () => {
    const v = await ctx.s.tenantSettings.getFederation(ctx.caller, ctx.tenant.id);
    return html`<h2>The server's list</h2>
<p>Set by the operator (<span class="mono">federation.allowedIssuers</span>); a tenant can narrow it, never widen it.</p>
${issuerList('server-issuers', v.serverAllowedIssuers, 'None: federation is off on this server.')}
<h2>This tenant's list</h2>
${
  v.allowedIssuers === null
    ? html`<p id="tenant-issuers">This tenant follows the server's list.</p>`
    : issuerList('tenant-issuers', v.allowedIssuers, 'Empty: this tenant trusts no issuer.')
}
<h2>Effective</h2>
<p>What this tenant's federated credentials may name now, and whose tokens an exchange accepts.</p>
${issuerList('effective-issuers', v.effectiveIssuers, 'None: every exchange of this tenant is refused.')}
<h2>Change</h2>
<p>Credentials naming an issuer taken off stay, but their exchanges are refused at once.</p>
${issuersForm(ctx, v)}`;
  });
  return {
    title: 'Federation issuers',
    nav: null,
    body: html`<h1>Federation issuers</h1>
<p class="lead">Which OIDC issuers (GitHub Actions, a Kubernetes cluster) the federated credentials of <a href="/console/identities">managed identities</a> and <a href="/console/app-registrations">app registrations</a> in this tenant may trust. Only the tenant admin (Owner at the tenant root) reads and sets this list.</p>
${body}`,
  };
}

export function registerTenantSettingsPages(r: ConsoleRouter): void {
  r.page('/settings/federation', federationPage);
  r.action(
    '/settings/federation',
    async (ctx, form) => {
      const mode = text(form, 'mode', 8);
      if (mode !== 'server' && mode !== 'list')
        throw new LatchkeyError('BadParameter', "Choose to follow the server's list or to list issuers.");
      const list = mode === 'server' ? null : checked(form, 'issuer', MAX_TENANT_ISSUERS, MAX_ISSUER);
      const v = await ctx.s.tenantSettings.setFederation(ctx.caller, ctx.meta, ctx.tenant.id, list);
      return done(
        PAGE,
        v.allowedIssuers === null
          ? "Federation issuers saved: this tenant follows the server's list."
          : `Federation issuers saved: ${String(v.allowedIssuers.length)} allowed.`,
      );
    },
    federationPage,
  );
}
