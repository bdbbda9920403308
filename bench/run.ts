// `npm run bench [-- --only tokens,cold-start] [--json] [--out file.json] [--list]`
// Discovers bench/scenarios/*.ts (each default-exports a Scenario), runs them in
// name order against a `latchkey up` child process, and prints a table (or JSON).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type BenchContext,
  type BenchOptions,
  type BenchServer,
  buildIsFresh,
  formatTable,
  REPO_ROOT,
  type ResultRow,
  type Scenario,
  startBenchServer,
  tempDirs,
} from './lib.js';

const USAGE = `Usage: npm run bench -- [options]
  --only <names>       comma-separated scenario names (or prefixes) to run
  --list               list the scenarios and exit
  --json               print the results as JSON on stdout (progress stays on stderr)
  --out <file>         also write the JSON results to <file>
  --duration <s>       measured seconds per load run (default 5)
  --warmup <s>         warm-up seconds before each load run (default 2)
  --connections <n>    concurrent keep-alive connections (default 32)
  --repeats <n>        repetitions for start-up measurements (default 5)
  --check              exit 1 when a result misses its target`;

async function discover(): Promise<Scenario[]> {
  const dir = join(REPO_ROOT, 'bench', 'scenarios');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .sort();
  const out: Scenario[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { default?: Scenario };
    if (!mod.default?.name || typeof mod.default.run !== 'function')
      throw new Error(`bench/scenarios/${f} must default-export { name, description, run(ctx) }`);
    out.push(mod.default);
  }
  return out;
}

function machine() {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${platform()} ${release()}`,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      list: { type: 'boolean' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      repeats: { type: 'string' },
      check: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const num = (v: string | undefined, d: number, name: string) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  const options: BenchOptions = {
    durationS: num(values.duration, 5, 'duration'),
    warmupS: num(values.warmup, 2, 'warmup'),
    connections: Math.max(1, Math.round(num(values.connections, 32, 'connections'))),
    repeats: Math.max(1, Math.round(num(values.repeats, 5, 'repeats'))),
  };
  const all = await discover();
  if (values.list) {
    for (const s of all) console.log(`${s.name.padEnd(16)} ${s.description}`);
    return 0;
  }
  const only = (values.only ?? []).flatMap((o) => o.split(',')).filter(Boolean);
  const selected = only.length ? all.filter((s) => only.some((o) => s.name.startsWith(o))) : all;
  if (selected.length === 0) {
    console.error(`no scenario matches ${only.join(', ')}; have: ${all.map((s) => s.name).join(', ')}`);
    return 2;
  }

  const log = (m: string) => process.stderr.write(`${m}\n`);
  // Measure what users run: the compiled build (bin/latchkey.js runs dist/ when it is fresh).
  if (!buildIsFresh()) {
    log('building dist/ (npm run build): the benchmarks measure the compiled code …');
    execFileSync('npm', ['run', '--silent', 'build'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  const dirs = tempDirs();
  const rows: ResultRow[] = [];
  let server: Promise<BenchServer> | undefined;
  const ctx: BenchContext = {
    options,
    server: () => {
      server ??= (async () => {
        log('starting latchkey up (child process) …');
        return startBenchServer(dirs.make('latchkey-bench-'));
      })();
      return server;
    },
    record: (r) => rows.push(r),
    log,
    tmpDir: (prefix) => dirs.make(prefix),
  };
  const m = machine();
  log(`latchkey bench — ${m.cpu}, ${m.cores} cores, Node ${m.node}`);
  const started = Date.now();
  let failed = false;
  try {
    for (const s of selected) {
      log(`\n▶ ${s.name}: ${s.description}`);
      try {
        await s.run(ctx);
      } catch (e) {
        failed = true;
        log(`  FAILED: ${(e as Error).message}`);
      }
    }
  } finally {
    if (server) await (await server.catch(() => undefined))?.stop();
    dirs.cleanup();
  }
  const report = {
    date: new Date().toISOString(),
    machine: m,
    options,
    durationS: Math.round((Date.now() - started) / 1000),
    results: rows,
  };
  if (values.out) {
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
  }
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`\n${formatTable(rows)}\n\n(${report.durationS} s)\n`);
  if (failed) return 1;
  if (values.check && rows.some((r) => r.met === false)) return 1;
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
