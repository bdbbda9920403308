import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CertificateClient } from '@azure/keyvault-certificates';
import { REPO_ROOT } from './helpers/cli.js';
import { identityStateDir, putApp, putSettings } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, type VaultTestPrincipal, vaultPrincipal } from './helpers/vault.js';

const BIN = join(REPO_ROOT, 'bin', 'latchkey.js');
const CHILD = join(REPO_ROOT, 'test', 'fixtures', 'identity-child.mjs');
const DNS = join(REPO_ROOT, 'test', 'fixtures', 'localhost-dns.mjs');
const poll = { intervalInMs: 10 };
const openssl = (args: string[], input?: Buffer | string) =>
  execFileSync('openssl', args, {
    ...(input !== undefined ? { input } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString('utf8');

/**
 * `latchkey run --app APP -- node identity-child.mjs env`, in an environment with no credential
 * (PATH, an empty HOME and CLI config): the workload prints the environment it was given.
 */
function runEnv(s: TestServer, home: string, app: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; env?: Record<string, string> }>(
    (resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          BIN,
          'run',
          '--app',
          app,
          '--state-dir',
          identityStateDir(s),
          '--',
          process.execPath,
          '--import',
          DNS,
          CHILD,
          'env',
        ],
        {
          cwd: REPO_ROOT,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: home,
            LATCHKEY_CONFIG_DIR: join(home, '.latchkey'),
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
      const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        let env: Record<string, string> | undefined;
        try {
          env = JSON.parse(stdout.trim().split('\n').pop() ?? '').env;
        } catch {}
        resolve({ code, stdout, stderr, ...(env ? { env } : {}) });
      });
    },
  );
}

describe('latchkey run: an app identity with Key Vault Certificate User reads its certificate by a Key Vault reference', () => {
  let s: TestServer;
  let home: string;
  let dir: string;
  let vaultId: string;
  let officer: VaultTestPrincipal;
  let pemVersion: string;
  const settings = () => ({
    TLS_PEM: `@Microsoft.KeyVault(SecretUri=${s.vaultUrl('certrun')}/secrets/web-pem)`,
    TLS_PEM_PINNED: `@Microsoft.KeyVault(SecretUri=${s.vaultUrl('certrun')}/secrets/web-pem/${pemVersion})`,
    TLS_PFX: '@Microsoft.KeyVault(VaultName=certrun;SecretName=web-pfx)',
  });

  before(async () => {
    s = await startTestServer();
    home = mkdtempSync(join(tmpdir(), 'lk-certrun-home-'));
    dir = mkdtempSync(join(tmpdir(), 'lk-certrun-'));
    vaultId = (await putVault(s, 'certrun')).id;
    officer = await vaultPrincipal(s, 'certrun-officer');
    await grant(s, officer.id, 'Key Vault Certificates Officer', vaultId);
    const certs = new CertificateClient(s.vaultUrl('certrun'), officer.credential, { agent: s.agent });
    const made = await (
      await certs.beginCreateCertificate(
        'web-pem',
        { issuerName: 'Latchkey', subject: 'CN=web-pem.example', contentType: 'application/x-pem-file' },
        poll,
      )
    ).pollUntilDone();
    pemVersion = made.properties.version!;
    await (
      await certs.beginCreateCertificate(
        'web-pfx',
        { issuerName: 'Latchkey', subject: 'CN=web-pfx.example' },
        poll,
      )
    ).pollUntilDone();
  });
  after(async () => {
    await s?.stop();
    rmSync(home, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  test("with the role: the PEM and the PFX, by the policy's content type, in the workload's environment", async () => {
    const app = await putApp(s, 'cert-app', { identity: { type: 'SystemAssigned' } });
    await grant(s, app.identity.principalId!, 'Key Vault Certificate User', vaultId);
    await putSettings(s, 'cert-app', settings());
    const r = await runEnv(s, home, 'cert-app');
    assert.equal(r.code, 0, r.stderr);
    const env = r.env!;
    // PEM (application/x-pem-file): the private key, the certificate, the tenant CA.
    assert.match(env.TLS_PEM!, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal((env.TLS_PEM!.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'the leaf and the CA');
    assert.equal(env.TLS_PEM_PINNED, env.TLS_PEM, 'the pinned version is the latest here');
    const leaf = join(dir, 'leaf.pem');
    writeFileSync(leaf, env.TLS_PEM!);
    assert.match(openssl(['x509', '-noout', '-subject', '-in', leaf]), /CN = web-pem\.example/);
    assert.equal(
      openssl(['pkey', '-pubout'], env.TLS_PEM!),
      openssl(['x509', '-noout', '-pubkey', '-in', leaf]),
      'the key is the certificate’s',
    );
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, (await s.request('GET', `${s.info.authority}/${s.info.tenantId}/pki/ca.pem`)).text);
    assert.match(openssl(['verify', '-CAfile', ca, leaf]), /OK/);
    // PFX (application/x-pkcs12, the default): base64 PKCS#12 without a password, key and chain inside.
    assert.match(env.TLS_PFX!, /^[A-Za-z0-9+/]+=*$/, 'base64');
    const pfx = Buffer.from(env.TLS_PFX!, 'base64');
    const opened = openssl(['pkcs12', '-nodes', '-passin', 'pass:'], pfx);
    assert.match(opened, /-----BEGIN PRIVATE KEY-----/);
    assert.match(opened, /subject=CN = web-pfx\.example/);
    assert.match(opened, new RegExp(`subject=CN = Latchkey CA ${s.info.tenantId}`));
  });

  test('without the role the reference is refused and the workload never starts', async () => {
    const app = await putApp(s, 'cert-norole', { identity: { type: 'SystemAssigned' } });
    // Reading the certificate's public part is not enough: the secret needs getSecret.
    await grant(s, app.identity.principalId!, 'Key Vault Reader', vaultId);
    await putSettings(s, 'cert-norole', settings());
    const r = await runEnv(s, home, 'cert-norole');
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^ERROR: cannot start app 'cert-norole': app setting 'TLS_[A-Z_]+': the Key Vault reference to secret 'web-p(em|fx)' in vault 'certrun' could not be resolved: \(Forbidden\)/,
    );
    assert.equal(r.stdout, '', 'the workload never started');
    assert.doesNotMatch(r.stderr, /PRIVATE KEY|MII/, 'no certificate material in the error');
  });
});
