// Scale: secret GET and one list page (+ its nextLink) in a vault of 1,000 secrets vs one of
// 100,000 in the same server, as ratios; and the server's resident memory with them loaded.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import {
  type BenchContext,
  type LoadResult,
  load,
  REPO_ROOT,
  row,
  type Scenario,
  spawnBenchServer,
} from '../lib.js';

const SERVER = join(REPO_ROOT, 'bench', 'servers', 'scale-server.ts');
const SMALL = 1_000;
const LARGE = 100_000;
const VALUE_BYTES = 64;
const PAGE = 25;

interface Seeded {
  appId: string;
  clientSecret: string;
  smallSecret: string;
  largeSecret: string;
  seedMs: number;
}
interface Serving {
  port: number;
  pid: number;
  smallHost: string;
  largeHost: string;
  token: string;
}

/** Spawns the scale server script in its own process (on the compiled build) and waits for its JSON line. */
const spawnServer = <T>(configDir: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnBenchServer<T>(SERVER, args, {
    env: { LATCHKEY_CONFIG_DIR: configDir, ...env },
    readyTimeoutMs: 180_000,
  });

/** One GET straight to 127.0.0.1 with a Host header (no certificate check: setup only). */
function get(port: number, host: string, path: string, token: string) {
  return new Promise<{ status: number; json: { value?: unknown[]; nextLink?: string | null } }>(
    (resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          method: 'GET',
          path,
          headers: { host, authorization: `Bearer ${token}` },
          rejectUnauthorized: false,
          servername: 'localhost',
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json = {};
            try {
              json = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
}

/** VmRSS of a process in MB (Linux /proc), NaN elsewhere. */
function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const fmtN = (n: number) => n.toLocaleString('en-US');

const scenario: Scenario = {
  name: 'scale',
  description: `secret GET and a list page (+ nextLink) in a vault of ${fmtN(LARGE)} vs ${fmtN(SMALL)} secrets; server RSS`,
  async run(ctx: BenchContext) {
    const dataDir = ctx.tmpDir('latchkey-bench-scale-');
    // The CLI's config dir (LATCHKEY_CONFIG_DIR): a temp dir, so nothing here can touch ~/.latchkey.
    const configDir = ctx.tmpDir('latchkey-bench-scale-config-');
    ctx.log(`  seeding ${fmtN(SMALL)} + ${fmtN(LARGE)} secrets in a server process …`);
    const seeder = await spawnServer<Seeded>(configDir, [
      'seed',
      dataDir,
      String(SMALL),
      String(LARGE),
      String(VALUE_BYTES),
    ]);
    await seeder.stop();
    const seeded = seeder.info;
    ctx.log('  restarting the server on the seeded data dir …');
    const srv = await spawnServer<Serving>(configDir, ['serve', dataDir, seeded.appId], {
      BENCH_CLIENT_SECRET: seeded.clientSecret,
    });
    try {
      const { port, pid, token } = srv.info;
      const rec = (metric: string, value: number, unit: string, extra: object = {}) =>
        ctx.record(row({ scenario: 'scale', metric, value, unit, ...extra }));
      rec(`seed ${fmtN(SMALL + LARGE)} secrets (direct inserts)`, seeded.seedMs / 1000, 's');
      rec(`server RSS at ready, ${fmtN(SMALL + LARGE)} secrets stored`, rssMb(pid), 'MB');
      const auth = { authorization: `Bearer ${token}` };
      const warnFailures = (what: string, r: LoadResult) => {
        if (!r.non2xx && !r.errors) return;
        rec(`${what} failed requests`, r.non2xx + r.errors, 'requests');
        ctx.log(`  WARNING: ${what}: ${r.non2xx} non-2xx responses, ${r.errors} connection errors`);
      };
      const run = async (what: string, host: string, path: string) => {
        ctx.log(`  ${what} (${ctx.options.connections} connections) …`);
        const r = await load(
          { url: `https://127.0.0.1:${port}${path}`, host, headers: auth, serverPids: [srv.child.pid] },
          ctx.options,
        );
        warnFailures(what, r);
        return r;
      };
      const vaults = [
        { label: fmtN(SMALL), host: srv.info.smallHost, secret: seeded.smallSecret },
        { label: fmtN(LARGE), host: srv.info.largeHost, secret: seeded.largeSecret },
      ] as const;

      // Secret GET (latest version, value decrypted) in each vault.
      const gets: LoadResult[] = [];
      for (const v of vaults) {
        const path = `/secrets/${v.secret}?api-version=7.5`;
        const check = await get(port, v.host, path, token);
        if (check.status !== 200) throw new Error(`secret get in ${v.label}: HTTP ${check.status}`);
        const r = await run(`secret GET, ${v.label} secrets`, v.host, path);
        gets.push(r);
        rec(`secret GET ${v.label}: throughput`, r.rps, 'req/s');
        rec(`secret GET ${v.label}: latency p50`, r.latencyMs.p50, 'ms');
        rec(`secret GET ${v.label}: latency p99`, r.latencyMs.p99, 'ms');
      }
      const [gs, gl] = gets as [LoadResult, LoadResult];
      rec(`secret GET p50 ${fmtN(LARGE)} / ${fmtN(SMALL)}`, gl.latencyMs.p50 / gs.latencyMs.p50, 'ratio', {
        target: '<= 1.5',
      });
      rec(`secret GET req/s ${fmtN(LARGE)} / ${fmtN(SMALL)}`, gl.rps / gs.rps, 'ratio');

      // The first list page and the page behind its nextLink, in each vault.
      const lists: { first: LoadResult; next: LoadResult }[] = [];
      for (const v of vaults) {
        const firstPath = `/secrets?api-version=7.5&maxresults=${PAGE}`;
        const first = await get(port, v.host, firstPath, token);
        if (first.status !== 200 || first.json.value?.length !== PAGE || !first.json.nextLink)
          throw new Error(`list in ${v.label}: HTTP ${first.status}, no full page with a nextLink`);
        const nextUrl = new URL(first.json.nextLink);
        const nextPath = `${nextUrl.pathname}${nextUrl.search}`;
        const second = await get(port, v.host, nextPath, token);
        if (second.status !== 200 || second.json.value?.length !== PAGE)
          throw new Error(`list nextLink in ${v.label}: HTTP ${second.status}`);
        const a = await run(`list page 1, ${v.label} secrets`, v.host, firstPath);
        const b = await run(`list nextLink page, ${v.label} secrets`, v.host, nextPath);
        lists.push({ first: a, next: b });
        rec(`list page 1 ${v.label}: throughput`, a.rps, 'req/s');
        rec(`list page 1 ${v.label}: latency p50`, a.latencyMs.p50, 'ms');
        rec(`list nextLink ${v.label}: throughput`, b.rps, 'req/s');
        rec(`list nextLink ${v.label}: latency p50`, b.latencyMs.p50, 'ms');
      }
      const [ls, ll] = lists as [(typeof lists)[0], (typeof lists)[0]];
      rec(
        `list page 1 p50 ${fmtN(LARGE)} / ${fmtN(SMALL)}`,
        ll.first.latencyMs.p50 / ls.first.latencyMs.p50,
        'ratio',
      );
      rec(
        `list nextLink p50 ${fmtN(LARGE)} / ${fmtN(SMALL)}`,
        ll.next.latencyMs.p50 / ls.next.latencyMs.p50,
        'ratio',
      );
      rec(`server RSS after the load runs, ${fmtN(LARGE)}-secret vault`, rssMb(pid), 'MB', {
        target: '<= 150',
      });
    } finally {
      await srv.stop();
    }
  },
};

export default scenario;
