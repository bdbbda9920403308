// Shared benchmark machinery: the server under test in a child process, load
// generation (autocannon, keep-alive, fixed concurrency, warm-up), in-process
// micro-benchmarks, percentiles and reporting. See docs/performance.md.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import ts from 'typescript';
import { buildIsFresh as isFresh } from '../bin/build-fresh.js';
import type { ReadyInfo } from '../src/server/up.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(REPO_ROOT, 'bin', 'latchkey.js');
/** The client id of the CLI (public client for the password grant). */
export const CLI_CLIENT_ID = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';

/** One measured figure. `ratio` = value / baseline when a baseline is given. */
export interface ResultRow {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  /** The goal, e.g. '>= 2000' or '< 1000'; `met` says whether value reaches it. */
  target?: string;
  met?: boolean;
  /** The round (1, 2, …) that measured it; set by the runner. */
  round?: number;
}

export interface BenchOptions {
  /** Seconds of measured load per HTTP run. */
  durationS: number;
  /** Seconds of warm-up load before each measured run (not recorded). */
  warmupS: number;
  /** Concurrent keep-alive connections. */
  connections: number;
  /** Repetitions for start-up measurements. */
  repeats: number;
}

export interface BenchContext {
  options: BenchOptions;
  /** The shared `latchkey up` child process (started on first use, stopped at the end). */
  server(): Promise<BenchServer>;
  record(row: ResultRow): void;
  /** Progress for people, on stderr (stdout stays clean for --json). */
  log(message: string): void;
  /** A temp dir removed when the run ends. */
  tmpDir(prefix: string): string;
}

export interface Scenario {
  /** Short id used by `--only` (e.g. 'tokens'). */
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

/** Checks a value against a target such as '>= 2000' or '< 1000'. */
export function meets(value: number, target: string): boolean {
  const m = /^(>=|<=|>|<)\s*([\d.]+)$/.exec(target.trim());
  if (!m) return false;
  const t = Number(m[2]);
  switch (m[1]) {
    case '>=':
      return value >= t;
    case '<=':
      return value <= t;
    case '>':
      return value > t;
    default:
      return value < t;
  }
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/** Completes a result: rounds it, adds the ratio to its baseline and whether it meets its target. */
export function row(r: ResultRow): ResultRow {
  const out: ResultRow = { ...r, value: round(r.value, 2) };
  if (r.baseline !== undefined) out.baseline = round(r.baseline, 2);
  if (r.baseline !== undefined && r.baseline > 0) out.ratio = round(r.value / r.baseline, 4);
  if (r.target !== undefined) out.met = meets(r.value, r.target);
  return out;
}

// ---------------------------------------------------------------- statistics

/** The p-th percentile (0–100) of `values`, nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

/** Median and range of one figure over the rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/**
 * The order of interleaved rounds: every scenario once per round, rounds one
 * after the other (A B C A B C …), so a slow minute of a shared machine hits
 * every figure of a round rather than all rounds of one figure.
 */
export function interleave<T>(items: readonly T[], rounds: number): { round: number; item: T }[] {
  const out: { round: number; item: T }[] = [];
  for (let round = 1; round <= rounds; round++) for (const item of items) out.push({ round, item });
  return out;
}

/** One figure over all rounds: the median and range of its value and of its ratio to its baseline. */
export interface SummaryRow {
  scenario: string;
  metric: string;
  unit: string;
  value: Spread;
  ratio?: Spread;
  target?: string;
  /** Whether the median meets the target. */
  met?: boolean;
}

/** Groups the rows of every round by (scenario, metric), in first-seen order. */
export function summarize(rows: readonly ResultRow[]): SummaryRow[] {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const k = `${r.scenario}\u0000${r.metric}`;
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  return [...groups.values()].map((g) => {
    const first = g[0]!;
    const value = spread(g.map((r) => r.value));
    const ratios = g.flatMap((r) => (r.ratio === undefined ? [] : [r.ratio]));
    const out: SummaryRow = { scenario: first.scenario, metric: first.metric, unit: first.unit, value };
    if (ratios.length) out.ratio = spread(ratios);
    if (first.target !== undefined) {
      out.target = first.target;
      out.met = meets(value.median, first.target);
    }
    return out;
  });
}

/**
 * The targets of issue 19, each a ratio of two figures of the same round:
 * [metric, numerator, denominator, target] (a ratio without a target is reported only). A row is
 * left out of a round that lacks one of its figures (a scenario not selected, or skipped).
 */
export const TARGETS: readonly [string, [string, string], [string, string], string | undefined][] = [
  [
    'secret GET server CPU per request ÷ floor',
    ['secrets', 'secret GET server CPU per request'],
    ['secrets', 'floor (1 process) GET server CPU per request'],
    '<= 1.5',
  ],
  [
    'secret GET throughput ÷ one-process floor',
    ['secrets', 'secret GET throughput'],
    ['secrets', 'floor (1 process) GET throughput'],
    '>= 0.75',
  ],
  [
    // Both on the `keys` scenario's server, the GET on both sides of the sign (since session 18)
    'vault ES256 sign ÷ secret GET throughput',
    ['keys', 'vault ES256 sign throughput'],
    ['keys', 'secret GET beside the ES256 sign throughput'],
    '>= 0.8',
  ],
  [
    // The target's figure until session 17: the `secrets` scenario's GET, another server, minutes away
    'vault ES256 sign ÷ the secrets scenario GET throughput',
    ['keys', 'vault ES256 sign throughput'],
    ['secrets', 'secret GET throughput'],
    undefined,
  ],
  [
    // PS256 over RSA-2048: the assertion the official clients send (bench/client-assertions.ts)
    'client_assertion PS256 ÷ client_secret tokens/s',
    ['tokens', 'client_assertion PS256 throughput'],
    ['tokens', 'client_secret throughput'],
    '>= 0.7',
  ],
  [
    // ES256 over P-256, which no official client sends: reported, no target (docs/performance.md)
    'client_assertion ES256 ÷ client_secret tokens/s',
    ['tokens', 'client_assertion ES256 throughput'],
    ['tokens', 'client_secret throughput'],
    undefined,
  ],
  [
    'secret SET ÷ secret GET throughput',
    ['secrets', 'secret SET throughput'],
    ['secrets', 'secret GET throughput'],
    '>= 0.5',
  ],
  [
    'PostgreSQL node GET ÷ SQLite node GET',
    ['nodes', 'one node secret GET throughput'],
    ['nodes', 'one node on SQLite secret GET throughput'],
    '>= 0.8',
  ],
];

/**
 * Whether the load run behind a figure (`… throughput`, `… server CPU per request`) had failed
 * requests: the scenario's `… failed requests` row of the same run, above 0.
 */
export function failedRun(roundRows: readonly ResultRow[], [scenario, metric]: [string, string]): boolean {
  const run = metric.replace(/ (throughput|server CPU per request)$/, '');
  if (run === metric) return false;
  return roundRows.some(
    (r) => r.scenario === scenario && r.metric === `${run} failed requests` && r.value > 0,
  );
}

/** The last row of the issue's table: the share of the turn-one targets measured in a round that are met. */
export const TURN_ONE_METRIC = 'turn-one targets met (share of those measured)';

/**
 * The target rows of one round, from that round's rows (scenario 'targets'): the ratios of
 * `TARGETS`, then the share of the round's other rows with a target (the turn-one targets:
 * tokens/s, cold start, cached identity tokens, GET at 100,000 secrets, RSS) that meet it.
 */
export function targetRows(roundRows: readonly ResultRow[]): ResultRow[] {
  const find = ([scenario, metric]: [string, string]) =>
    roundRows.find((r) => r.scenario === scenario && r.metric === metric)?.value;
  const ratios = TARGETS.flatMap(([metric, num, den, target]) => {
    const a = find(num);
    const b = find(den);
    if (a === undefined || b === undefined || !(b > 0)) return [];
    // Throughput counts only 2xx answers: a figure from a load run with failed requests (e.g. 429s
    // of a rate limit) measures the failures, not the work, so its ratio is left out of the round.
    if (failedRun(roundRows, num) || failedRun(roundRows, den)) return [];
    return [row({ scenario: 'targets', metric, value: a / b, unit: 'ratio', ...(target ? { target } : {}) })];
  });
  const turnOne = roundRows.filter((r) => r.scenario !== 'targets' && r.met !== undefined);
  if (turnOne.length === 0) return ratios;
  const met = turnOne.filter((r) => r.met).length;
  return [
    ...ratios,
    row({
      scenario: 'targets',
      metric: TURN_ONE_METRIC,
      value: met / turnOne.length,
      unit: 'ratio',
      target: '>= 1',
    }),
  ];
}

// ---------------------------------------------------------------- server CPU time (/proc)

/** The fields of /proc/<pid>/stat the bench reads; times in clock ticks. */
export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  utime: number;
  stime: number;
}

/**
 * Parses /proc/<pid>/stat (proc(5)). The command name is in parentheses and may
 * itself hold spaces and parentheses, so the fields are counted from the last ')'.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error('not a /proc/<pid>/stat line');
  // After the name: field 3 (state) is rest[0], so field k is rest[k - 3].
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const field = (k: number) => {
    const v = Number(rest[k - 3]);
    if (!Number.isInteger(v)) throw new Error(`bad /proc/<pid>/stat field ${k}`);
    return v;
  };
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    ppid: field(4),
    utime: field(14),
    stime: field(15),
  };
}

/** `roots` and every process below them, from a list of processes (pid, ppid). */
export function processTree(
  roots: readonly number[],
  all: readonly Pick<ProcStat, 'pid' | 'ppid'>[],
): number[] {
  const children = new Map<number, number[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const out = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const pid = stack.pop()!;
    if (out.has(pid)) continue;
    out.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return [...out];
}

function readAllStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      out.push(parseProcStat(readFileSync(`/proc/${d}/stat`, 'utf8')));
    } catch {} // gone meanwhile, or not readable
  }
  return out;
}

let ticksPerSecond: number | undefined;
const clockTicks = () => {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
};

/** CPU ticks (user + system) so far of each process of the trees under `roots`; empty off Linux. */
export function cpuSnapshot(roots: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  if (process.platform !== 'linux' || roots.length === 0) return out;
  const all = readAllStats();
  const byPid = new Map(all.map((p) => [p.pid, p]));
  for (const pid of processTree(roots, all)) {
    const p = byPid.get(pid);
    if (p) out.set(pid, p.utime + p.stime);
  }
  return out;
}

/** CPU seconds the processes used between two snapshots (a process new in `after` counts from 0). */
export function cpuSecondsBetween(
  before: Map<number, number>,
  after: Map<number, number>,
  hz = clockTicks(),
) {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return ticks / hz;
}

// ---------------------------------------------------------------- core pinning

/** `--pin`: the cores of the load generator (this process) and of the servers it starts. */
export interface Pinning {
  load: string;
  server: string;
}
let pinning: Pinning | undefined;

/** Pins this process (every thread) to `p.load`; servers started later run under `taskset -c p.server`. */
export function pinCores(p: Pinning): void {
  execFileSync('taskset', ['-a', '-p', '-c', p.load, String(process.pid)], { stdio: 'ignore' });
  pinning = p;
}

/** The split for `cores` cores: core 0 for the load generator, the others for the servers. */
export function pinningFor(cores: number): Pinning {
  if (cores < 2) throw new Error('--pin needs at least 2 cores');
  return { load: '0', server: cores === 2 ? '1' : `1-${cores - 1}` };
}

// ---------------------------------------------------------------- processes

export interface ChildServer<T> {
  info: T;
  child: ChildProcess;
  /** Milliseconds from spawn to the JSON ready line. */
  readyMs: number;
  stderr(): string;
  stop(): Promise<number | null>;
}

/**
 * Node flags of a server process, as bin/latchkey.js's shebang and `npm start` set them, plus
 * LATCHKEY_BENCH_NODE_FLAGS (space-separated), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to
 * profile the servers under load.
 */
export const SERVER_NODE_FLAGS = [
  '--max-semi-space-size=4',
  ...(process.env.LATCHKEY_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
];

/**
 * Spawns `node ...argv` (a separate process: its event loop and the load
 * generator's never share a thread) and waits for its first JSON line on stdout.
 */
function spawnJsonChild<T>(
  argv: string[],
  o: { label: string; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number },
): Promise<ChildServer<T>> {
  const t0 = performance.now();
  const nodeArgv = [process.execPath, ...SERVER_NODE_FLAGS, ...argv];
  // taskset execs node: the child's pid is the server's.
  const [cmd, ...cmdArgs] = pinning ? ['taskset', '-c', pinning.server, ...nodeArgv] : nodeArgv;
  const child = spawn(cmd!, cmdArgs, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(kill);
    return code;
  };
  const timeoutMs = o.readyTimeoutMs ?? 60_000;
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${o.label} not ready after ${timeoutMs / 1000} s:\n${err}`));
    }, timeoutMs);
    let ready = false;
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out
        .split('\n')
        .slice(0, -1)
        .find((l) => l.startsWith('{'));
      if (ready || !line) return;
      ready = true;
      clearTimeout(timer);
      const readyMs = performance.now() - t0;
      resolvePromise({ info: JSON.parse(line) as T, child, readyMs, stderr: () => err, stop });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${o.label} exited (${code}) before ready:\n${err}`));
    });
  });
}

/** `node bin/latchkey.js ...args` (the compiled build when it is fresh, as for users; see bin/latchkey.js). */
export const spawnLatchkey = <T>(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildServer<T>> =>
  spawnJsonChild<T>([BIN, ...args], { label: `latchkey ${args[0]}`, env });

/** True when dist/ (what `latchkey` runs) is at least as new as every file in src/. */
export const buildIsFresh = (): boolean => isFresh(REPO_ROOT);

/**
 * Runs a bench server script (bench/servers/*.ts) on the compiled build: the
 * script alone is transpiled to a temporary .mjs whose `../../src/*.js`
 * imports point at dist/, then run with plain node. The sources through tsx
 * would be measured instead: loader hooks, source maps and keep-names wrappers
 * cost about a third of the throughput. `latchkey` itself runs the bundle of
 * dist/ (scripts/bundle.mjs), which the scenarios that spawn it measure
 * (`keys`, `tokens`, `identity`, `cold-start`, `nodes`): `nodes`' one node on
 * SQLite is the bundle's secret GET beside `secrets`' on dist/ (the same cost
 * in session 17's run). The bench runner builds first when dist/ is stale (see
 * bench/run.ts); without a fresh build this falls back to tsx and says so.
 */
export function spawnBenchServer<T>(
  script: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; readyTimeoutMs?: number } = {},
): Promise<ChildServer<T>> {
  const label = `bench server ${basename(script)}`;
  if (!buildIsFresh()) {
    process.stderr.write(`  note: dist/ is older than src/: ${label} runs the sources through tsx\n`);
    return spawnJsonChild<T>(['--import', 'tsx', script, ...args], { label, ...o });
  }
  const dist = pathToFileURL(join(REPO_ROOT, 'dist')).href;
  const js = ts
    .transpileModule(readFileSync(script, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    })
    .outputText.replace(/(['"])\.\.\/\.\.\/src\//g, `$1${dist}/`)
    .replace(/import\.meta\.url/g, JSON.stringify(pathToFileURL(script).href));
  const out = join(benchBuildDir(), `${basename(script, '.ts')}.mjs`);
  writeFileSync(out, js);
  return spawnJsonChild<T>([out, ...args], { label, ...o });
}

let buildDir: string | undefined;
const benchBuildDir = () => {
  buildDir ??= mkdtempSync(join(tmpdir(), 'latchkey-bench-build-'));
  return buildDir;
};
process.once('exit', () => {
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

/**
 * `latchkey up --json` on port 0 with `dataDir`. `limitsOff` starts it with the per-address and
 * per-principal rate limits off, as the `secrets` and `scale` servers run: the load generator is one
 * address and one principal, and the limits (5,000 and 2,000 requests/s) would otherwise cap, with
 * 429s, what is meant to measure the work of a request (the `keys` scenario's ES256 sign was capped
 * at 2,000/s plus the burst by the per-principal limit; issue 19).
 */
export const spawnUp = (dataDir: string, configDir: string, o: { limitsOff?: boolean } = {}) =>
  spawnLatchkey<ReadyInfo>(upArgs(dataDir, o), { LATCHKEY_CONFIG_DIR: configDir });

/** The arguments of {@link spawnUp}'s `latchkey up`. */
export const upArgs = (dataDir: string, o: { limitsOff?: boolean } = {}): string[] => [
  'up',
  '--json',
  '--port',
  '0',
  '--identity-port',
  '0',
  '--data-dir',
  dataDir,
  '--log-level',
  'warn',
  ...(o.limitsOff ? ['--limit', 'per-address-rate=0', '--limit', 'per-principal-rate=0'] : []),
];

/**
 * One HTTPS request straight to 127.0.0.1 with a Host header; its status and body. With `ca` the
 * server's certificate is checked against it (for `localhost`); without, not (setup only).
 */
export function requestOnce(
  port: number | string,
  host: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
  ca?: string | Buffer,
) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { host, ...headers },
        ...(ca === undefined ? { rejectUnauthorized: false } : { ca }),
        servername: 'localhost',
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

// ---------------------------------------------------------------- the server under test

export interface HttpResult {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are arbitrary JSON
  json: any;
}

export interface BenchServer {
  info: ReadyInfo;
  /** The server's process id (for its CPU time per request). */
  pid: number | undefined;
  /** The dev CA (PEM) the server's certificate chains to. */
  ca: string;
  /** Host and port for load generators (127.0.0.1: no resolver in the loop). */
  hostPort: string;
  request(
    method: string,
    pathOrUrl: string,
    opts?: { json?: unknown; form?: Record<string, string>; token?: string },
  ): Promise<HttpResult>;
  adminToken(resource?: string): Promise<string>;
  /** A new service principal with a client secret (or a registered certificate). */
  createServicePrincipal(
    name: string,
    certificatePem?: string,
  ): Promise<{ appId: string; objectId: string; secret?: string }>;
  stop(): Promise<void>;
}

export async function startBenchServer(tmp: string): Promise<BenchServer> {
  const p = await spawnUp(join(tmp, 'data'), join(tmp, 'config'), { limitsOff: true });
  const ca = readFileSync(p.info.caCertPath, 'utf8');
  const port = new URL(p.info.authority).port;
  const agent = new https.Agent({ ca, keepAlive: true, servername: 'localhost' });
  const request: BenchServer['request'] = (method, pathOrUrl, o = {}) =>
    new Promise((res, rej) => {
      const headers: Record<string, string> = { host: `localhost:${port}` };
      let body: string | undefined;
      if (o.json !== undefined) {
        body = JSON.stringify(o.json);
        headers['content-type'] = 'application/json';
      } else if (o.form) {
        body = new URLSearchParams(o.form).toString();
        headers['content-type'] = 'application/x-www-form-urlencoded';
      }
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      const path = pathOrUrl.startsWith('https://') ? new URL(pathOrUrl).pathname : pathOrUrl;
      const req = https.request({ host: '127.0.0.1', port, path, method, headers, agent }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {}
          res({ status: r.statusCode ?? 0, text, json });
        });
      });
      req.on('error', rej);
      if (body) req.write(body);
      req.end();
    });
  const admin = JSON.parse(readFileSync(p.info.adminCredentialsPath, 'utf8')) as {
    userName: string;
    password: string;
  };
  const tokens = new Map<string, string>();
  const adminToken = async (resource = p.info.managementResource) => {
    const hit = tokens.get(resource);
    if (hit) return hit;
    const r = await request('POST', `/${p.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'password',
        client_id: CLI_CLIENT_ID,
        username: admin.userName,
        password: admin.password,
        scope: `${resource}/.default`,
      },
    });
    if (r.status !== 200) throw new Error(`admin token: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    tokens.set(resource, r.json.access_token);
    return r.json.access_token as string;
  };
  return {
    info: p.info,
    pid: p.child.pid,
    ca,
    hostPort: `127.0.0.1:${port}`,
    request,
    adminToken,
    async createServicePrincipal(name, certificatePem) {
      const r = await request('POST', '/api/directory/servicePrincipals', {
        token: await adminToken(),
        json: {
          displayName: name,
          credential: certificatePem
            ? { type: 'AsymmetricX509Cert', certificate: certificatePem }
            : { type: 'Password' },
        },
      });
      if (r.status !== 201)
        throw new Error(`create service principal: HTTP ${r.status} ${r.text.slice(0, 200)}`);
      return {
        appId: r.json.servicePrincipal.appId,
        objectId: r.json.servicePrincipal.id,
        ...(r.json.credential?.secretText ? { secret: r.json.credential.secretText } : {}),
      };
    },
    async stop() {
      agent.destroy();
      await p.stop();
    },
  };
}

// ---------------------------------------------------------------- load generation

export interface LoadSpec {
  /** Absolute https URL (the host should be 127.0.0.1:port; `host` sets the Host header). */
  url: string;
  host: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Builds each request's body (e.g. a fresh client assertion); runs in the load generator. */
  nextBody?: () => string;
  /** The server's process ids (their child processes count too): for its CPU time per request. */
  serverPids?: readonly (number | undefined)[];
}

export interface LoadResult {
  rps: number;
  requests: number;
  non2xx: number;
  errors: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Server CPU time (user + system) over the measured window ÷ requests completed, µs; NaN when unknown. */
  cpuUsPerRequest: number;
}

/**
 * Fixed-concurrency load over keep-alive HTTPS connections with autocannon:
 * `warmupS` seconds unrecorded, then `durationS` seconds measured.
 */
export async function load(spec: LoadSpec, o: BenchOptions): Promise<LoadResult> {
  const headers = { host: spec.host, ...spec.headers };
  const opts = {
    url: spec.url,
    connections: o.connections,
    method: spec.method ?? 'GET',
    headers,
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    ...(spec.nextBody
      ? {
          requests: [
            {
              setupRequest: (req: { body?: string | Buffer }) => ({ ...req, body: spec.nextBody!() }),
            },
          ],
        }
      : {}),
    servername: 'localhost',
    timeout: 10,
  };
  if (o.warmupS > 0) await autocannon({ ...opts, duration: o.warmupS });
  const pids = (spec.serverPids ?? []).filter((p): p is number => p !== undefined);
  const before = cpuSnapshot(pids);
  const r = await autocannon({ ...opts, duration: o.durationS });
  const after = cpuSnapshot(pids);
  const completed = r.requests.total;
  return {
    cpuUsPerRequest:
      after.size > 0 && completed > 0 ? (cpuSecondsBetween(before, after) * 1e6) / completed : Number.NaN,
    rps: r['2xx'] / r.duration,
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
  };
}

/** Two load runs of one spec as one: counts summed, rates and CPU per request weighted by requests. */
export function mergeHalves(a: LoadResult, b: LoadResult): LoadResult {
  const n = a.requests + b.requests;
  const w = (x: number, y: number) => (n > 0 ? (x * a.requests + y * b.requests) / n : Number.NaN);
  return {
    rps: (a.rps + b.rps) / 2, // equal windows: the mean of the two rates is the rate of the whole
    requests: n,
    non2xx: a.non2xx + b.non2xx,
    errors: a.errors + b.errors,
    // Percentiles of two windows cannot be merged exactly: the median and p90 as the weighted mean
    // of the halves', p99 and max as the higher of the two.
    latencyMs: {
      p50: w(a.latencyMs.p50, b.latencyMs.p50),
      p90: w(a.latencyMs.p90, b.latencyMs.p90),
      p99: Math.max(a.latencyMs.p99, b.latencyMs.p99),
      max: Math.max(a.latencyMs.max, b.latencyMs.max),
    },
    cpuUsPerRequest: w(a.cpuUsPerRequest, b.cpuUsPerRequest),
  };
}

/**
 * A load run and its baseline, bracketed: the baseline for half the duration, the subject for the
 * whole duration, then the baseline's second half (each with its own warm-up before its first
 * window). On a shared VM the machine's speed drifts by 10–40 % over a minute; two figures
 * measured minutes apart put that drift into their ratio, and a baseline on both sides of its
 * subject cancels a steady drift (an A-B-A design). Both servers stay up throughout (the idle one
 * costs nothing).
 */
export async function loadBracketed(
  baseline: LoadSpec,
  subject: LoadSpec,
  o: BenchOptions,
): Promise<{ baseline: LoadResult; subject: LoadResult }> {
  const half = { ...o, durationS: o.durationS / 2 };
  const first = await load(baseline, half);
  const measured = await load(subject, o);
  const second = await load(baseline, { ...half, warmupS: 0 });
  return { baseline: mergeHalves(first, second), subject: measured };
}

/** The server's CPU time per request of a load run, as a row (none when it could not be read). */
export function cpuRow(scenario: string, metric: string, r: LoadResult): ResultRow[] {
  if (!Number.isFinite(r.cpuUsPerRequest)) return [];
  return [
    row({ scenario, metric: `${metric} server CPU per request`, value: r.cpuUsPerRequest, unit: 'µs' }),
  ];
}

/** Runs `fn` back to back for about `ms` milliseconds (after a short warm-up); operations per second. */
export async function opsPerSecond(fn: () => unknown | Promise<unknown>, ms: number): Promise<number> {
  const warm = performance.now() + Math.min(300, ms / 4);
  while (performance.now() < warm) await fn();
  let n = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await fn();
    n += 50;
  }
  return n / ((performance.now() - t0) / 1000);
}

// ---------------------------------------------------------------- reporting

const fmt = (v: number | undefined, digits = 0): string => {
  if (v === undefined || Number.isNaN(v)) return '';
  if (Math.abs(v) < 10 && digits === 0) return v.toFixed(2);
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
};

/** A plain-text table for people. */
export function formatTable(rows: readonly ResultRow[]): string {
  const head = ['scenario', 'metric', 'value', 'unit', 'baseline', 'ratio', 'target', ''];
  const body = rows.map((r) => [
    r.scenario,
    r.metric,
    fmt(r.value),
    r.unit,
    fmt(r.baseline),
    r.ratio === undefined ? '' : `${r.ratio.toFixed(3)}×`,
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'ok' : 'MISSED',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const right = new Set([2, 4, 5]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

const fmtSpread = (v: Spread, digits = 0) => (v.n > 1 ? `${fmt(v.min, digits)}–${fmt(v.max, digits)}` : '');

/**
 * The table of an interleaved run: every figure and ratio as the median of the
 * rounds with its min–max, and whether the median meets the target.
 */
export function formatSummary(rows: readonly SummaryRow[]): string {
  const head = ['scenario', 'metric', 'median', 'min–max', 'unit', 'ratio', 'ratio min–max', 'target', ''];
  const body = rows.map((r) => {
    const ratioDigits = r.unit === 'ratio' ? 3 : 0;
    return [
      r.scenario,
      r.metric,
      fmt(r.value.median, ratioDigits),
      fmtSpread(r.value, ratioDigits),
      r.unit,
      r.ratio ? `${r.ratio.median.toFixed(3)}×` : '',
      r.ratio ? fmtSpread(r.ratio, 3) : '',
      r.target ?? '',
      r.met === undefined ? '' : r.met ? 'met' : 'NOT MET',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const right = new Set([2, 3, 5, 6]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** Creates and tracks temp dirs for a run. */
export function tempDirs(): { make(prefix: string): string; cleanup(): void } {
  const dirs: string[] = [];
  return {
    make(prefix) {
      const d = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    cleanup() {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}
