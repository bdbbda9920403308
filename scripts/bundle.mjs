// The bundle `latchkey` runs (docs/performance.md, "Restart to ready"): `npm run build` compiles
// src/ to dist/ with tsc, then this bundles dist/cli/main.js and everything it imports (node_modules
// included) into ES-module chunks in dist/bundle/, with separate chunks for the parts imported on
// use (the vault app, the console, PostgreSQL, the other commands). A restart of `latchkey up` loads
// ~65 files before it is ready (63 chunks) instead of ~550 modules.
// bin/latchkey.js runs it when it is at least as new as dist/cli/main.js (else dist/ unbundled).
// External, loaded from node_modules by Node itself: better-sqlite3 (a native addon), pg's optional
// native binding, and every package the code imports with import() (loaded on use: X.509 issuing,
// YAML, metrics, …). Bundled, a CommonJS package reached through import() would expose only its
// default export (prom-client's Registry, @peculiar/x509's cryptoProvider would be undefined);
// Node's own loader gives it its named exports. A package imported both ways is loaded twice (jose,
// yaml, @fastify/formbody today): fine while no object of one copy meets an instanceof of the other.
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
rmSync(outdir, { recursive: true, force: true }); // no chunk of an earlier build left behind
const { metafile } = await build({
  absWorkingDir: root,
  entryPoints: [join(root, 'dist', 'cli', 'main.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['better-sqlite3', 'pg-native'],
  plugins: [
    {
      name: 'packages-imported-on-use-stay-external',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (args) =>
          args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined,
        );
      },
    },
  ],
  // CommonJS packages bundled into ES modules still call require() (Node's built-ins, mostly).
  banner: {
    js: "import { createRequire as __latchkeyCreateRequire } from 'node:module'; const require = __latchkeyCreateRequire(import.meta.url);",
  },
  // No keepNames: it wraps every function expression in __name(fn, "…") (Object.defineProperty on
  // the new function), and fastify and Latchkey make closures per request: +10–60 µs of server CPU
  // per vault request measured (docs/performance.md, session 17). Without it a function keeps its
  // name unless two top-level ones in a chunk share it (esbuild renames one `parse2`: only stack
  // traces show that; nothing reads a function's name, and error classes set theirs).
  keepNames: false,
  legalComments: 'inline',
  logLevel: 'warning',
  metafile: true,
});
// Which modules each chunk holds (dist/bundle/modules.json: chunk file → the files it was built
// from, relative to the package root): test/up.lazy-modules.test.ts reads a loaded chunk as the
// modules in it, to check what a restart loads before it is ready.
const modules = {};
for (const [out, o] of Object.entries(metafile.outputs)) {
  if (out.endsWith('.js')) modules[out.slice(out.lastIndexOf('/') + 1)] = Object.keys(o.inputs);
}
writeFileSync(join(outdir, 'modules.json'), `${JSON.stringify(modules)}\n`);
