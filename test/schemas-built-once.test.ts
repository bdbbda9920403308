import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const SRC = join(import.meta.dirname, '..', 'src');
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

/**
 * A zod schema built inside a handler is built on every request, and zod compiles each new schema
 * on its first parse: `parse(z.object({...}), req.params)` cost ~85 µs a request where the same
 * schema built once costs ~1 µs (issue 19: the key operations route without a version). Schemas
 * live in module constants; this finds one handed to a parse call where it is built.
 */
export function schemasBuiltInCalls(text: string): number[] {
  const lines: number[] = [];
  const re = /\b(?:parse|safeParse)\(\s*z\.|\bz\.\w+\([^;]*?\)\s*\.(?:parse|safeParse)\(/g;
  for (const m of text.matchAll(re)) lines.push(text.slice(0, m.index).split('\n').length);
  return lines;
}

test('the finder sees a schema built in a parse call, not one parsed by name', () => {
  assert.deepEqual(
    schemasBuiltInCalls("const p = parse(z.object({ a: z.string() }), req.params, 'path');"),
    [1],
  );
  assert.deepEqual(
    schemasBuiltInCalls('x\nconst b = parse(\n  z.object({ a: z.boolean() }),\n  req.body,\n);'),
    [2],
  );
  assert.deepEqual(schemasBuiltInCalls('const v = z.object({ a: z.string() }).safeParse(input);'), [1]);
  assert.deepEqual(
    schemasBuiltInCalls('const body = z.object({ a: z.string() });\nparse(body, req.body);'),
    [],
  );
});

test('no zod schema is built where it is parsed (src/)', () => {
  const found = files(SRC).flatMap((f) =>
    schemasBuiltInCalls(readFileSync(f, 'utf8')).map((line) => `${relative(SRC, f)}:${line}`),
  );
  assert.deepEqual(found, [], `build these schemas once, in a module constant: ${found.join(', ')}`);
});
