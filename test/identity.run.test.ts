import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LOCALHOST_DNS_PRELOAD, withLocalhostPreload } from '../src/cli/commands/run.js';
import { REPO_ROOT } from './helpers/cli.js';
import { ep, identityStateDir, putApp, putSettings } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, vaultPrincipal } from './helpers/vault.js';

const BIN = join(REPO_ROOT, 'bin', 'latchkey.js');
const CHILD = join(REPO_ROOT, 'test', 'fixtures', 'identity-child.mjs');
/** *.localhost → 127.0.0.1 for the workload (this machine's resolver does not do it). */
const DNS = join(REPO_ROOT, 'test', 'fixtures', 'localhost-dns.mjs');
const NPM_TOKEN = 'npm_SECRET_VALUE_0123456789';

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  // biome-ignore lint/suspicious/noExplicitAny: the workload's JSON line
  json: any;
}

/**
 * `latchkey run --app APP -- node identity-child.mjs ...` with an environment
 * that holds no credential: only PATH, a HOME and an empty CLI config dir.
 */
function latchkeyRun(
  s: TestServer,
  home: string,
  app: string,
  childArgs: string[],
  opts: {
    runArgs?: string[];
    onSpawn?: (c: ChildProcess) => void;
    /** Leave out the test's own resolver preload (to see what `latchkey run` gives by itself). */
    ownDns?: boolean;
    env?: Record<string, string>;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'run',
        '--app',
        app,
        '--state-dir',
        identityStateDir(s),
        ...(opts.runArgs ?? []),
        '--',
        process.execPath,
        ...(opts.ownDns === false ? [] : ['--import', DNS]),
        CHILD,
        ...childArgs,
      ],
      {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          LATCHKEY_CONFIG_DIR: join(home, '.latchkey'),
          ...opts.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    opts.onSpawn?.(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let json: unknown;
      try {
        json = JSON.parse(stdout.trim().split('\n').pop() ?? '');
      } catch {}
      resolve({ code, signal, stdout, stderr, json });
    });
  });
}

describe('latchkey run: a workload with a managed identity and Key Vault references', () => {
  let s: TestServer;
  let home: string;
  let version: string;
  const controlStatus = async () => {
    const secret = readFileSync(join(identityStateDir(s), 'control.secret'), 'utf8').trim();
    return (await ep(s, '/control/status', { headers: { authorization: `Bearer ${secret}` } })).json;
  };

  before(async () => {
    s = await startTestServer();
    home = mkdtempSync(join(tmpdir(), 'latchkey-run-home-'));
    const vault = await putVault(s, 'runvault');
    const officer = await vaultPrincipal(s, 'run-officer');
    await grant(s, officer.id, 'Key Vault Secrets Officer', vault.id);
    const kv = secretClient(s, 'runvault', officer);
    await kv.setSecret('greeting', 'hello from the vault');
    version = (await kv.setSecret('npm-token', NPM_TOKEN)).properties.version!;
    const app = await putApp(s, 'run-app', { identity: { type: 'SystemAssigned' } });
    await grant(s, app.identity.principalId!, 'Key Vault Secrets User', vault.id);
    await putSettings(s, 'run-app', {
      NPM_TOKEN: `@Microsoft.KeyVault(SecretUri=${s.vaultUrl('runvault')}/secrets/npm-token/)`,
      BY_NAME: '@Microsoft.KeyVault(VaultName=runvault;SecretName=npm-token)',
      PINNED: `@Microsoft.KeyVault(SecretUri=${s.vaultUrl('runvault')}/secrets/npm-token/${version})`,
      PLAIN: 'a plain setting',
    });
  });
  after(async () => {
    await s?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('App Service variables: the official ManagedIdentityCredential, DefaultAzureCredential and SecretClient work', async () => {
    const r = await latchkeyRun(s, home, 'run-app', [
      'appservice',
      s.vaultUrl('runvault'),
      s.info.vaultResource,
    ]);
    assert.equal(r.code, 0, r.stderr);
    for (const k of ['managedIdentity', 'default']) {
      assert.equal(r.json[k].secret, 'hello from the vault', `${k}: ${JSON.stringify(r.json[k])}`);
      assert.ok(r.json[k].expiresInS > 3000, `${k} sees a real expiry`);
    }
  });

  test('vault hosts resolve in Node workloads without /etc/hosts: latchkey run preloads *.localhost → loopback', async () => {
    const args = ['appservice', s.vaultUrl('runvault'), s.info.vaultResource];
    const r = await latchkeyRun(s, home, 'run-app', args, {
      ownDns: false,
      env: { NODE_OPTIONS: '--max-old-space-size=256' },
    });
    assert.equal(r.code, 0, r.stderr);
    for (const k of ['managedIdentity', 'default'])
      assert.equal(r.json[k].secret, 'hello from the vault', `${k}: ${JSON.stringify(r.json[k])}`);
    const env = (await latchkeyRun(s, home, 'run-app', ['env'], { ownDns: false })).json.env;
    assert.equal(env.NODE_OPTIONS, withLocalhostPreload(undefined));
    const kept = await latchkeyRun(s, home, 'run-app', ['env'], {
      ownDns: false,
      env: { NODE_OPTIONS: '--max-old-space-size=256' },
    });
    assert.equal(kept.json.env.NODE_OPTIONS, `--max-old-space-size=256 --require "${LOCALHOST_DNS_PRELOAD}"`);
    // Where this machine's resolver does not know *.localhost, the opt-out shows what the preload mends.
    const systemResolves = await lookup('probe.vault.localhost').then(
      () => true,
      () => false,
    );
    const host = new URL(s.vaultUrl('runvault')).hostname;
    const on = await latchkeyRun(s, home, 'run-app', ['resolve', host], { ownDns: false });
    assert.deepEqual(on.json, { address: '127.0.0.1' });
    const off = await latchkeyRun(s, home, 'run-app', ['resolve', host], {
      ownDns: false,
      runArgs: ['--no-localhost-dns'],
    });
    assert.equal(off.code, 0, off.stderr);
    if (!systemResolves) assert.deepEqual(off.json, { error: 'ENOTFOUND' });
    assert.equal(
      (await latchkeyRun(s, home, 'run-app', ['env'], { ownDns: false, runArgs: ['--no-localhost-dns'] }))
        .json.env.NODE_OPTIONS,
      undefined,
    );
  });

  test('the localhost preload: only localhost names, 127.0.0.1 first, every lookup form; NODE_OPTIONS quoting', async () => {
    const script = `
      const dns = require('node:dns');
      const { promisify } = require('node:util');
      (async () => {
        const out = {
          plain: await promisify(dns.lookup)('shop.vault.localhost'),
          all: await promisify(dns.lookup)('Shop.Vault.LOCALHOST.', { all: true }),
          v6: await dns.promises.lookup('x.localhost', { family: 6 }),
          esm: await import('node:dns').then((m) => promisify(m.lookup)('y.localhost', 4)),
          other: await dns.promises.lookup('localhost.invalid').then(() => 'resolved', (e) => e.code),
        };
        console.log(JSON.stringify(out));
      })();`;
    const r = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['-e', script],
        { env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: withLocalhostPreload('--no-warnings') } },
        (e, out) => (e ? reject(e) : resolve(out)),
      ),
    );
    assert.deepEqual(JSON.parse(r), {
      plain: { address: '127.0.0.1', family: 4 },
      all: [
        { address: '127.0.0.1', family: 4 },
        { address: '::1', family: 6 },
      ],
      v6: { address: '::1', family: 6 },
      esm: { address: '127.0.0.1', family: 4 },
      other: 'ENOTFOUND',
    });
    assert.equal(withLocalhostPreload(withLocalhostPreload('')), withLocalhostPreload(''), 'added once');
  });

  test('the IMDS protocol through AZURE_POD_IDENTITY_AUTHORITY_HOST works the same', async () => {
    const r = await latchkeyRun(s, home, 'run-app', ['imds', s.vaultUrl('runvault'), s.info.vaultResource]);
    assert.equal(r.code, 0, r.stderr);
    for (const k of ['managedIdentity', 'default'])
      assert.equal(r.json[k].secret, 'hello from the vault', `${k}: ${JSON.stringify(r.json[k])}`);
  });

  test('the Cloud Shell protocol through MSI_ENDPOINT works the same', async () => {
    const r = await latchkeyRun(s, home, 'run-app', [
      'cloudshell',
      s.vaultUrl('runvault'),
      s.info.vaultResource,
    ]);
    assert.equal(r.code, 0, r.stderr);
    for (const k of ['managedIdentity', 'default'])
      assert.equal(r.json[k].secret, 'hello from the vault', `${k}: ${JSON.stringify(r.json[k])}`);
  });

  test('the environment: endpoint variables, CA trust, settings with references resolved, no credential', async () => {
    const r = await latchkeyRun(s, home, 'run-app', ['env'], {
      runArgs: ['--env', 'EXTRA=1', '--env', 'PLAIN=overridden'],
    });
    assert.equal(r.code, 0, r.stderr);
    const env = r.json.env as Record<string, string>;
    assert.equal(env.IDENTITY_ENDPOINT, `${s.info.identityEndpoint}/msi/token`);
    assert.match(env.IDENTITY_HEADER!, /^[A-Za-z0-9_-]{40,}$/);
    assert.match(
      env.AZURE_POD_IDENTITY_AUTHORITY_HOST!,
      new RegExp(`^${s.info.identityEndpoint}/s/[0-9a-f]{32}$`),
    );
    // The Cloud Shell protocol for clients that know only MSI_ENDPOINT (az login --identity).
    assert.equal(env.MSI_ENDPOINT, `${env.AZURE_POD_IDENTITY_AUTHORITY_HOST}/metadata/identity/oauth2/token`);
    assert.equal(env.MSI_SECRET, undefined, 'MSI_SECRET would make clients speak Azure ML');
    assert.equal(env.NODE_EXTRA_CA_CERTS, s.info.caCertPath);
    // Tools that take one CA file get the system roots plus the dev CA (public TLS keeps working).
    const bundle = readFileSync(env.SSL_CERT_FILE!, 'utf8');
    assert.ok(bundle.includes(s.ca.trim()), 'the bundle holds the dev CA');
    assert.ok(bundle.split('BEGIN CERTIFICATE').length > 20, 'and the system roots');
    for (const k of ['REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE']) assert.equal(env[k], env.SSL_CERT_FILE, k);
    assert.equal(env.NPM_TOKEN, NPM_TOKEN);
    assert.equal(env.BY_NAME, NPM_TOKEN);
    assert.equal(env.PINNED, NPM_TOKEN);
    assert.equal(env.PLAIN, 'overridden', '--env overrides an app setting');
    assert.equal(env.EXTRA, '1');
    for (const k of ['AZURE_CLIENT_SECRET', 'AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'IMDS_ENDPOINT'])
      assert.equal(env[k], undefined, k);
    assert.doesNotMatch(r.stderr, new RegExp(NPM_TOKEN));

    const second = await latchkeyRun(s, home, 'run-app', ['env']);
    assert.notEqual(second.json.env.IDENTITY_HEADER, env.IDENTITY_HEADER, 'a fresh header per run');
    assert.equal(second.json.env.PLAIN, 'a plain setting');
    assert.equal((await controlStatus()).sessions, 0, 'sessions end with their run');
    // A finished run's header no longer works.
    const old = await ep(
      s,
      `/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(s.info.vaultResource)}`,
      {
        headers: { 'X-IDENTITY-HEADER': env.IDENTITY_HEADER! },
      },
    );
    assert.equal(old.status, 401);
  });

  test('exit codes and signals pass through', async () => {
    assert.equal((await latchkeyRun(s, home, 'run-app', ['exit', '7'])).code, 7);
    const r = await latchkeyRun(s, home, 'run-app', ['wait'], {
      onSpawn: (c) => {
        c.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('"ready"')) c.kill('SIGTERM');
        });
      },
    });
    assert.match(r.stdout, /"signal":"SIGTERM"/, 'the workload received the signal');
    assert.equal(r.code, 42);
    const missing = await new Promise<number | null>((resolve) => {
      const c = spawn(
        process.execPath,
        [BIN, 'run', '--app', 'run-app', '--state-dir', identityStateDir(s), '--', 'no-such-command-xyz'],
        {
          cwd: REPO_ROOT,
          env: { PATH: process.env.PATH ?? '', HOME: home, LATCHKEY_CONFIG_DIR: join(home, '.latchkey') },
          stdio: 'ignore',
        },
      );
      c.on('close', resolve);
    });
    assert.equal(missing, 127);
  });

  test('an unresolvable reference fails the start, naming the setting and never a value', async () => {
    const app = await putApp(s, 'run-broken', { identity: { type: 'SystemAssigned' } });
    await grant(s, app.identity.principalId!, 'Key Vault Secrets User', (await putVault(s, 'runvault')).id);
    await putSettings(s, 'run-broken', {
      GOOD: '@Microsoft.KeyVault(VaultName=runvault;SecretName=npm-token)',
      PLAIN: 'plain',
      BROKEN: '@Microsoft.KeyVault(VaultName=runvault;SecretName=does-not-exist)',
    });
    const r = await latchkeyRun(s, home, 'run-broken', ['env']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^ERROR: cannot start app 'run-broken': app setting 'BROKEN': the Key Vault reference to secret 'does-not-exist' in vault 'runvault' could not be resolved: \(SecretNotFound\)/,
    );
    assert.equal(r.stdout, '', 'the workload never started');
    assert.doesNotMatch(r.stderr, new RegExp(NPM_TOKEN));
    assert.doesNotMatch(r.stderr, /plain/);
  });
});
