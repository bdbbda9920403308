import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from './helpers/cli.js';

// The import direction of every folder under src/, against the table in docs/architecture.md
// (the one source of truth: change the table there, in the commit that needs it).

const SRC = join(REPO_ROOT, 'src');
const DOC = join(REPO_ROOT, 'docs', 'architecture.md');

interface Rule {
  value: Set<string>;
  types: Set<string>;
}

/** Parses the "## Import table" of docs/architecture.md: folder | may import | types only from. */
export function parseImportTable(markdown: string): Map<string, Rule> {
  const section = markdown.split(/^## Import table$/m)[1];
  assert.ok(section, 'docs/architecture.md has no "## Import table" section');
  const rows = section
    .split(/^## /m)[0]!
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    )
    .slice(2); // header and separator
  const list = (cell: string | undefined) =>
    new Set(
      (cell ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s && s !== '—'),
    );
  const table = new Map<string, Rule>();
  for (const [folder, value, types] of rows) {
    assert.ok(folder && !table.has(folder), `a table row names no folder or one twice: ${folder}`);
    table.set(folder, { value: list(value), types: list(types) });
  }
  return table;
}

interface Edge {
  from: string; // file, relative to src/
  to: string;
  typeOnly: boolean;
}

/** Every import of another src/ file: static, re-export, dynamic `import()` and `import('x').T` types. */
function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: Edge[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (!spec.startsWith('.')) return;
    const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
    out.push({ from: relative(SRC, file), to: relative(SRC, target), typeOnly });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node.importClause?.isTypeOnly === true);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      add(node.moduleSpecifier.text, node.isTypeOnly);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      add(node.arguments[0].text, false);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      add(node.argument.literal.text, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return e === 'static' ? [] : sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

const folderOf = (rel: string) => rel.split(sep)[0]!.replace(/\.ts$/, '');

/** The folders of a cycle in the graph, or undefined when there is none. */
export function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const dfs = (n: string): string[] | undefined => {
    state.set(n, 'open');
    path.push(n);
    for (const m of [...(graph.get(n) ?? [])].sort()) {
      if (state.get(m) === 'open') return [...path.slice(path.indexOf(m)), m];
      if (!state.has(m)) {
        const c = dfs(m);
        if (c) return c;
      }
    }
    path.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of [...graph.keys()].sort()) {
    if (!state.has(n)) {
      const c = dfs(n);
      if (c) return c;
    }
  }
  return undefined;
}

describe('architecture: the import direction of every folder under src/', () => {
  const table = parseImportTable(readFileSync(DOC, 'utf8'));
  const folders = readdirSync(SRC).filter((e) => statSync(join(SRC, e)).isDirectory());
  const edges = sourceFiles(SRC).flatMap(importsOf);

  test('every folder under src/ has a row, and every row a folder', () => {
    assert.deepEqual([...table.keys()].sort(), [...folders].sort());
    for (const [folder, rule] of table) {
      for (const to of [...rule.value, ...rule.types]) {
        assert.ok(table.has(to), `${folder}'s row names ${to}, which is not a folder under src/`);
        assert.notEqual(to, folder, `${folder}'s row names itself`);
      }
    }
  });

  test('the table allows no cycle between folders (runtime imports)', () => {
    const graph = new Map([...table].map(([f, r]) => [f, r.value]));
    assert.equal(findCycle(graph)?.join(' -> '), undefined);
  });

  test('every import of a src/ file is one the table allows', () => {
    assert.ok(edges.length > 500, `only ${edges.length} imports found: is the parser broken?`);
    const against = edges
      .filter((e) => {
        const from = folderOf(e.from);
        const to = folderOf(e.to);
        if (from === to) return false;
        const rule = table.get(from);
        if (!rule) return true;
        return !(rule.value.has(to) || (e.typeOnly && rule.types.has(to)));
      })
      .map((e) => `${e.from} imports ${e.typeOnly ? 'types from ' : ''}${e.to}`);
    assert.deepEqual(against, [], 'imports against docs/architecture.md');
  });

  test('no cycle between folders in the real runtime imports', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of edges.filter((x) => !x.typeOnly)) {
      const from = folderOf(e.from);
      const to = folderOf(e.to);
      if (from === to) continue;
      graph.set(from, (graph.get(from) ?? new Set()).add(to));
    }
    assert.equal(findCycle(graph)?.join(' -> '), undefined);
  });

  test('the checker itself: it sees a type-only import, a dynamic import and a cycle', () => {
    const here = importsOf(join(SRC, 'server', 'background-jobs.ts'));
    assert.ok(
      here.some((e) => e.to === join('server', 'up.ts') && e.typeOnly),
      "here.some((e) => e.to === join('server', 'up.ts') && e.typeOnly)",
    );
    const cli = importsOf(join(SRC, 'cli', 'commands', 'server.ts'));
    assert.ok(
      cli.some((e) => e.to === join('server', 'listen.ts') && !e.typeOnly),
      "cli.some((e) => e.to === join('server', 'listen.ts') && !e.typeOnly)",
    );
    const cyclic = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
    ]);
    assert.deepEqual(findCycle(cyclic), ['a', 'b', 'c', 'a']);
    const t = parseImportTable(
      '## Import table\n\n| folder | may | types |\n|---|---|---|\n| x | y, z | — |\n',
    );
    assert.deepEqual([...t.get('x')!.value], ['y', 'z']);
    assert.equal(t.get('x')!.types.size, 0);
  });
});
