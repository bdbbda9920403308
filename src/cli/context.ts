import { compile, type JSONValue, search } from '@jmespath-community/jmespath';
import type { Command } from 'commander';
import { CliError } from './errors.js';
import { type OutputFormat, render } from './output.js';
import type { GlobalOptions } from './session.js';

export interface Ctx extends GlobalOptions {
  output: OutputFormat;
  /** `--query`: a JMESPath expression applied to the result before it is printed. */
  query?: string;
}

/** Compiles a `--query` expression; a bad one is a usage error (exit 2). */
export function compileQuery(expr: string): void {
  try {
    compile(expr);
  } catch (e) {
    throw new CliError(
      `argument --query: invalid JMESPath expression '${expr.slice(0, 200)}': ${(e as Error).message.split('\n')[0]}`,
      2,
    );
  }
}

/** The global options (--output, --query, --server, --ca-file) as seen from a sub-command. */
export function ctx(cmd: Command): Ctx {
  const o = cmd.optsWithGlobals() as {
    output?: OutputFormat;
    query?: string;
    server?: string;
    caFile?: string;
  };
  return {
    output: o.output ?? 'json',
    ...(o.query ? { query: o.query } : {}),
    ...(o.server ? { server: o.server } : {}),
    ...(o.caFile ? { caFile: o.caFile } : {}),
  };
}

/** Prints a command's result: through `--query` (JMESPath, as az), then in the `--output` format. */
export function print(c: Ctx, data: unknown): void {
  let shown = data;
  if (c.query && data !== undefined) {
    // JSON round trip: the interpreter wants plain JSON values (no undefined, no class instances).
    const json = JSON.parse(JSON.stringify(data)) as JSONValue;
    compileQuery(c.query);
    try {
      shown = search(json, c.query);
    } catch (e) {
      throw new CliError(`--query failed: ${(e as Error).message.split('\n')[0]}`, 2);
    }
  }
  const text = render(shown, c.output);
  if (text) process.stdout.write(`${text}\n`);
}
