import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { REPO_ROOT } from './helpers/cli.js';
import { identityStateDir, putApp } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, type VaultTestPrincipal, vaultPrincipal } from './helpers/vault.js';

/** Debian's Python with Debian's Azure SDK (`python3-azure`; `.ci/run` installs it). */
const PYTHON = process.env.LATCHKEY_TEST_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(REPO_ROOT, 'test', 'fixtures', 'python', 'keyvault.py');
const LATCHKEY_BIN = join(REPO_ROOT, 'bin', 'latchkey.js');

const importable = (): string | false => {
  const r = spawnSync(
    PYTHON,
    ['-c', 'import azure.identity, azure.keyvault.secrets, azure.keyvault.keys, msal'],
    { encoding: 'utf8' },
  );
  return r.status === 0 ? false : `${PYTHON} cannot import the Azure SDK (apt-get install python3-azure)`;
};
/** A user and mount namespace that sees `hosts` as /etc/hosts (no root, nothing changed outside). */
const namespaceWorks = (hosts: string): boolean =>
  spawnSync('unshare', [
    '--user',
    '--map-root-user',
    '--mount',
    '/bin/sh',
    '-c',
    'mount --bind "$0" /etc/hosts',
    hosts,
  ]).status === 0;
const missing = importable();

/**
 * The Azure SDK for Python, unmodified and with default client settings, against a real
 * server on a port other than 443: DefaultAzureCredential from environment variables
 * (tenant `adfs`), ClientSecretCredential with the tenant GUID, and ManagedIdentityCredential
 * and DefaultAzureCredential inside `latchkey run`.
 *
 * Vault names resolve through the hosts file that `latchkey up --hosts-file` keeps: the
 * Python process runs in a user and mount namespace in which that file is /etc/hosts, as it
 * would be when `latchkey up --hosts-file` runs as root (Debian's resolver does not send
 * `*.localhost` to loopback by itself).
 */
describe('Azure SDK for Python (python3-azure) against Latchkey', {
  // Skipped only where python3-azure is missing; CI sets LATCHKEY_REQUIRE_PYTHON_AZURE=1 so it fails there instead.
  skip: missing && process.env.LATCHKEY_REQUIRE_PYTHON_AZURE !== '1' && missing,
}, () => {
  let s: TestServer;
  let dir: string;
  let hosts: string;
  let sp: VaultTestPrincipal;
  let vaultUrl: string;

  /** Runs the fixture script (optionally inside `latchkey run`) and returns its JSON. */
  const python = (
    args: string[],
    env: Record<string, string>,
    run?: { app: string },
  ): Promise<{ code: number; json: Record<string, unknown>; err: string }> => {
    const inNamespace = [
      'unshare',
      '--user',
      '--map-root-user',
      '--mount',
      '/bin/sh',
      '-c',
      'mount --bind "$0" /etc/hosts && exec "$@"',
      hosts,
      PYTHON,
      SCRIPT,
      ...args,
    ];
    const argv = run
      ? [
          process.execPath,
          LATCHKEY_BIN,
          'run',
          '--app',
          run.app,
          '--state-dir',
          identityStateDir(s),
          '--',
          ...inNamespace,
        ]
      : inNamespace;
    return new Promise((resolve) => {
      execFile(
        argv[0]!,
        argv.slice(1),
        {
          timeout: 90_000,
          cwd: REPO_ROOT,
          // Nothing from the test's own environment: PATH, HOME and what the case names.
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            LATCHKEY_CONFIG_DIR: join(dir, 'latchkey'),
            ...env,
          },
        },
        (e, out, err) => {
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(out.trim().split('\n').pop() ?? '{}');
          } catch {}
          resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, json, err: `${out}\n${err}` });
        },
      );
    });
  };
  /** What a user sets outside `latchkey run`: the authority, the CA bundle, the service principal. */
  const outside = (extra: Record<string, string> = {}) => ({
    AZURE_AUTHORITY_HOST: s.info.authority,
    REQUESTS_CA_BUNDLE: s.info.caCertPath,
    AZURE_CLIENT_ID: sp.appId,
    AZURE_CLIENT_SECRET: sp.secret,
    ...extra,
  });

  before(async () => {
    if (missing) assert.fail(missing);
    dir = mkdtempSync(join(tmpdir(), 'latchkey-python-'));
    hosts = join(dir, 'hosts');
    writeFileSync(hosts, readFileSync('/etc/hosts', 'utf8'));
    assert.ok(
      namespaceWorks(hosts),
      'unshare --user --map-root-user --mount failed: this test needs unprivileged user namespaces',
    );
    s = await startTestServer({ hostsFile: hosts });
    const vault = await putVault(s, 'pyvault');
    vaultUrl = vault.properties.vaultUri;
    sp = await vaultPrincipal(s, 'python-sp');
    await grant(s, sp.id, 'Key Vault Secrets Officer', vault.id);
    await grant(s, sp.id, 'Key Vault Crypto Officer', vault.id);
    await s.idle();
    assert.match(readFileSync(hosts, 'utf8'), /^127\.0\.0\.1 pyvault\.vault\.localhost$/m);
  });
  after(async () => {
    await s?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the vault is on a port other than 443, so the challenge names the port', () => {
    assert.notEqual(new URL(vaultUrl).port, '');
  });

  it('SecretClient with DefaultAzureCredential from the environment (AZURE_TENANT_ID=adfs): set, get, list', async () => {
    const r = await python(['default', 'secrets', vaultUrl], outside({ AZURE_TENANT_ID: 'adfs' }));
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.json, {
      latest: 'from python, again',
      first: 'from python',
      listed: ['py-secret'],
      version: r.json.version,
    });
    assert.match(String(r.json.version), /^[0-9a-f]{32}$/);
  });

  it('KeyClient and CryptographyClient: create an RSA key, sign and verify, encrypt and decrypt', async () => {
    const r = await python(['default', 'keys', vaultUrl], outside({ AZURE_TENANT_ID: 'adfs' }));
    assert.equal(r.code, 0, r.err);
    assert.match(String(r.json.kid), new RegExp(`^${vaultUrl}keys/py-key/[0-9a-f]{32}$`));
    assert.equal(r.json.kty, 'RSA');
    assert.equal(r.json.signatureLength, 256);
    assert.equal(r.json.verified, true);
    assert.equal(r.json.tampered, false);
    assert.equal(r.json.decrypted, 'sealed by python');
  });

  it('DefaultAzureCredential with a user name and password (AZURE_TENANT_ID=adfs, the CLI’s public client)', async () => {
    const adminOid = String(decodeJwt(await s.adminToken()).oid);
    await grant(s, adminOid, 'Key Vault Secrets Officer', (await s.services.vaults.byName('pyvault'))!.armId);
    const r = await python(['default', 'secrets', vaultUrl], {
      AZURE_AUTHORITY_HOST: s.info.authority,
      REQUESTS_CA_BUNDLE: s.info.caCertPath,
      AZURE_TENANT_ID: 'adfs',
      AZURE_CLIENT_ID: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
      AZURE_USERNAME: s.admin.userName,
      AZURE_PASSWORD: s.admin.password,
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.json.latest, 'from python, again');
  });

  it('ClientSecretCredential with the tenant GUID and instance_discovery=False', async () => {
    const r = await python(
      ['client-secret-guid', 'secrets', vaultUrl],
      outside({ LATCHKEY_TEST_TENANT_GUID: s.info.tenantId }),
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(r.json.latest, 'from python, again');
  });

  it('inside latchkey run: ManagedIdentityCredential and DefaultAzureCredential, with nothing configured', async () => {
    const app = await putApp(s, 'py-app', { identity: { type: 'SystemAssigned' } });
    const vaultId = (await s.services.vaults.byName('pyvault'))!.armId;
    await grant(s, app.identity.principalId!, 'Key Vault Secrets Officer', vaultId);
    await grant(s, app.identity.principalId!, 'Key Vault Crypto Officer', vaultId);
    // `latchkey run` gives the workload the endpoint and the CA bundle; nothing else is set.
    const mi = await python(['managed-identity', 'secrets', vaultUrl], {}, { app: 'py-app' });
    assert.equal(mi.code, 0, mi.err);
    assert.equal(mi.json.latest, 'from python, again');
    const keys = await python(['default', 'keys', vaultUrl], {}, { app: 'py-app' });
    assert.equal(keys.code, 0, keys.err);
    assert.equal(keys.json.verified, true);
    assert.equal(keys.json.decrypted, 'sealed by python');
  });
});
