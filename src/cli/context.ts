import { compile, type JSONValue, search } from '@jmespath-community/jmespath';
import type { Command } from 'commander';
import { CliError } from './errors.js';
import { type OutputFormat, render } from './output.js';
import { api, type GlobalOptions } from './session.js';

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

/**
 * A sub-command's action with the global options read: `.action(withCtx(async (o, c) => …))`.
 * `o` is what commander parsed (as untyped as commander gives it).
 */
export function withCtx<O>(act: (o: O, c: Ctx) => Promise<void>): (o: O, cmd: Command) => Promise<void> {
  return (o, cmd) => act(o, ctx(cmd));
}

/** An action that prints what `get` answers (through `--query`, in the `--output` format). */
export function printed<O>(get: (o: O, c: Ctx) => Promise<unknown>): (o: O, cmd: Command) => Promise<void> {
  return withCtx(async (o, c) => print(c, await get(o, c)));
}

/** An action that prints the `value` list a GET at `path` answers (the management API's list shape). */
export function listed<O>(path: (o: O) => string): (o: O, cmd: Command) => Promise<void> {
  return printed<O>(async (o, c) => (await api<{ value: unknown[] }>(c, 'GET', path(o))).value);
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
  const text = render(shown, c.output, process.stdout.isTTY === true);
  if (text) process.stdout.write(`${text}\n`);
}
