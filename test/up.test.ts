import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClientSecretCredential } from '@azure/identity';
import { localhostLookup, request } from '../src/cli/http.js';
import { CLI_CLIENT_ID } from '../src/cli/session.js';
import { loadDevConfig } from '../src/server/dev.js';
import type { ReadyInfo } from '../src/server/up.js';
import { runCli, spawnServer, startUpProcess, type UpProcess } from './helpers/cli.js';
import { issueServerCert, makeTestCa } from './helpers/tls-ca.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const mode = (p: string) => statSync(p).mode & 0o777;

/** The password-grant token of the bootstrap admin, straight from the token endpoint. */
async function adminToken(info: ReadyInfo, ca: string): Promise<string> {
  const creds = JSON.parse(readFileSync(info.adminCredentialsPath, 'utf8'));
  const r = await request('POST', `${info.authority}/${info.tenantId}/oauth2/v2.0/token`, {
    ca,
    form: {
      grant_type: 'password',
      client_id: CLI_CLIENT_ID,
      username: creds.userName,
      password: creds.password,
      scope: `${info.managementResource}/.default`,
    },
  });
  assert.equal(r.status, 200, r.text);
  return (r.body as { access_token: string }).access_token;
}

/** Gets a vault token as the service principal with the official Azure SDK credential. */
async function sdkToken(info: ReadyInfo, ca: string, appId: string, secret: string) {
  const agent = new https.Agent({ ca, lookup: localhostLookup as never });
  try {
    const cred = new ClientSecretCredential(info.tenantId, appId, secret, {
      authorityHost: info.authority,
      disableInstanceDiscovery: true,
      additionallyAllowedTenants: ['*'],
      // biome-ignore lint/suspicious/noExplicitAny: the identity client accepts an https.Agent (as test/helpers/authority.ts passes it)
      ...({ agent } as any),
    });
    return await cred.getToken(`${info.vaultResource}/.default`);
  } finally {
    agent.destroy();
  }
}

describe('latchkey up (real processes)', () => {
  let root: string;
  let dataDir: string;
  let configDir: string;
  let first: UpProcess | undefined;
  let firstInfo: ReadyInfo;
  let firstStderr = '';
  let sp: { appId: string; secret: string };
  let snapshot: Record<string, string>;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'latchkey-up-test-'));
    dataDir = join(root, 'data');
    configDir = join(root, 'config');
  });
  after(async () => {
    await first?.stop('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  test('first start creates the data dir, keys, CA, tenant and admin, and prints one JSON line', async () => {
    first = await startUpProcess({ dataDir, configDir });
    firstInfo = first.info;
    const i = firstInfo;
    // Every field of the ready line.
    assert.match(i.authority, /^https:\/\/localhost:\d+$/);
    const port = new URL(i.authority).port;
    assert.notEqual(port, '0');
    assert.match(i.tenantId, GUID);
    assert.match(i.subscriptionId, GUID);
    assert.equal(i.tenantDomain, 'latchkey.localhost');
    assert.equal(i.managementUrl, i.authority);
    assert.equal(i.managementResource, 'https://management.latchkey.localhost');
    assert.equal(i.vaultUrlTemplate, `https://{name}.vault.localhost:${port}`);
    assert.equal(i.vaultResource, 'https://vault.localhost');
    assert.ok('identityEndpoint' in i, "'identityEndpoint' in i");
    if (i.identityEndpoint !== null) assert.match(i.identityEndpoint, /^http:\/\/127\.0\.0\.1:\d+/);
    assert.equal(i.caCertPath, join(dataDir, 'tls', 'ca.pem'));
    assert.equal(i.adminCredentialsPath, join(dataDir, 'admin-credentials.json'));
    assert.equal(i.dataDir, dataDir);
    assert.equal(first.stdout().trim().split('\n').length, 1, 'exactly one stdout line');

    // Files and their modes.
    assert.equal(mode(dataDir), 0o700);
    for (const f of ['root.key', 'tls/ca.key', 'tls/server.key', 'admin-credentials.json'])
      assert.equal(mode(join(dataDir, f)), 0o600, `${f} is 0600`);
    assert.ok(existsSync(join(dataDir, 'latchkey.db')), "existsSync(join(dataDir, 'latchkey.db'))");
    assert.match(readFileSync(join(dataDir, 'root.key'), 'utf8').trim(), /^[A-Za-z0-9+/]{43}=$/);
    const creds = JSON.parse(readFileSync(i.adminCredentialsPath, 'utf8'));
    assert.equal(creds.userName, 'admin@latchkey.localhost');
    assert.equal(creds.tenantId, i.tenantId);
    assert.ok(creds.password.length >= 16, 'creds.password.length >= 16');
    // The CLI's pointer to the dev server.
    const dev = JSON.parse(readFileSync(join(configDir, 'dev-server.json'), 'utf8'));
    assert.equal(dev.server, i.authority);
    assert.equal(dev.caCertPath, i.caCertPath);
    assert.equal(mode(join(configDir, 'dev-server.json')), 0o600);

    // Loud about dev defaults, and never prints the admin password.
    firstStderr = first.stderr();
    assert.match(firstStderr, /WARNING \(development mode\): generated a development root key/);
    assert.match(firstStderr, /WARNING \(development mode\): TLS uses the development CA/);
    assert.ok(
      !firstStderr.includes(creds.password) && !first.stdout().includes(creds.password),
      '!firstStderr.includes(creds.password) && !first.stdout().includes(creds.password)',
    );

    // It serves, trusting only the dev CA.
    const ca = readFileSync(i.caCertPath, 'utf8');
    const health = await request('GET', `${i.authority}/healthz`, { ca });
    assert.equal(health.status, 200);
    const ready = await request('GET', `${i.authority}/readyz`, { ca });
    assert.equal(ready.status, 200);

    // A service principal created now must survive the restart.
    const token = await adminToken(i, ca);
    const r = await request('POST', `${i.authority}/api/directory/servicePrincipals`, {
      ca,
      headers: { authorization: `Bearer ${token}` },
      json: { displayName: 'survives-restart' },
    });
    assert.equal(r.status, 201, r.text);
    const body = r.body as { servicePrincipal: { appId: string }; credential: { secretText: string } };
    sp = { appId: body.servicePrincipal.appId, secret: body.credential.secretText };
    const t = await sdkToken(i, ca, sp.appId, sp.secret);
    assert.ok(t.token, 't.token');

    snapshot = Object.fromEntries(
      ['root.key', 'tls/ca.pem', 'tls/ca.key', 'admin-credentials.json'].map((f) => [
        f,
        readFileSync(join(dataDir, f), 'utf8'),
      ]),
    );
  });

  test('SIGTERM shuts down cleanly with exit code 0', async () => {
    assert.ok(first, 'first start ran');
    const r = await first.stop('SIGTERM');
    assert.equal(r.signal, null);
    assert.equal(r.code, 0);
    assert.ok(r.ms < 10_000, `stopped in ${r.ms} ms`);
    assert.match(first.stderr(), /shutting down/);
    first = undefined;
  });

  test('restart on the same data dir keeps the tenant, keys, admin and data', async () => {
    assert.ok(snapshot, 'first start ran');
    const again = await startUpProcess({ dataDir, configDir });
    try {
      const i = again.info;
      assert.equal(i.tenantId, firstInfo.tenantId);
      assert.equal(i.subscriptionId, firstInfo.subscriptionId);
      for (const [f, content] of Object.entries(snapshot))
        assert.equal(readFileSync(join(dataDir, f), 'utf8'), content, `${f} unchanged`);
      assert.match(again.stderr(), /using the development root key/);
      assert.doesNotMatch(again.stderr(), /generated a development root key/);
      const ca = readFileSync(i.caCertPath, 'utf8');
      // The service principal created before the restart still authenticates (official SDK).
      const t = await sdkToken(i, ca, sp.appId, sp.secret);
      assert.ok(t.token, 't.token');
      assert.ok(t.expiresOnTimestamp > Date.now(), 't.expiresOnTimestamp > Date.now()');
      // The admin password from the first start still signs in.
      assert.ok(await adminToken(i, ca), 'await adminToken(i, ca)');
      // Ctrl-C (SIGINT) is a clean shutdown too.
      const r = await again.stop('SIGINT');
      assert.equal(r.code, 0);
    } finally {
      await again.stop('SIGKILL');
    }
  });

  test('a busy port fails fast with a one-line error', async () => {
    const other = await startUpProcess();
    try {
      const port = new URL(other.info.authority).port;
      const busyDir = join(root, 'busy');
      const r = await runCli(
        ['up', '--json', '--port', port, '--identity-port', '0', '--data-dir', busyDir],
        { configDir: join(root, 'busy-config') },
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^ERROR: port ${port} is in use.*--port`, 'm'));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, '');
    } finally {
      await other.close();
    }
  });

  test('an unwritable CLI config dir: one ERROR line, exit 1, nothing left serving', async () => {
    // Root ignores permissions, so the config dir sits under a regular file: mkdir fails (ENOTDIR).
    const file = join(root, 'not-a-dir');
    writeFileSync(file, '');
    const r = await runCli(
      ['up', '--json', '--port', '0', '--identity-port', '0', '--data-dir', join(root, 'cfg-fail')],
      { configDir: join(file, 'sub'), timeoutMs: 20_000 },
    );
    assert.equal(r.code, 1, `up kept running after its error (exit ${r.code}); stderr: ${r.stderr}`);
    assert.match(r.stderr, /^ERROR: .*ENOTDIR/m);
    assert.equal(r.stdout, '', 'no ready line for a server that is not running');
  });

  test('an unwritable --hosts-file after the identity endpoint started: one ERROR line, exit 1', async () => {
    const file = join(root, 'not-a-dir-hosts');
    writeFileSync(file, '');
    const r = await runCli(
      [
        'up',
        '--json',
        '--port',
        '0',
        '--identity-port',
        '0',
        '--data-dir',
        join(root, 'hosts-fail'),
        '--hosts-file',
        join(file, 'hosts'),
      ],
      { configDir: join(root, 'hosts-fail-config'), timeoutMs: 20_000 },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^ERROR: --hosts-file: .*ENOTDIR/m);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line on stderr, got:\n${r.stderr}`);
    assert.equal(r.stdout, '');
  });

  test('a busy identity port: exit 1 naming --identity-port, and no log line from a half-started server', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const busy = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await runCli(
        ['up', '--json', '--port', '0', '--identity-port', String(busy), '--data-dir', join(root, 'idbusy')],
        { configDir: join(root, 'idbusy-config'), timeoutMs: 20_000 },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^ERROR: port ${busy} is in use.*--identity-port`, 'm'));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line on stderr, got:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /ECONNREFUSED/);
      assert.equal(r.stdout, '');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});

describe('latchkey server (production) refuses dev defaults', () => {
  let root: string;
  let cfg: string;
  let devData: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'latchkey-server-test-'));
    cfg = join(root, 'config');
    mkdirSync(cfg);
    // A dev data dir to take the dev CA certificate and dev root key from.
    devData = join(root, 'dev');
    const dev = await startUpProcess({ dataDir: devData, configDir: cfg });
    await dev.stop();
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const server = (args: string[], env: Record<string, string> = {}) =>
    runCli(['server', ...args], { configDir: cfg, env });

  test('a `root-key generate` key beside a CA key is not called the development key', async () => {
    const ops = join(root, 'ops');
    mkdirSync(join(ops, 'tls'), { recursive: true });
    writeFileSync(join(ops, 'tls', 'ca.key'), 'not read');
    const gen = await runCli(['root-key', 'generate', '--out', join(ops, 'prod.key')], { configDir: cfg });
    assert.equal(gen.code, 0, gen.stderr);
    const r = await server(['--root-key-file', join(ops, 'prod.key')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--tls-cert and --tls-key/, 'refused for what is really missing');
    assert.doesNotMatch(r.stderr, /development key/);
  });

  test('missing flags: exit 1, every missing setting named with its fix', async () => {
    const r = await server([]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /latchkey server cannot start/);
    assert.match(r.stderr, /--storage \(or LATCHKEY_STORAGE_URL\) is required/);
    assert.match(r.stderr, /a root key is required: --root-key-file FILE or LATCHKEY_ROOT_KEY/);
    assert.match(r.stderr, /--tls-cert and --tls-key/);
    assert.match(r.stderr, /--vault-domain is required/);
    assert.match(r.stderr, /--public-host is required/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('the dev CA certificate and the dev root key are refused', async () => {
    const r = await server([
      '--root-key-file',
      join(devData, 'root.key'),
      '--tls-cert',
      join(devData, 'tls', 'server.pem'),
      '--tls-key',
      join(devData, 'tls', 'server.key'),
      '--storage',
      `sqlite:${join(root, 'prod.db')}`,
      '--public-host',
      'localhost',
      '--vault-domain',
      'vault.localhost',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /development CA; use a real certificate/);
    assert.match(
      r.stderr,
      /development key of `latchkey up`; create a production key \(latchkey root-key generate/,
    );
    assert.equal(existsSync(join(root, 'prod.db')), false, 'nothing created');
  });

  test('a root key readable by others or malformed is refused', async () => {
    const loose = join(root, 'loose.key');
    writeFileSync(loose, readFileSync(join(devData, 'root.key')));
    chmodSync(loose, 0o644);
    const bad = join(root, 'bad.key');
    writeFileSync(bad, 'not-a-key\n', { mode: 0o600 });
    const [r1, r2, r3] = await Promise.all([
      server(['--root-key-file', loose]),
      server(['--root-key-file', bad]),
      server([], { LATCHKEY_ROOT_KEY: 'short' }),
    ]);
    assert.match(r1.stderr, /must not be readable by group or others \(chmod 600\)/);
    for (const r of [r2, r3]) assert.match(r.stderr, /root key must be base64 of 32 random bytes/);
    for (const r of [r1, r2, r3]) assert.equal(r.code, 1);
  });

  test('a SQLite store open to others is refused, and left as it was', async () => {
    const dir = join(root, 'loose-store');
    mkdirSync(dir, { mode: 0o700 });
    const db = join(dir, 'latchkey.db');
    writeFileSync(db, '');
    chmodSync(db, 0o644);
    const r = await server(['--storage', `sqlite:${db}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /latchkey server cannot start/);
    assert.ok(r.stderr.includes(`${db} must not be readable by group or others (chmod 600)`), r.stderr);
    assert.equal(mode(db), 0o644);
    assert.equal(existsSync(`${db}-wal`), false, 'not opened');
  });

  test('with a production root key, an operator CA certificate and SQLite it serves /healthz and /readyz', async () => {
    const keyFile = join(root, 'prod-root.key');
    const gen = await runCli(['root-key', 'generate', '--out', keyFile], { configDir: cfg });
    assert.equal(gen.code, 0, gen.stderr);
    assert.equal(mode(keyFile), 0o600);
    assert.equal(gen.stdout, '', 'the key is not printed');
    const again = await runCli(['root-key', 'generate', '--out', keyFile], { configDir: cfg });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);

    const ca = await makeTestCa();
    const leaf = await issueServerCert(ca, ['localhost', '*.vault.localhost']);
    const certFile = join(root, 'tls.pem');
    const tlsKeyFile = join(root, 'tls.key');
    writeFileSync(certFile, leaf.certPem);
    writeFileSync(tlsKeyFile, leaf.keyPem, { mode: 0o600 });

    const serverArgs = [
      '--json',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--root-key-file',
      keyFile,
      '--tls-cert',
      certFile,
      '--tls-key',
      tlsKeyFile,
      '--storage',
      `sqlite:${join(root, 'prod.db')}`,
      '--public-host',
      'localhost',
      '--vault-domain',
      'vault.localhost',
      '--log-level',
      'warn',
    ];
    // An empty database needs an explicit bootstrap: no silent default admin in production.
    const refused = await runCli(['server', ...serverArgs], { configDir: cfg });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /no tenant yet: start once with --bootstrap-admin FILE/);
    const adminFile = join(root, 'prod-admin.json');
    const p = await spawnServer<{ authority: string; port: number; vaultDomain: string }>(
      ['server', ...serverArgs, '--bootstrap-admin', adminFile, '--tenant-domain', 'corp.example'],
      { configDir: cfg },
    );
    try {
      assert.ok(p.info.port > 0, 'p.info.port > 0');
      assert.equal(mode(adminFile), 0o600);
      const adminCreds = JSON.parse(readFileSync(adminFile, 'utf8')) as {
        userName: string;
        password: string;
        tenantId: string;
      };
      assert.equal(adminCreds.userName, 'admin@corp.example');
      const tok = await request('POST', `${p.info.authority}/corp.example/oauth2/v2.0/token`, {
        ca: ca.certPem,
        form: {
          grant_type: 'password',
          client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
          username: adminCreds.userName,
          password: adminCreds.password,
          scope: 'https://management.latchkey.localhost/.default',
        },
      });
      assert.equal(tok.status, 200, tok.text);
      assert.equal(p.info.authority, `https://localhost:${p.info.port}`);
      assert.equal(p.info.vaultDomain, 'vault.localhost');
      const health = await request('GET', `${p.info.authority}/healthz`, { ca: ca.certPem });
      assert.equal(health.status, 200);
      assert.deepEqual(health.body, { status: 'ok' });
      const ready = await request('GET', `${p.info.authority}/readyz`, { ca: ca.certPem });
      assert.equal(ready.status, 200);
      assert.equal((ready.body as { status: string }).status, 'ready');
      // Production mode is not development mode: no dev warnings, no generated files.
      assert.doesNotMatch(p.stderr(), /development mode/);
      // The store SQLite created is the service's alone.
      const store = join(root, 'prod.db');
      for (const f of [store, `${store}-wal`, `${store}-shm`]) assert.equal(mode(f), 0o600, f);
      const r = await p.stop('SIGTERM');
      assert.equal(r.code, 0);
    } finally {
      await p.stop('SIGKILL');
    }
  });
});

describe('latchkey up refuses a store whose root key is gone (no spawn)', () => {
  test('a deleted root.key next to a database: refused, and no new key left behind', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-dev-nokey-'));
    try {
      writeFileSync(join(dataDir, 'latchkey.db'), 'SQLite format 3\0', { mode: 0o600 });
      await assert.rejects(
        loadDevConfig({ dataDir, host: '127.0.0.1', port: 0 }),
        /root key .*root\.key is missing but .*latchkey\.db holds data sealed with it/,
      );
      assert.equal(existsSync(join(dataDir, 'root.key')), false, 'no new, wrong key left behind');
      assert.equal(existsSync(join(dataDir, 'tls')), false, 'nothing else written either');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('latchkey up warns about files open to others (no spawn)', () => {
  test('a root key or a SQLite store readable by group or others is a warning', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-dev-modes-'));
    try {
      const first = await loadDevConfig({ dataDir, host: '127.0.0.1', port: 0 });
      assert.equal(mode(join(dataDir, 'root.key')), 0o600);
      assert.ok(
        !first.warnings.some((w) => /readable by group or others/.test(w)),
        first.warnings.join('\n'),
      );
      chmodSync(join(dataDir, 'root.key'), 0o644);
      writeFileSync(join(dataDir, 'latchkey.db'), '');
      chmodSync(join(dataDir, 'latchkey.db'), 0o644);
      const { warnings } = await loadDevConfig({ dataDir, host: '127.0.0.1', port: 0 });
      assert.ok(
        warnings.includes(
          `the root key ${join(dataDir, 'root.key')} is readable by group or others (chmod 600)`,
        ),
        warnings.join('\n'),
      );
      assert.ok(
        warnings.includes(
          `${join(dataDir, 'latchkey.db')} must not be readable by group or others (chmod 600)`,
        ),
        warnings.join('\n'),
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
