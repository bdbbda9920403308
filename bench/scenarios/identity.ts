// The managed-identity endpoint: cached-token requests per second against a bare node:http server
// answering a body of the same size (both in their own process, same run), and cold-token latency
// (a cache miss: client assertion to the authority, then the answer).
import http from 'node:http';
import { join } from 'node:path';
import {
  type BenchContext,
  type ChildServer,
  cpuRow,
  type LoadResult,
  load,
  median,
  percentile,
  REPO_ROOT,
  row,
  type Scenario,
  spawnBenchServer,
} from '../lib.js';

const SERVER = join(REPO_ROOT, 'bench', 'servers', 'identity-server.ts');
const COLD_SAMPLES = 10;

/** Spawns the bench server script in its own process (on the compiled build) and waits for its JSON line. */
const spawnServer = <T>(args: string[]) => spawnBenchServer<T>(SERVER, args);

/** One GET; resolves with status, body size and milliseconds. */
function timedGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; bytes: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers, agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - t0 }));
      })
      .on('error', reject);
  });
}

function recordLoad(ctx: BenchContext, metric: string, r: LoadResult, baseline?: number, target?: string) {
  const scenario = 'identity';
  ctx.record(
    row({
      scenario,
      metric: `${metric} throughput`,
      value: r.rps,
      unit: 'req/s',
      ...(baseline !== undefined ? { baseline } : {}),
      ...(target ? { target } : {}),
    }),
  );
  for (const c of cpuRow(scenario, metric, r)) ctx.record(c);
  ctx.record(row({ scenario, metric: `${metric} latency p50`, value: r.latencyMs.p50, unit: 'ms' }));
  ctx.record(row({ scenario, metric: `${metric} latency p99`, value: r.latencyMs.p99, unit: 'ms' }));
  if (r.non2xx || r.errors) {
    ctx.record(
      row({ scenario, metric: `${metric} failed requests`, value: r.non2xx + r.errors, unit: 'requests' }),
    );
    ctx.log(`  WARNING: ${metric}: ${r.non2xx} non-2xx responses, ${r.errors} connection errors`);
  }
}

interface Lk {
  endpoint: string;
  identityHeader: string;
  vaultResource: string;
  audiences: string[];
}

/**
 * Cached tokens against the bare server, in alternating rounds (on a shared machine, load from
 * elsewhere comes and goes: each round's pair runs back to back; medians are reported).
 */
async function cachedVsBare(
  ctx: BenchContext,
  url: URL,
  headers: Record<string, string>,
  bare: ChildServer<{ port: number }>,
  rounds: number,
  server: ChildServer<unknown>,
) {
  const bareUrl = `http://127.0.0.1:${bare.info.port}${url.pathname}${url.search}`;
  const per = { ...ctx.options, durationS: Math.max(1, ctx.options.durationS / rounds) };
  const cachedRuns: LoadResult[] = [];
  const bareRuns: LoadResult[] = [];
  for (let i = 0; i < rounds; i++) {
    ctx.log(`    round ${i + 1}/${rounds}: cached tokens, then the bare server …`);
    cachedRuns.push(
      await load({ url: url.toString(), host: url.host, headers, serverPids: [server.child.pid] }, per),
    );
    bareRuns.push(
      await load(
        { url: bareUrl, host: `127.0.0.1:${bare.info.port}`, headers, serverPids: [bare.child.pid] },
        per,
      ),
    );
  }
  const mid = (runs: LoadResult[]) => [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]!;
  return {
    cached: mid(cachedRuns),
    bare: mid(bareRuns),
    ratio: median(cachedRuns.map((c, i) => c.rps / bareRuns[i]!.rps)),
  };
}

const scenario: Scenario = {
  name: 'identity',
  description: 'managed-identity endpoint: cached tokens/s vs a bare node:http server; cold-token latency',
  async run(ctx) {
    let bare: ChildServer<{ port: number }> | undefined;
    const rounds = ctx.options.repeats > 1 ? 3 : 1;
    try {
      for (const mode of ['agent', 'up'] as const) {
        ctx.log(
          mode === 'agent'
            ? '  a `latchkey agent` on a second host (its own process, rate limit lifted) …'
            : '  `latchkey up`’s built-in endpoint (in the server process) …',
        );
        const lk = await spawnServer<Lk>([
          mode,
          join(ctx.tmpDir('latchkey-bench-identity-'), 'data'),
          String(mode === 'agent' ? COLD_SAMPLES : 0),
        ]);
        try {
          const headers = { 'X-IDENTITY-HEADER': lk.info.identityHeader };
          const tokenUrl = (resource: string) =>
            `${lk.info.endpoint}/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(resource)}`;
          // The first token of an identity: key pair, self-signed certificate, registration, then the token.
          const first = await timedGet(tokenUrl(lk.info.vaultResource), headers);
          if (first.status !== 200) throw new Error(`identity endpoint: HTTP ${first.status}`);
          bare ??= await spawnServer<{ port: number }>(['bare', String(first.bytes)]);
          const url = new URL(tokenUrl(lk.info.vaultResource));
          if (mode === 'agent') {
            ctx.record(
              row({
                scenario: 'identity',
                metric: 'first token of an identity (key + certificate)',
                value: first.ms,
                unit: 'ms',
              }),
            );
            // Cold tokens: a new audience each time (cache miss: signed assertion, authority round trip).
            const cold: number[] = [];
            for (const aud of lk.info.audiences) {
              const r = await timedGet(tokenUrl(aud), headers);
              if (r.status !== 200) throw new Error(`cold token for ${aud}: HTTP ${r.status}`);
              cold.push(r.ms);
            }
            ctx.record(
              row({
                scenario: 'identity',
                metric: 'cold token latency p50',
                value: median(cold),
                unit: 'ms',
              }),
            );
            ctx.record(
              row({
                scenario: 'identity',
                metric: 'cold token latency max',
                value: percentile(cold, 100),
                unit: 'ms',
              }),
            );
            const r = await cachedVsBare(ctx, url, headers, bare, rounds, lk);
            recordLoad(ctx, 'bare node:http', r.bare);
            recordLoad(ctx, 'cached token (agent)', r.cached);
            ctx.record(
              row({
                scenario: 'identity',
                metric: 'cached token (agent) ÷ bare node:http, median of rounds',
                value: r.ratio,
                unit: 'ratio',
                target: '>= 0.7',
              }),
            );
          } else {
            const r = await cachedVsBare(ctx, url, headers, bare, 1, lk);
            recordLoad(ctx, 'cached token (up, in-process)', r.cached);
            ctx.record(
              row({
                scenario: 'identity',
                metric: 'cached token (up) ÷ bare node:http',
                value: r.ratio,
                unit: 'ratio',
              }),
            );
          }
        } finally {
          await lk.stop();
        }
      }
    } finally {
      await bare?.stop();
    }
  },
};

export default scenario;
