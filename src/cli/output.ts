/** `--output json|table|tsv|none`, as az has it. */
export type OutputFormat = 'json' | 'table' | 'tsv' | 'none';

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
    Math.min(60, Math.max(title(c).length, ...rows.map((r) => cell(r[c]).length))),
  );
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.slice(0, widths[i]).padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    line(cols.map(title)),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(cols.map((c) => cell(r[c])))),
  ].join('\n');
}

export function render(data: unknown, format: OutputFormat): string {
  if (format === 'none' || data === undefined) return '';
  if (format === 'json') return JSON.stringify(data, null, 2);
  if (format === 'tsv') {
    return (Array.isArray(data) ? data : [data])
      .map((r) => Object.values(flattenRow(r)).map(cell).join('\t'))
      .join('\n');
  }
  return formatTable(data);
}
