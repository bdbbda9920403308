import { createRequire } from 'node:module';

/** `--output`, as az has it (`jsonc` and `yamlc` are colored). */
export const OUTPUT_FORMATS = ['json', 'jsonc', 'yaml', 'yamlc', 'tsv', 'table', 'none'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const require = createRequire(import.meta.url);

/**
 * Control characters (C0, DEL, C1) shown as `\xNN`: text from the server or from data other
 * users set (a tag, an error description) must not move the cursor, retitle the terminal or
 * hide lines. Used for `ERROR:` lines and table cells always, for tsv cells on a terminal.
 */
export const visible = (s: string): string =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is matched
  s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const cell = (v: unknown): string => {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
};

function flattenRow(o: unknown): Record<string, unknown> {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return { Result: o };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v))
        if (typeof v2 !== 'object' || v2 === null) out[`${k}.${k2}`] = v2;
    } else out[k] = v;
  }
  return out;
}

export function formatTable(data: unknown): string {
  const rows = (Array.isArray(data) ? data : [data]).map(flattenRow);
  if (rows.length === 0) return '';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((c) =>
    rows.some((r) => r[c] !== undefined && r[c] !== null && typeof r[c] !== 'object'),
  );
  const title = (c: string) => c.replace(/^./, (x) => x.toUpperCase());
  const widths = cols.map((c) =>
    Math.min(60, Math.max(title(c).length, ...rows.map((r) => visible(cell(r[c])).length))),
  );
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.slice(0, widths[i]).padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    line(cols.map(title)),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(cols.map((c) => visible(cell(r[c]))))),
  ].join('\n');
}

const color = (code: number, s: string) => `\u001b[${code}m${s}\u001b[0m`;

/** az's `jsonc`: keys blue, strings green, numbers, booleans and null yellow. */
function colorJson(text: string): string {
  return text.replace(
    /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (m, str: string | undefined, colon: string | undefined) =>
      str ? (colon ? `${color(34, str)}${colon}` : color(32, str)) : color(33, m),
  );
}

function yamlText(data: unknown): string {
  // Loaded on use: most commands never print YAML.
  const { stringify } = require('yaml') as typeof import('yaml');
  return stringify(data).trimEnd();
}

/** Renders `data` in `format`; `data` has already been through `--query`. `terminal`: stdout is a TTY. */
export function render(data: unknown, format: OutputFormat, terminal = false): string {
  if (format === 'none' || data === undefined) return '';
  if (format === 'json') return JSON.stringify(data, null, 2);
  if (format === 'jsonc') return colorJson(JSON.stringify(data, null, 2));
  if (format === 'yaml') return yamlText(data);
  if (format === 'yamlc')
    return yamlText(data).replace(
      /^(\s*(?:- )?)([^\s:#'"-][^:\n]*)(:)(?=\s|$)/gm,
      (_m, pre, k, c) => `${pre}${color(34, k)}${c}`,
    );
  if (format === 'tsv') {
    return (Array.isArray(data) ? data : [data])
      .map((r) =>
        (Array.isArray(r) ? r : Object.values(flattenRow(r)))
          .map((v) => (terminal ? visible(cell(v)) : cell(v)))
          .join('\t'),
      )
      .join('\n');
  }
  return formatTable(data);
}
