// `npm run bench [-- --only tokens,cold-start] [--json] [--out file.json] [--list]`
// Discovers bench/scenarios/*.ts (each default-exports a Scenario), runs them in
// name order against a `latchkey up` child process, and prints a table (or JSON).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type BenchContext,
  type BenchOptions,
  type BenchServer,
  buildIsFresh,
  formatSummary,
  interleave,
  type Pinning,
  pinCores,
  pinningFor,
  REPO_ROOT,
  type ResultRow,
  type Scenario,
  startBenchServer,
  summarize,
  targetRows,
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
  --rounds <n>         interleaved rounds (every scenario once per round, A B C A B C …; default 3):
                       every figure and ratio is reported as the median and min–max of the rounds
  --pin                pin the load generator (this process) to core 0 and the servers to the
                       other cores with taskset (Linux)
  --check              exit 1 when a result's median misses its target

Every load run also reports the server's CPU time per request: user + system time of the server
process (and its children) from /proc/<pid>/stat over the measured window ÷ requests completed.`;

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
    /** 1/5/15-minute load averages at the start (a shared machine's other work shows here). */
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
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
      rounds: { type: 'string' },
      pin: { type: 'boolean' },
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
  const rounds = Math.max(1, Math.round(num(values.rounds, 3, 'rounds')));
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
  let pinning: Pinning | undefined;
  if (values.pin) {
    pinning = pinningFor(cpus().length);
    pinCores(pinning);
    log(`pinned: load generator on core ${pinning.load}, servers on core(s) ${pinning.server} (taskset)`);
  }
  const dirs = tempDirs();
  const rows: ResultRow[] = [];
  let round = 1;
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
    record: (r) => rows.push({ ...r, round }),
    log,
    tmpDir: (prefix) => dirs.make(prefix),
  };
  const m = machine();
  log(`latchkey bench — ${m.cpu}, ${m.cores} cores, Node ${m.node}, load average ${m.loadAverage.join(' ')}`);
  const started = Date.now();
  let failed = false;
  try {
    for (const step of interleave(selected, rounds)) {
      const s = step.item;
      round = step.round;
      log(`\n▶ ${s.name} (round ${round}/${rounds}): ${s.description}`);
      try {
        await s.run(ctx);
      } catch (e) {
        failed = true;
        log(`  FAILED: ${(e as Error).message}`);
      }
    }
    for (let r = 1; r <= rounds; r++)
      for (const t of targetRows(rows.filter((x) => x.round === r))) rows.push({ ...t, round: r });
  } finally {
    if (server) await (await server.catch(() => undefined))?.stop();
    dirs.cleanup();
  }
  const summary = summarize(rows);
  const report = {
    date: new Date().toISOString(),
    machine: m,
    options: { ...options, rounds, pinning: pinning ?? null },
    durationS: Math.round((Date.now() - started) / 1000),
    loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
    summary,
    results: rows,
  };
  if (values.out) {
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
  }
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const pinned = pinning
      ? `load generator on core ${pinning.load}, servers on ${pinning.server}`
      : 'not pinned';
    process.stdout.write(
      `\n${formatSummary(summary)}\n\n(median and min–max of ${rounds} interleaved round${rounds > 1 ? 's' : ''}; ${pinned}; load average ${m.loadAverage[0]} → ${report.loadAverageAtEnd[0]}; ${report.durationS} s)\n`,
    );
  }
  if (failed) return 1;
  if (values.check && summary.some((r) => r.met === false)) return 1;
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
