import { LatchkeyError } from '../../errors/index.js';
import { isGuid } from '../../lib/ids.js';
import { actionButton, dataTable, dateTimeValue, input, mono, select, time } from '../components.js';
import { type ConsoleContext, type PageResult, query } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { principalKindLabel, principalNames } from './shared.js';

const FILTERS = ['show', 'caller', 'operation', 'target', 'from', 'to', 'size'] as const;
const DEFAULTS: Record<(typeof FILTERS)[number], string> = {
  show: 'changes',
  caller: '',
  operation: '',
  target: '',
  from: '',
  to: '',
  size: '25',
};

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

/** What the log shows: changes (the default), reads, or both. */
const SHOW = [
  { value: 'changes', label: 'Changes', kind: 'change' },
  { value: 'reads', label: 'Reads', kind: 'read' },
  { value: 'all', label: 'Changes and reads', kind: undefined },
] as const;
const SIZES = ['25', '50', '100'] as const;

/**
 * An ARM id or a vault object URL, shortened for a table cell: the resource
 * group and what lies below it, or the vault and the object path. The full
 * value stays in the link, which filters the log by it.
 */
export function shortTarget(target: string): string {
  const arm = /^\/subscriptions\/[^/]+(?:\/resourceGroups\/([^/]+)(?:\/providers\/[^/]+\/(.+))?)?$/i.exec(
    target,
  );
  if (arm) return arm[1] ? (arm[2] ? `${arm[1]}/${arm[2]}` : `${arm[1]} (resource group)`) : 'subscription';
  const url = /^https:\/\/([^./]+)\.[^/]+(\/.*)?$/i.exec(target);
  if (url) return `${url[1]}${url[2] ?? ''}`;
  return target;
}

type CallerFilter = { id?: string; note?: SafeHtml };

/**
 * The caller filter: an object id, client id or user name is passed on as it
 * is; anything else is a display name, resolved through the directory (as the
 * signed-in user, so only names they may read). Several matches are offered
 * as links.
 */
async function callerFilter(
  ctx: ConsoleContext,
  term: string,
  link: (c: string) => string,
): Promise<CallerFilter> {
  if (!term || isGuid(term) || term.includes('@')) return term ? { id: term } : {};
  let found: Awaited<ReturnType<typeof ctx.s.directory.search>>;
  try {
    found = await ctx.s.directory.search(ctx.caller, term, 10);
  } catch (e) {
    if (!(e instanceof LatchkeyError) || e.status !== 403) throw e;
    return {
      note: html`<div class="alert alert-warning" id="caller-note">Finding a caller by display name needs <span class="mono">Microsoft.Directory/users/read</span> or <span class="mono">Microsoft.Directory/servicePrincipals/read</span> at the tenant root. Filter by a user name, an object ID or a client ID instead.</div>`,
    };
  }
  const [one, ...more] = found.principals;
  if (one && more.length === 0) return { id: one.id };
  if (!one)
    return {
      note: html`<div class="alert alert-warning" id="caller-note">No user, application or identity you may read is named “${term}”.</div>`,
    };
  return {
    note: html`<div class="alert alert-info" id="caller-note">Several callers match “${term}”; choose one:<ul>${found.principals.map(
      (p) =>
        html`<li><a href="${link(p.id)}">${p.displayName}</a> <span class="muted">${principalKindLabel(p)}</span></li>`,
    )}</ul></div>`,
  };
}

async function auditPage(ctx: ConsoleContext, verification?: Verification): Promise<PageResult> {
  const q = query(ctx);
  const f: Record<(typeof FILTERS)[number], string> = {
    show: SHOW.find((x) => x.value === q.show)?.value ?? 'changes',
    caller: (q.caller ?? '').trim().slice(0, 255),
    operation: (q.operation ?? '').trim().slice(0, 100),
    target: (q.target ?? '').trim().slice(0, 2000),
    from: (q.from ?? '').slice(0, 40),
    to: (q.to ?? '').slice(0, 40),
    size: SIZES.find((x) => x === q.size) ?? SIZES[0],
  };
  const before = /^\d{1,15}$/.test(q.before ?? '') ? Number(q.before) : undefined;
  const from = when(f.from, 'From');
  const to = when(f.to, 'To');
  const link = (extra: Record<string, string>) => {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (f[k] && f[k] !== DEFAULTS[k]) p.set(k, f[k]);
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    const s = p.toString();
    return `/console/audit${s ? `?${s}` : ''}`;
  };
  const who = await callerFilter(ctx, f.caller, (id) => link({ caller: id }));
  const kind = SHOW.find((x) => x.value === f.show)?.kind;
  const limit = Number(f.size);
  const page =
    f.caller && !who.id
      ? { events: [], more: false, last: undefined }
      : await ctx.s.auditQueries.list(ctx.caller, ctx.meta, {
          ...(who.id ? { caller: who.id } : {}),
          ...(kind ? { kind } : {}),
          ...(f.operation ? { operation: f.operation } : {}),
          ...(f.target ? { target: f.target } : {}),
          ...(from !== undefined ? { from } : {}),
          ...(to !== undefined ? { to } : {}),
          ...(before !== undefined ? { before } : {}),
          limit,
        });
  const names = await principalNames(
    ctx,
    page.events.flatMap((e) => (e.callerOid ? [e.callerOid] : [])),
  );
  const filtered = FILTERS.some((k) => f[k] !== DEFAULTS[k]);
  return {
    title: 'Audit log',
    nav: 'audit',
    body: html`<h1>Audit log</h1>
<p class="lead">Every change, and every read of a secret, key or setting, newest first. Changes are shown unless you choose reads.</p>
<h2>Chain verification</h2>
${verificationBox(ctx, verification)}
<h2>Events</h2>
<form method="get" action="/console/audit" class="panel" aria-label="Filter events">
<div class="form-row">${select({ id: 'f-show', name: 'show', label: 'Show', options: SHOW.map((x) => ({ value: x.value, label: x.label })), value: f.show })}
${input({ id: 'f-caller', name: 'caller', label: 'Caller', value: f.caller, maxLength: 255, hint: 'Display name, user name, object ID or client ID.' })}</div>
<div class="form-row">${input({ id: 'f-operation', name: 'operation', label: 'Operation', value: f.operation, maxLength: 100, hint: 'e.g. SecretSet, VaultCreate.' })}
${input({ id: 'f-target', name: 'target', label: 'Target starts with', value: f.target, maxLength: 2000, hint: 'An ARM resource ID or a vault object URL.' })}</div>
<div class="form-row">${input({ id: 'f-from', name: 'from', label: 'From (UTC)', type: 'datetime-local', value: from !== undefined ? dateTimeValue(from) : '' })}
${input({ id: 'f-to', name: 'to', label: 'To (UTC)', type: 'datetime-local', value: to !== undefined ? dateTimeValue(to) : '' })}
${select({ id: 'f-size', name: 'size', label: 'Per page', options: SIZES.map((x) => ({ value: x, label: x })), value: f.size })}</div>
<div class="actions"><button type="submit" class="btn-primary">Apply filters</button>${filtered ? html`<a href="/console/audit">Clear filters</a>` : ''}</div>
</form>
${who.note ?? ''}
${dataTable({
  caption: `${SHOW.find((x) => x.value === f.show)?.label ?? 'Events'}${before !== undefined ? ' (older page)' : ''}`,
  id: 'audit-events',
  rows: page.events,
  empty: filtered ? 'No events match these filters.' : 'No changes yet.',
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
          ? html`<a href="${link({ caller: e.callerOid })}">${names.get(e.callerOid) ?? e.callerOid}</a>${e.provisioningKeyId ? html` <span class="muted">with key</span> ${mono(e.provisioningKeyId)}` : ''}`
          : html`<span class="muted">system</span>`,
    },
    {
      label: 'Target',
      cell: (e) =>
        e.target
          ? html`<a class="mono" href="${link({ target: e.target })}" title="${e.target}">${shortTarget(e.target)}</a>`
          : mono(null),
    },
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
