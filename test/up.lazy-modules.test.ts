import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { launcherTarget } from '../bin/build-fresh.js';
import { localhostLookup } from '../src/cli/http.js';
import { REPO_ROOT, startUpProcess } from './helpers/cli.js';

// `latchkey up` restarts faster by loading less before its ready line (docs/performance.md, cold
// start): what only some requests or other commands need is imported on first use. This checks,
// in a real `latchkey up` restart on SQLite, which modules were loaded before the ready line.

/** Modules that must not be loaded before ready, each with why it can wait. */
const NOT_BEFORE_READY: [RegExp, string][] = [
  [/\/node_modules\/pg\//, 'the PostgreSQL driver (storage is SQLite)'],
  [/\/node_modules\/pkijs\//, 'pkijs (PFX secrets and imports only)'],
  [/\/node_modules\/asn1js\//, 'asn1js (PFX, CRLs)'],
  [
    /\/node_modules\/@peculiar\/x509\//,
    '@peculiar/x509 (certificate issuance, the CA; a restart reuses the dev CA)',
  ],
  [/\/node_modules\/reflect-metadata\//, 'reflect-metadata (for @peculiar/x509)'],
  [/\/node_modules\/jose\//, 'jose (the first token verified or assertion signed, just after ready)'],
  [/\/node_modules\/@noble\/curves\//, '@noble/curves (loaded with the first EC key)'],
  [/\/provisioning\/manifest-(apply|export)\.(js|ts)$/, 'manifest apply and export'],
  [/\/http\/vault-app\.(js|ts)$/, 'the vault data plane (built on its first request)'],
  [/\/console\/routes\.(js|ts)$/, 'the web console (built on its first request)'],
  [/\/console\/pages\/(?!signin\.)/, "the console pages (the sign-in page is the authority's)"],
  [/\/cli\/commands\/(?!up\.)[^/]+$/, 'CLI commands other than `up`'],
  [/\/cli\/context\.(js|ts)$/, 'the CLI client context (JMESPath)'],
  [/\/node_modules\/@jmespath-community\//, 'JMESPath (--query)'],
];

const PRELOAD = pathToFileURL(join(REPO_ROOT, 'test', 'fixtures', 'module-log.mjs')).href;

/**
 * `latchkey` runs the bundle of the build (dist/bundle/, scripts/bundle.mjs) when it is fresh: a
 * loaded chunk then stands for the modules it was built from (dist/bundle/modules.json), so the
 * same rules hold for the bundle as for dist/ and the sources.
 */
let chunkIndex: Record<string, string[]> | undefined;
function expandChunks(urls: string[]): string[] {
  const index = join(REPO_ROOT, 'dist', 'bundle', 'modules.json');
  chunkIndex ??= existsSync(index)
    ? (JSON.parse(readFileSync(index, 'utf8')) as Record<string, string[]>)
    : {};
  const chunks = chunkIndex;
  return urls.flatMap((u) => {
    const m = /\/dist\/bundle\/([^/?#]+\.js)$/.exec(u);
    if (!m) return [u];
    const inputs = chunks[m[1]!];
    assert.ok(inputs, `${m[1]} is a chunk of the current bundle`);
    return inputs.map((i) => pathToFileURL(join(REPO_ROOT, i)).href);
  });
}

describe('start-up: what `latchkey up` loads before it is ready', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-lazy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const configDir = join(dir, 'config');

  test('a restart on SQLite loads no PostgreSQL driver, PKCS#12 or X.509 library, console or other command before ready; the console then answers', async () => {
    const first = await startUpProcess({ dataDir, configDir });
    assert.equal((await first.stop()).code, 0);

    const log = join(dir, 'modules.log');
    const p = await startUpProcess({
      dataDir,
      configDir,
      env: { NODE_OPTIONS: `--import ${PRELOAD}`, LATCHKEY_TEST_MODULE_LOG: log },
    });
    try {
      const raw = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
      // What ran: the bundle when it is fresh (as for users), else dist/ or the sources.
      assert.equal(
        raw().some((u) => u.includes('/dist/bundle/')),
        launcherTarget(REPO_ROOT) === 'bundle',
        'the launcher ran the bundle exactly when it is fresh',
      );
      const lines = () => expandChunks(raw());
      const ready = lines().indexOf('READY');
      assert.ok(ready > 0, 'the module log has its READY mark');
      const before = lines().slice(0, ready);
      // The record works: the server's own modules and Fastify are in it.
      assert.ok(
        before.some((u) => /\/server\/up\.(js|ts)$/.test(u)),
        'server/up is recorded',
      );
      assert.ok(
        before.some((u) => u.includes('/node_modules/fastify/')),
        'fastify is recorded',
      );
      for (const [re, what] of NOT_BEFORE_READY)
        assert.deepEqual(
          before.filter((u) => re.test(u)),
          [],
          `${what} is loaded before ready`,
        );

      // The first console request after ready is answered as before (sign-in redirect) and is
      // what loads the console.
      const ca = readFileSync(p.info.caCertPath, 'utf8');
      const res = await new Promise<{ status: number; location: string | undefined; csp: boolean }>(
        (resolve, reject) => {
          const req = https.get(
            `${p.info.authority}/console/`,
            { ca, lookup: localhostLookup as never },
            (r) => {
              r.resume();
              r.on('end', () =>
                resolve({
                  status: r.statusCode ?? 0,
                  location: r.headers.location,
                  csp: r.headers['content-security-policy'] !== undefined,
                }),
              );
            },
          );
          req.on('error', reject);
        },
      );
      assert.equal(res.status, 302);
      assert.match(res.location ?? '', /^\/console\/login\?return=/);
      assert.ok(res.csp, 'the console page headers are set');
      assert.ok(
        lines()
          .slice(ready)
          .some((u) => /\/console\/routes\.(js|ts)$/.test(u)),
        'the console was loaded by its first request',
      );

      // The first request to a vault host builds the vault app, which answers as before: no
      // token is a 401 with the Key Vault challenge.
      const vaultUrl = p.info.vaultUrlTemplate.replace('{name}', 'lazy');
      const v = await new Promise<{ status: number; challenge: string | undefined; body: string }>(
        (resolve, reject) => {
          const req = https.get(
            `${vaultUrl}/secrets?api-version=7.4`,
            { ca, lookup: localhostLookup as never },
            (r) => {
              let body = '';
              r.setEncoding('utf8').on('data', (c: string) => {
                body += c;
              });
              r.on('end', () =>
                resolve({ status: r.statusCode ?? 0, challenge: r.headers['www-authenticate'], body }),
              );
            },
          );
          req.on('error', reject);
        },
      );
      assert.equal(v.status, 401, v.body);
      assert.match(v.challenge ?? '', /^Bearer authorization="/);
      assert.ok(
        lines()
          .slice(ready)
          .some((u) => /\/http\/vault-app\.(js|ts)$/.test(u)),
        'the vault app was loaded by its first request',
      );
    } finally {
      await p.stop();
    }
  });
});
