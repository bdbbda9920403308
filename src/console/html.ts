/**
 * Server-side HTML templates with escaping by default.
 *
 * `html` is a tagged template: every interpolated value is escaped unless it is
 * itself the result of `html` (a {@link SafeHtml}). Arrays are rendered item by
 * item; `null`, `undefined` and `false` render as nothing. There is no other
 * way to put markup into a page except {@link trusted}, for compile-time
 * constants only.
 *
 * @example
 * const name = '<script>';
 * html`<td>${name}</td>`.value; // '<td>&lt;script&gt;</td>'
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for an element body or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

export type Renderable = SafeHtml | string | number | boolean | null | undefined | readonly Renderable[];

function render(v: Renderable): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Markup written in the source itself (never data). */
export const trusted = (markup: string): SafeHtml => new SafeHtml(markup);

/** Joins rendered pieces with a separator. */
export const join = (items: readonly Renderable[], sep: Renderable = ''): SafeHtml =>
  new SafeHtml(items.map(render).join(render(sep)));
