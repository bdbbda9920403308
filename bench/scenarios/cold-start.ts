// Cold start of `latchkey up` on an existing data dir: from spawning the
// process to its JSON ready line (what a developer or a CI job waits for).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReadyInfo } from '../../src/server/up.js';
import { CLI_CLIENT_ID, median, requestOnce, row, type Scenario, spawnUp } from '../lib.js';

/** One HTTPS request to the server on 127.0.0.1 with a Host header, its certificate checked. */
function call(
  info: ReadyInfo,
  host: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
) {
  const port = new URL(info.authority).port;
  return requestOnce(port, `${host}:${port}`, method, path, headers, body, readFileSync(info.caCertPath));
}

/**
 * What a client sees right after the ready line: the admin's first token (password grant: the
 * token signer and its libraries load with it) and then a secret GET with it on a vault host (the
 * vault data plane is built on its first request; the bench's vault does not exist, so a 404 from
 * the vault app). Start defers these to their first use (docs/performance.md), so this row shows
 * what the deferral moves past the ready line.
 */
async function firstAnswers(info: ReadyInfo): Promise<void> {
  const admin = JSON.parse(readFileSync(info.adminCredentialsPath, 'utf8')) as {
    userName: string;
    password: string;
  };
  const form = new URLSearchParams({
    grant_type: 'password',
    client_id: CLI_CLIENT_ID,
    username: admin.userName,
    password: admin.password,
    scope: `${info.vaultResource}/.default`,
  }).toString();
  const tok = await call(
    info,
    'localhost',
    'POST',
    `/${info.tenantId}/oauth2/v2.0/token`,
    { 'content-type': 'application/x-www-form-urlencoded' },
    form,
  );
  if (tok.status !== 200) throw new Error(`first token: HTTP ${tok.status} ${tok.text.slice(0, 200)}`);
  const token = (JSON.parse(tok.text) as { access_token: string }).access_token;
  const vaultHost = new URL(info.vaultUrlTemplate.replace('{name}', 'cold-start')).hostname;
  const got = await call(info, vaultHost, 'GET', '/secrets/first?api-version=7.5', {
    authorization: `Bearer ${token}`,
  });
  if (got.status !== 404 && got.status !== 200)
    throw new Error(`first vault GET: HTTP ${got.status} ${got.text.slice(0, 200)}`);
}

const scenario: Scenario = {
  name: 'cold-start',
  description: '`latchkey up` from process spawn to ready, on an existing data dir',
  async run(ctx) {
    const tmp = ctx.tmpDir('latchkey-bench-cold-');
    const dataDir = join(tmp, 'data');
    const configDir = join(tmp, 'config');
    ctx.log('  first start (creates the data dir, keys, CA, tenant) …');
    const first = await spawnUp(dataDir, configDir);
    await first.stop();
    ctx.record(
      row({ scenario: 'cold-start', metric: 'first start (new data dir)', value: first.readyMs, unit: 'ms' }),
    );
    const samples: number[] = [];
    const answered: number[] = [];
    for (let i = 0; i < ctx.options.repeats; i++) {
      const p = await spawnUp(dataDir, configDir);
      samples.push(p.readyMs);
      const t0 = performance.now();
      await firstAnswers(p.info);
      answered.push(p.readyMs + performance.now() - t0);
      const code = await p.stop();
      if (code !== 0) throw new Error(`latchkey up exited with ${code} on SIGTERM:\n${p.stderr()}`);
    }
    ctx.log(`  restarts: ${samples.map((s) => s.toFixed(0)).join(', ')} ms`);
    // Same-run baseline: a bare Node process, spawned and exited (what any Node program pays).
    const bare: number[] = [];
    for (let i = 0; i < ctx.options.repeats; i++) {
      const t0 = performance.now();
      spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
      bare.push(performance.now() - t0);
    }
    ctx.record(
      row({
        scenario: 'cold-start',
        metric: `bare node start (median of ${bare.length})`,
        value: median(bare),
        unit: 'ms',
      }),
    );
    ctx.record(
      row({
        scenario: 'cold-start',
        metric: `restart to ready (median of ${samples.length})`,
        value: median(samples),
        unit: 'ms',
        baseline: median(bare),
        target: '< 1000',
      }),
    );
    ctx.record(
      row({
        scenario: 'cold-start',
        metric: `restart to first token and vault answer (median of ${answered.length})`,
        value: median(answered),
        unit: 'ms',
        baseline: median(bare),
      }),
    );
    ctx.record(
      row({
        scenario: 'cold-start',
        metric: 'restart to ready (max)',
        value: Math.max(...samples),
        unit: 'ms',
      }),
    );
  },
};

export default scenario;
