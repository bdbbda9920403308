import type { Command } from 'commander';
import { type OutputFormat, render } from './output.js';
import type { GlobalOptions } from './session.js';

export interface Ctx extends GlobalOptions {
  output: OutputFormat;
}

/** The global options (--output, --server, --ca-file) as seen from a sub-command. */
export function ctx(cmd: Command): Ctx {
  const o = cmd.optsWithGlobals() as { output?: OutputFormat; server?: string; caFile?: string };
  return {
    output: o.output ?? 'json',
    ...(o.server ? { server: o.server } : {}),
    ...(o.caFile ? { caFile: o.caFile } : {}),
  };
}

export function print(c: Ctx, data: unknown): void {
  const text = render(data, c.output);
  if (text) process.stdout.write(`${text}\n`);
}
