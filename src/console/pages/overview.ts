import { LatchkeyError } from '../../errors/index.js';
import { mono, section } from '../components.js';
import type { ConsoleContext, PageResult } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { auditEventsTable, principalNames } from './shared.js';

/** One count card; a denied or failed count reads "—" with the reason as text. */
async function count(label: string, href: string, load: () => Promise<number>): Promise<SafeHtml> {
  let n: string;
  let note = '';
  try {
    n = String(await load());
  } catch (e) {
    if (!(e instanceof LatchkeyError)) throw e;
    n = '—';
    note = e.status === 403 ? 'no access' : 'unavailable';
  }
  return html`<li class="card"><a href="${href}"><span class="count">${n}</span><span class="label">${label}</span>${note ? html` <span class="muted">(${note})</span>` : ''}</a></li>`;
}

export async function overviewPage(ctx: ConsoleContext): Promise<PageResult> {
  const { s, caller } = ctx;
  const sub = ctx.subscriptionId;
  const cards = await Promise.all([
    count('Key vaults', '/console/vaults', async () => (sub ? (await s.vaults.list(caller, sub)).length : 0)),
    count('Apps', '/console/apps', async () => (sub ? (await s.apps.list(caller, sub)).length : 0)),
    count('Managed identities', '/console/identities', async () =>
      sub ? (await s.userIdentities.list(caller, sub)).length : 0,
    ),
    count(
      'Provisioning keys',
      '/console/provisioning-keys',
      async () => (await s.provisioningKeys.list(caller)).filter((k) => k.state === 'active').length,
    ),
  ]);
  const recent = await section(async () => {
    const page = await s.auditQueries.list(caller, ctx.meta, { kind: 'change', limit: 10 });
    const names = await principalNames(
      ctx,
      page.events.flatMap((e) => (e.callerOid ? [e.callerOid] : [])),
    );
    return auditEventsTable({
      caption: 'The ten most recent changes in this tenant',
      rows: page.events,
      empty: 'No changes yet.',
      who: {
        label: 'Caller',
        cell: (e) => (e.callerOid ? (names.get(e.callerOid) ?? mono(e.callerOid)) : '—'),
      },
    });
  });
  return {
    title: 'Overview',
    nav: 'overview',
    body: html`<h1>Overview</h1>
<p class="lead">Tenant <span class="mono">${ctx.tenant.domain ?? ctx.tenant.id}</span> (${ctx.tenant.id}) · subscription <span class="mono">${sub || 'none'}</span></p>
<h2>Resources</h2>
<ul class="cards">${cards}</ul>
<h2>Recent activity</h2>
${recent}
<p><a href="/console/audit">Open the audit log</a></p>
<h2>Tenant settings</h2>
<p><a href="/console/settings/federation">Federation issuers</a>: the OIDC issuers this tenant's federated credentials may trust (the tenant admin's).</p>`,
  };
}
