import { LatchkeyError } from '../../errors/index.js';
import { actionButton, dataTable, dateTimeValue, input, mono, time } from '../components.js';
import { type ConsoleContext, type PageResult, query } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { principalNames } from './shared.js';

const PAGE = 25;
const FILTERS = ['caller', 'operation', 'target', 'from', 'to'] as const;

/** `datetime-local` (UTC) of the filter form to epoch ms. */
function when(v: string | undefined, label: string): number | undefined {
  if (!v) return undefined;
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v) ? `${v}Z` : v);
  if (!Number.isFinite(t)) throw new LatchkeyError('BadParameter', `${label} is not a valid date and time.`);
  return t;
}

type Verification = { ok: boolean; count: number; brokenAt?: number; reason?: string };

function verificationBox(ctx: ConsoleContext, v: Verification | undefined): SafeHtml {
  const button = actionButton(ctx, '/console/audit/verify', 'Verify the chain now');
  if (!v)
    return html`<div class="panel" id="chain-status"><p>The log is a hash chain: each event is sealed with the one before it, under a key derived from the root key, so a changed, removed or reordered event breaks the chain.</p>${button}</div>`;
  return v.ok
    ? html`<div class="alert alert-success" id="chain-status"><strong>Chain verified: intact</strong><p>All ${String(v.count)} events of this installation check out, from the first to the newest.</p></div>`
    : html`<div class="alert alert-error" role="alert" id="chain-status"><strong>Chain verification failed</strong><p>The chain breaks at event ${String(v.brokenAt ?? '?')} (${v.reason ?? 'unknown reason'}) after ${String(v.count)} events. The log was changed outside Latchkey.</p></div>`;
}

async function auditPage(ctx: ConsoleContext, verification?: Verification): Promise<PageResult> {
  const q = query(ctx);
  const f: Record<(typeof FILTERS)[number], string> = {
    caller: (q.caller ?? '').trim().slice(0, 255),
    operation: (q.operation ?? '').trim().slice(0, 100),
    target: (q.target ?? '').trim().slice(0, 2000),
    from: (q.from ?? '').slice(0, 40),
    to: (q.to ?? '').slice(0, 40),
  };
  const before = /^\d{1,15}$/.test(q.before ?? '') ? Number(q.before) : undefined;
  const from = when(f.from, 'From');
  const to = when(f.to, 'To');
  const page = await ctx.s.auditQueries.list(ctx.caller, ctx.meta, {
    ...(f.caller ? { caller: f.caller } : {}),
    ...(f.operation ? { operation: f.operation } : {}),
    ...(f.target ? { target: f.target } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(before !== undefined ? { before } : {}),
    limit: PAGE,
  });
  const names = await principalNames(
    ctx,
    page.events.flatMap((e) => (e.callerOid ? [e.callerOid] : [])),
  );
  const link = (extra: Record<string, string>) => {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (f[k]) p.set(k, f[k]);
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    const s = p.toString();
    return `/console/audit${s ? `?${s}` : ''}`;
  };
  const filtered = FILTERS.some((k) => f[k]);
  return {
    title: 'Audit log',
    nav: 'audit',
    body: html`<h1>Audit log</h1>
<p class="lead">Every change and every read of a secret, newest first.</p>
<h2>Chain verification</h2>
${verificationBox(ctx, verification)}
<h2>Events</h2>
<form method="get" action="/console/audit" class="panel" aria-label="Filter events">
<div class="form-row">${input({ id: 'f-caller', name: 'caller', label: 'Caller', value: f.caller, maxLength: 255, hint: 'User name, object ID or client ID.' })}
${input({ id: 'f-operation', name: 'operation', label: 'Operation', value: f.operation, maxLength: 100, hint: 'e.g. SecretGet, VaultCreate.' })}</div>
${input({ id: 'f-target', name: 'target', label: 'Target starts with', value: f.target, maxLength: 2000, hint: 'An ARM resource ID or a vault object URL.' })}
<div class="form-row">${input({ id: 'f-from', name: 'from', label: 'From (UTC)', type: 'datetime-local', value: from !== undefined ? dateTimeValue(from) : '' })}
${input({ id: 'f-to', name: 'to', label: 'To (UTC)', type: 'datetime-local', value: to !== undefined ? dateTimeValue(to) : '' })}</div>
<div class="actions"><button type="submit" class="btn-primary">Apply filters</button>${filtered ? html`<a href="/console/audit">Clear filters</a>` : ''}</div>
</form>
${dataTable({
  caption: `Events${before !== undefined ? ' (older page)' : ''}`,
  id: 'audit-events',
  rows: page.events,
  empty: filtered ? 'No events match these filters.' : 'No events yet.',
  columns: [
    { label: 'Time', cell: (e) => time(Date.parse(e.time)) },
    { label: 'Operation', cell: (e) => e.operation },
    {
      label: 'Result',
      cell: (e) =>
        html`<span class="badge ${e.status < 400 ? 'badge-ok' : 'badge-off'}">${String(e.status)}</span>`,
    },
    {
      label: 'Caller',
      cell: (e) =>
        e.callerOid
          ? html`${names.get(e.callerOid) ?? ''}<br>${mono(e.callerOid)}${e.provisioningKeyId ? html`<br>key ${mono(e.provisioningKeyId)}` : ''}`
          : html`<span class="muted">system</span>`,
    },
    { label: 'Target', cell: (e) => mono(e.target) },
    { label: 'Seq', cell: (e) => String(e.seq) },
  ],
})}
<nav class="pager" aria-label="Pages">${before !== undefined ? html`<a href="${link({})}">Newest events</a>` : ''}${page.more && page.last !== undefined ? html`<a href="${link({ before: String(page.last) })}">Older events</a>` : ''}</nav>`,
  };
}

export function registerAuditPages(r: ConsoleRouter): void {
  r.page('/audit', (ctx) => auditPage(ctx));
  r.action(
    '/audit/verify',
    async (ctx) => ({ page: await auditPage(ctx, await ctx.s.auditQueries.verify(ctx.caller, ctx.meta)) }),
    (ctx) => auditPage(ctx),
  );
}
