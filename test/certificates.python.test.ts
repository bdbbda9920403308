import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, type VaultTestPrincipal, vaultPrincipal } from './helpers/vault.js';

/** Debian's Python with Debian's Azure SDK (`python3-azure`), as test/python.test.ts. */
const PYTHON = process.env.LATCHKEY_TEST_PYTHON ?? '/usr/bin/python3';
const importable = (): string | false => {
  const r = spawnSync(
    PYTHON,
    ['-c', 'import azure.identity, azure.keyvault.certificates, azure.keyvault.secrets, cryptography'],
    { encoding: 'utf8' },
  );
  return r.status === 0 ? false : `${PYTHON} cannot import the Azure SDK (apt-get install python3-azure)`;
};
const missing = importable();

/**
 * `azure.keyvault.certificates.CertificateClient` (python3-azure), unmodified with default client
 * settings, against a real server: the vault name resolves through the hosts file `latchkey up
 * --hosts-file` keeps, seen as /etc/hosts in a user and mount namespace (as test/python.test.ts).
 */
describe('CertificateClient of the Azure SDK for Python against Latchkey', {
  // Skipped only where python3-azure is missing; CI sets LATCHKEY_REQUIRE_PYTHON_AZURE=1 so it fails there instead.
  skip: missing && process.env.LATCHKEY_REQUIRE_PYTHON_AZURE !== '1' && missing,
}, () => {
  let s: TestServer;
  let dir: string;
  let hosts: string;
  let sp: VaultTestPrincipal;
  let vaultUrl: string;
  let adminVaultUrl: string;

  before(async () => {
    if (missing) assert.fail(missing);
    dir = mkdtempSync(join(tmpdir(), 'latchkey-pycert-'));
    hosts = join(dir, 'hosts');
    writeFileSync(hosts, readFileSync('/etc/hosts', 'utf8'));
    s = await startTestServer({ hostsFile: hosts });
    const vault = await putVault(s, 'pycerts');
    vaultUrl = vault.properties.vaultUri;
    sp = await vaultPrincipal(s, 'python-cert-sp');
    await grant(s, sp.id, 'Key Vault Certificates Officer', vault.id);
    await grant(s, sp.id, 'Key Vault Secrets User', vault.id);
    // A second vault where the principal is Key Vault Administrator: the refusals of changes to a
    // certificate's key and secret are then the managed refusal, not a missing role.
    const adminVault = await putVault(s, 'pycertsadm');
    adminVaultUrl = adminVault.properties.vaultUri;
    await grant(s, sp.id, 'Key Vault Administrator', adminVault.id);
    await s.idle();
    assert.match(readFileSync(hosts, 'utf8'), /^127\.0\.0\.1 pycerts\.vault\.localhost$/m);
    assert.match(readFileSync(hosts, 'utf8'), /^127\.0\.0\.1 pycertsadm\.vault\.localhost$/m);
  });
  after(async () => {
    await s?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a fixture script with the principal's credential, the vault's name resolving through `hosts`. */
  const runPython = (script: string, ...args: string[]) =>
    new Promise<{ code: number; json: Record<string, unknown>; err: string }>((resolve) => {
      execFile(
        'unshare',
        [
          '--user',
          '--map-root-user',
          '--mount',
          '/bin/sh',
          '-c',
          'mount --bind "$0" /etc/hosts && exec "$@"',
          hosts,
          PYTHON,
          join(REPO_ROOT, 'test', 'fixtures', 'python', script),
          ...args,
        ],
        {
          timeout: 90_000,
          cwd: REPO_ROOT,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            AZURE_AUTHORITY_HOST: s.info.authority,
            REQUESTS_CA_BUNDLE: s.info.caCertPath,
            AZURE_CLIENT_ID: sp.appId,
            AZURE_CLIENT_SECRET: sp.secret,
            LATCHKEY_TEST_TENANT_GUID: s.info.tenantId,
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

  it('create (Self), get, policy, list, versions, the PFX secret, import, backup, delete, purge, restore', async () => {
    const r = await runPython('certificates.py', vaultUrl);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.json, {
      name: 'py-cert',
      status: 'completed',
      subject: 'CN=py.example',
      policySubject: 'CN=py.example',
      policyIssuer: 'Self',
      sans: ['py.example'],
      tags: { from: 'python' },
      sameCer: true,
      oldCerMatches: true,
      listed: ['py-cert'],
      versions: 2,
      thumbprintLength: 20,
      secretContentType: 'application/x-pkcs12',
      pfxSubject: 'py.example',
      pfxKeyBits: 2048,
      importedIssuer: 'Unknown',
      importedCerMatches: true,
      restoredVersion: true,
    });
  });

  it('merge (Unknown, CSR signed by openssl), issuers, contacts; the key and secret are managed', async () => {
    const r = await runPython('certificates_more.py', adminVaultUrl, dir);
    assert.equal(r.code, 0, r.err);
    const refusedAsManaged = [403, 'Forbidden', true];
    assert.deepEqual(r.json, {
      merge: {
        pendingStatus: 'inProgress',
        mergedCerIsLeaf: true,
        mergedIssuer: 'Unknown',
        operationAfterMerge: 'completed',
        gotCerIsLeaf: true,
        pfxCertIsLeaf: true,
        pfxChainIsCa: [true],
        pfxKeyMatches: true,
        // The request is spent: a second merge finds no pending certificate.
        mergeAgain: [404, 'CertificateNotFound'],
      },
      issuers: {
        createdProvider: 'Latchkey',
        gotProvider: 'Latchkey',
        gotAccountId: 'acct-py',
        gotOrganizationId: 'org-py',
        gotAdmin: ['Ada', 'Lovelace', 'ada@example.com', '555-0100'],
        gotEnabled: true,
        listed: [['py-issuer', 'Latchkey']],
        issuedBy: true,
        issuedPolicyIssuer: 'py-issuer',
        deletedName: 'py-issuer',
        afterDelete: [404, 'CertificateNotFound'],
      },
      contacts: {
        set: [
          ['ops@example.com', 'Ops', '555-0101'],
          ['pki@example.com', null, null],
        ],
        got: [
          ['ops@example.com', 'Ops', '555-0101'],
          ['pki@example.com', null, null],
        ],
        deleted: [
          ['ops@example.com', 'Ops', '555-0101'],
          ['pki@example.com', null, null],
        ],
        afterDelete: 404,
      },
      managed: {
        secretManaged: true,
        secretKeyId: true,
        keyManaged: true,
        listedSecretManaged: [
          ['py-merged', true],
          ['py-plain', false],
        ],
        listedKeyManaged: [true],
        plainManaged: null,
        setSecret: refusedAsManaged,
        updateSecret: refusedAsManaged,
        deleteSecret: refusedAsManaged,
        updateKey: refusedAsManaged,
        deleteKey: refusedAsManaged,
        createKey: refusedAsManaged,
        secretStillEnabled: true,
        keyStillEnabled: true,
      },
    });
  });
});
