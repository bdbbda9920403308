import { LatchkeyError } from '../errors/index.js';
import type { Action, ConsoleContext, FormInput } from './context.js';
import { html, type Renderable, type SafeHtml } from './html.js';
import { type ErrorState, errorAlert } from './layout.js';

/** Percent-encodes one path segment. */
export const seg = (s: string): string => encodeURIComponent(s);

/** A POST form with its CSRF token. `confirm`: a JavaScript confirmation (progressive enhancement). */
export function postForm(
  ctx: ConsoleContext,
  action: string,
  body: Renderable,
  opts: { confirm?: string; className?: string; label?: string } = {},
): SafeHtml {
  return html`<form method="post" action="${action}"${opts.confirm ? html` data-confirm="${opts.confirm}"` : ''}${opts.className ? html` class="${opts.className}"` : ''}${opts.label ? html` aria-label="${opts.label}"` : ''}><input type="hidden" name="_csrf" value="${ctx.csrf(action)}">${body}</form>`;
}

/** A one-button POST form (an action on a row). */
export const actionButton = (
  ctx: ConsoleContext,
  action: string,
  label: string,
  opts: { danger?: boolean; confirm?: string; hidden?: Record<string, string>; describedBy?: string } = {},
): SafeHtml =>
  postForm(
    ctx,
    action,
    html`${Object.entries(opts.hidden ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit" class="btn-small${opts.danger ? ' btn-danger' : ''}"${opts.describedBy ? html` aria-describedby="${opts.describedBy}"` : ''}>${label}</button>`,
    opts.confirm ? { confirm: opts.confirm } : {},
  );

/**
 * An irreversible action: works without JavaScript by asking for an explicit
 * confirmation checkbox (checked again on the server).
 */
export function dangerForm(
  ctx: ConsoleContext,
  action: string,
  p: { id: string; button: string; confirmText: string; hidden?: Record<string, string> },
): SafeHtml {
  return postForm(
    ctx,
    action,
    html`${Object.entries(p.hidden ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<div class="check"><input type="checkbox" id="${p.id}" name="confirm" value="yes" required><label for="${p.id}">${p.confirmText}</label></div>
<button type="submit" class="btn-danger">${p.button}</button>`,
  );
}

/** Server side of {@link dangerForm}. */
export function requireConfirmed(form: FormInput): void {
  if (form.confirm !== 'yes')
    throw new LatchkeyError('BadParameter', 'Tick the confirmation box to confirm this action.');
}

/** An action behind a {@link dangerForm}: refused unless its confirmation box was ticked. */
export const confirmed =
  (act: Action): Action =>
  async (ctx, form) => {
    requireConfirmed(form);
    return act(ctx, form);
  };

export interface Column<T> {
  label: string;
  cell: (row: T) => Renderable;
  className?: string;
}

/** A data table that turns into stacked cards on narrow screens; an explicit empty state otherwise. */
export function dataTable<T>(p: {
  caption: string;
  columns: readonly Column<T>[];
  rows: readonly T[];
  empty: Renderable;
  id?: string;
}): SafeHtml {
  if (p.rows.length === 0) return html`<p class="empty"${p.id ? html` id="${p.id}"` : ''}>${p.empty}</p>`;
  return html`<div class="table-wrap"><table class="stack"${p.id ? html` id="${p.id}"` : ''}>
<caption>${p.caption}</caption>
<thead><tr>${p.columns.map((c) => html`<th scope="col">${c.label}</th>`)}</tr></thead>
<tbody>${p.rows.map(
    (r) =>
      html`<tr>${p.columns.map(
        (c) =>
          // One wrapper per cell: on a phone the cell is a two-column grid (label, value), and
          // every element of the value must land in the value column.
          html`<td data-label="${c.label}"${c.className ? html` class="${c.className}"` : ''}><div class="cell">${c.cell(r)}</div></td>`,
      )}</tr>`,
  )}</tbody>
</table></div>`;
}

/** A property list (`<dl>`). */
export const props = (items: readonly [string, Renderable][]): SafeHtml =>
  html`<dl class="props">${items.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;

/** Epoch ms as a `<time>` in UTC. */
export function time(ms: number | null | undefined): SafeHtml {
  if (ms === null || ms === undefined) return html`<span class="muted">—</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`;
}

export const mono = (text: string | null | undefined): SafeHtml =>
  text ? html`<span class="mono">${text}</span>` : html`<span class="muted">—</span>`;

/** A value with a copy button (the button appears only with JavaScript). */
export const copyable = (id: string, text: string, label = 'Copy'): SafeHtml =>
  html`<span class="mono" id="${id}">${text}</span> <button type="button" class="btn-small" data-copy="${id}" hidden>${label}<span class="visually-hidden"> ${id.replaceAll('-', ' ')}</span></button>`;

export const badge = (on: boolean, yes = 'Enabled', no = 'Disabled'): SafeHtml =>
  html`<span class="badge ${on ? 'badge-ok' : 'badge-off'}">${on ? yes : no}</span>`;

/** Runs a section's loader; a denial or error becomes that section's error state instead of failing the page. */
export async function section(load: () => Promise<SafeHtml>): Promise<SafeHtml> {
  try {
    return await load();
  } catch (e) {
    if (e instanceof LatchkeyError) return errorAlert(errorStateOf(e));
    throw e;
  }
}

export const errorStateOf = (e: LatchkeyError): ErrorState => ({
  status: e.status,
  code: e.code,
  message: e.message,
});

// ---- form input ----

/** One text field, trimmed unless `raw`; '' when absent. Repeated or over-long values are refused. */
export function text(form: FormInput, name: string, max = 256, opts: { raw?: boolean } = {}): string {
  const v = form[name];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new LatchkeyError('BadParameter', `The field '${name}' must appear once.`);
  if (v.length > max)
    throw new LatchkeyError('BadParameter', `The field '${name}' is too long (at most ${max}).`);
  return opts.raw ? v : v.trim();
}

export function required(form: FormInput, name: string, label: string, max = 256): string {
  const v = text(form, name, max);
  if (!v) throw new LatchkeyError('BadParameter', `${label} is required.`);
  return v;
}

/** Checkbox groups: every checked value (at most `max` of them, each cut to `valueMax` characters). */
export function checked(form: FormInput, name: string, max = 64, valueMax = 64): string[] {
  const v = form[name];
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  if (list.length > max) throw new LatchkeyError('BadParameter', `Too many values for '${name}'.`);
  return list.map((x) => String(x).slice(0, valueMax));
}

export const isOn = (form: FormInput, name: string): boolean => form[name] === 'on' || form[name] === 'yes';

/** `<input type="datetime-local">` (read as UTC) to epoch ms; '' → null. */
export function dateTime(form: FormInput, name: string, label: string): number | null {
  const v = text(form, name, 40);
  if (!v) return null;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v))
    throw new LatchkeyError('BadParameter', `${label} must be a date and time (YYYY-MM-DDTHH:MM, UTC).`);
  const ms = Date.parse(`${v}Z`);
  if (Number.isNaN(ms)) throw new LatchkeyError('BadParameter', `${label} is not a valid date.`);
  return ms;
}

/** Epoch ms to a `datetime-local` value in UTC. */
export const dateTimeValue = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? '' : new Date(ms).toISOString().slice(0, 16);

export function integer(form: FormInput, name: string, label: string, min: number, max: number): number {
  const v = text(form, name, 20);
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || n < min || n > max)
    throw new LatchkeyError('BadParameter', `${label} must be a whole number from ${min} to ${max}.`);
  return n;
}

/** A labelled text input. */
export function input(p: {
  id: string;
  name?: string;
  label: string;
  value?: string;
  type?: 'text' | 'password' | 'number' | 'datetime-local' | 'search';
  required?: boolean;
  hint?: string;
  pattern?: string;
  max?: number;
  min?: number;
  maxLength?: number;
  autocomplete?: string;
  list?: string;
  mono?: boolean;
}): SafeHtml {
  const hintId = p.hint ? `${p.id}-hint` : undefined;
  return html`<div class="field"><label for="${p.id}">${p.label}</label>
<input type="${p.type ?? 'text'}" id="${p.id}" name="${p.name ?? p.id}"${p.value !== undefined ? html` value="${p.value}"` : ''}${p.required ? html` required` : ''}${p.pattern ? html` pattern="${p.pattern}"` : ''}${p.max !== undefined ? html` max="${String(p.max)}"` : ''}${p.min !== undefined ? html` min="${String(p.min)}"` : ''}${p.maxLength !== undefined ? html` maxlength="${String(p.maxLength)}"` : ''}${html` autocomplete="${p.autocomplete ?? 'off'}"`}${p.list ? html` list="${p.list}"` : ''}${p.mono ? html` class="mono"` : ''}${hintId ? html` aria-describedby="${hintId}"` : ''} spellcheck="false">
${p.hint ? html`<span class="hint" id="${hintId}">${p.hint}</span>` : ''}</div>`;
}

/** A labelled select. */
export function select(p: {
  id: string;
  name?: string;
  label: string;
  options: readonly { value: string; label: string }[];
  value?: string;
  hint?: string;
}): SafeHtml {
  const hintId = p.hint ? `${p.id}-hint` : undefined;
  return html`<div class="field"><label for="${p.id}">${p.label}</label>
<select id="${p.id}" name="${p.name ?? p.id}"${hintId ? html` aria-describedby="${hintId}"` : ''}>${p.options.map(
    (o) => html`<option value="${o.value}"${o.value === p.value ? html` selected` : ''}>${o.label}</option>`,
  )}</select>
${p.hint ? html`<span class="hint" id="${hintId}">${p.hint}</span>` : ''}</div>`;
}

/** A labelled checkbox. */
export const checkbox = (p: {
  id: string;
  name?: string;
  label: string;
  checked?: boolean;
  value?: string;
  hint?: string;
}) =>
  html`<div class="check"><input type="checkbox" id="${p.id}" name="${p.name ?? p.id}" value="${p.value ?? 'on'}"${p.checked ? html` checked` : ''}${p.hint ? html` aria-describedby="${p.id}-hint"` : ''}><label for="${p.id}">${p.label}${p.hint ? html`<span class="hint" id="${p.id}-hint">${p.hint}</span>` : ''}</label></div>`;
