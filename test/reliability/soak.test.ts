import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startUpProcess, type UpProcess } from '../helpers/cli.js';
import {
  adminToken,
  clientToken,
  FULL,
  type HttpClient,
  httpClient,
  provisionVaultWriter,
  rssOf,
  size,
  sleep,
  vaultArm,
} from './lib.js';

/**
 * Soak: a real `latchkey up` child process under bounded concurrency with a
 * mixed workload (token issuance, secret get/set/list, management reads).
 * Zero errors — a 429 from our own limits counts as one — and the server's
 * resident memory stays bounded (sampled from /proc/<pid>/status).
 */
const CONNECTIONS = size(20, 200);
const DURATION_MS = size(5_000, 60_000);
/** Allowed RSS growth from the end of the warm-up (first fifth) to the end. */
const MAX_GROWTH_BYTES = size(120, 200) * 1024 * 1024;
const NAMES = 50;

describe(`soak: ${CONNECTIONS} connections for ${DURATION_MS / 1000} s (${FULL ? 'full' : 'short'})`, () => {
  let proc: UpProcess;
  let c: HttpClient;
  let writer: { appId: string; secret: string };
  let mgmtToken: string;

  before(async () => {
    // The defaults would serve this load too; the flags show the limits are set from the command line.
    proc = await startUpProcess({
      args: [
        '--no-identity',
        '--limit',
        'per-principal-rate=1000000',
        '--limit',
        'per-principal-burst=1000000',
      ],
    });
    c = httpClient(proc.info.authority, readFileSync(proc.info.caCertPath, 'utf8'), {
      maxSockets: CONNECTIONS,
    });
    const admin = JSON.parse(readFileSync(proc.info.adminCredentialsPath, 'utf8'));
    mgmtToken = await adminToken(c, proc.info, admin);
    writer = await provisionVaultWriter(c, proc.info, mgmtToken, 'soakvault');
  });
  after(async () => {
    c?.close();
    await proc?.close();
  });

  test('mixed workload: zero errors, bounded memory', async (t) => {
    const info = proc.info;
    const vault = info.vaultUrlTemplate.replace('{name}', 'soakvault');
    const q = 'api-version=7.5';
    let token = await clientToken(c, info, writer);
    const vh = () => ({ authorization: `Bearer ${token}` });
    const mh = { authorization: `Bearer ${mgmtToken}` };
    for (let i = 0; i < NAMES; i++) {
      const r = await c.request('PUT', `${vault}/secrets/soak-${i}?${q}`, {
        headers: vh(),
        json: { value: `seed-${i}` },
      });
      assert.equal(r.status, 200, r.text);
    }
    const counts: Record<string, number> = {};
    const errors: string[] = [];
    const latencies: number[] = [];
    const ops: [number, string, () => Promise<{ status: number; text: string }>][] = [
      [
        10,
        'token',
        async () => {
          const r = await c.request('POST', `/${info.tenantId}/oauth2/v2.0/token`, {
            form: {
              grant_type: 'client_credentials',
              client_id: writer.appId,
              client_secret: writer.secret,
              scope: `${info.vaultResource}/.default`,
            },
          });
          if (r.status === 200) token = r.json.access_token;
          return r;
        },
      ],
      [
        35,
        'secret-get',
        () =>
          c.request('GET', `${vault}/secrets/soak-${(Math.random() * NAMES) | 0}?${q}`, { headers: vh() }),
      ],
      [
        20,
        'secret-set',
        () =>
          c.request('PUT', `${vault}/secrets/soak-${(Math.random() * NAMES) | 0}?${q}`, {
            headers: vh(),
            json: { value: `v-${Date.now()}-${Math.random()}` },
          }),
      ],
      [15, 'secret-list', () => c.request('GET', `${vault}/secrets?maxresults=25&${q}`, { headers: vh() })],
      [
        10,
        'vault-list',
        () =>
          c.request(
            'GET',
            `/subscriptions/${info.subscriptionId}/resourceGroups/default/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01`,
            { headers: mh },
          ),
      ],
      [
        5,
        'vault-get',
        () => c.request('GET', `${vaultArm(info, 'soakvault')}?api-version=2023-07-01`, { headers: mh }),
      ],
      [5, 'account', () => c.request('GET', '/api/account', { headers: mh })],
    ];
    const total = ops.reduce((n, [w]) => n + w, 0);
    const choose = () => {
      let x = Math.random() * total;
      for (const op of ops) {
        x -= op[0];
        if (x < 0) return op;
      }
      return ops[0]!;
    };
    const pid = proc.child.pid!;
    const rss: { at: number; bytes: number }[] = [];
    const t0 = Date.now();
    const end = t0 + DURATION_MS;
    const sampler = (async () => {
      while (Date.now() < end) {
        const b = await rssOf(pid);
        if (b !== undefined) rss.push({ at: Date.now() - t0, bytes: b });
        await sleep(250);
      }
    })();
    const worker = async () => {
      while (Date.now() < end) {
        const [, name, run] = choose();
        const s0 = Date.now();
        try {
          const r = await run();
          latencies.push(Date.now() - s0);
          counts[name] = (counts[name] ?? 0) + 1;
          if (r.status < 200 || r.status >= 300) errors.push(`${name}: ${r.status} ${r.text.slice(0, 150)}`);
        } catch (e) {
          errors.push(`${name}: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
    await sampler;
    const final = await rssOf(pid);
    if (final !== undefined) rss.push({ at: Date.now() - t0, bytes: final });
    const requests = latencies.length;
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
    const warm = rss.filter((x) => x.at >= DURATION_MS / 5);
    const base = warm[0]?.bytes ?? rss[0]?.bytes ?? 0;
    const peak = Math.max(...rss.map((x) => x.bytes));
    const last = rss.at(-1)?.bytes ?? 0;
    const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
    t.diagnostic(
      `soak: connections=${CONNECTIONS} seconds=${DURATION_MS / 1000} requests=${requests} rps=${Math.round(
        requests / (DURATION_MS / 1000),
      )} errors=${errors.length} p50=${pct(0.5)}ms p99=${pct(0.99)}ms ops=${JSON.stringify(counts)}`,
    );
    t.diagnostic(`soak: server RSS after warm-up=${mb(base)} MB peak=${mb(peak)} MB end=${mb(last)} MB`);
    assert.deepEqual(errors.slice(0, 10), [], `${errors.length} errors`);
    assert.ok(requests > CONNECTIONS * 5, `only ${requests} requests`);
    assert.ok(rss.length >= 3, 'RSS sampled');
    assert.ok(last - base < MAX_GROWTH_BYTES, `RSS grew ${mb(last - base)} MB`);
    // Still healthy afterwards.
    assert.equal((await c.request('GET', '/healthz')).status, 200);
  });
});
