import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CliResult, CliUser } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { cliOk, vaultAdminCli } from './helpers/vault-cli.js';

const ok = cliOk;
/** A failure: exit code, one `ERROR:` line on stderr, no stack. */
const fails = (r: CliResult, pattern: RegExp, code = 1) => {
  assert.equal(r.code, code, `exit ${code} expected; stdout: ${r.stdout} stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^ERROR: /);
  assert.match(lines[0]!, pattern);
};
const openssl = (args: string[]) =>
  execFileSync('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] }).toString();

/**
 * `latchkey keyvault certificate pending merge|cancel` and `issuer create|show|list|update|delete`
 * end to end: the real CLI binary against a real server, openssl as the outside CA.
 */
describe('keyvault certificate CLI: pending merge and cancel, issuers', () => {
  let s: TestServer;
  let user: CliUser;
  let tmp: string;
  let run: (...args: string[]) => Promise<CliResult>;
  const v = ['--vault-name', 'clipend'];
  const cert = (...args: string[]) => run('keyvault', 'certificate', ...args);
  const file = (name: string) => join(tmp, name);

  /** An outside CA (openssl) signing a CSR (base64 DER) with its extensions; returns the leaf's PEM file. */
  const sign = (csrB64: string, out: string) => {
    const csr = file(`${out}.csr`);
    writeFileSync(
      csr,
      `-----BEGIN CERTIFICATE REQUEST-----\n${csrB64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE REQUEST-----\n`,
    );
    const leaf = file(`${out}.crt`);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-out',
      leaf,
      '-days',
      '20',
      '-copy_extensions',
      'copy',
    ]);
    return leaf;
  };
  const pendingCreate = async (name: string) => {
    const r = ok(
      await cert(
        'create',
        ...v,
        '-n',
        name,
        '-p',
        JSON.stringify({
          issuerParameters: { name: 'Unknown' },
          keyProperties: { keyType: 'RSA', keySize: 2048 },
          x509CertificateProperties: { subject: `CN=${name}.example` },
        }),
      ),
      'create',
    );
    assert.equal(r.json.status, 'inProgress');
    assert.ok(r.json.csr, 'r.json.csr');
    return r.json.csr as string;
  };
  const fingerprint = (pemFile: string) =>
    openssl(['x509', '-in', pemFile, '-noout', '-fingerprint', '-sha1'])
      .trim()
      .replace(/^.*=/, '')
      .replaceAll(':', '');

  before(async () => {
    s = await startTestServer();
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-clipend-'));
    ({ user, run } = await vaultAdminCli(s, 'clipend', 'Key Vault Certificates Officer'));
    openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.crt'),
      '-subj',
      '/CN=CLI Outside CA',
      '-days',
      '30',
    ]);
  });
  after(async () => {
    user?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await s?.stop();
  });

  test('pending merge: a PEM chain (CA first, then the leaf) and a DER certificate', async () => {
    const leaf = sign(await pendingCreate('merge-pem'), 'merge-pem');
    // The chain file in any order: every certificate in it is sent, the server finds the leaf.
    writeFileSync(file('chain.pem'), readFileSync(file('ca.crt'), 'utf8') + readFileSync(leaf, 'utf8'));
    const merged = ok(
      await cert('pending', 'merge', ...v, '-n', 'merge-pem', '-f', file('chain.pem')),
      'merge',
    );
    assert.equal(merged.json.name, 'merge-pem');
    assert.equal(merged.json.x509ThumbprintHex, fingerprint(leaf));
    assert.equal(merged.json.policy.issuerParameters.name, 'Unknown');
    const shown = ok(await cert('show', ...v, '-n', 'merge-pem')).json;
    assert.equal(shown.x509ThumbprintHex, fingerprint(leaf));

    const leaf2 = sign(await pendingCreate('merge-der'), 'merge-der');
    openssl(['x509', '-in', leaf2, '-outform', 'DER', '-out', file('merge-der.der')]);
    const der = ok(
      await cert(
        'pending',
        'merge',
        ...v,
        '-n',
        'merge-der',
        '-f',
        file('merge-der.der'),
        '--tags',
        'from=ca',
      ),
    ).json;
    assert.equal(der.x509ThumbprintHex, fingerprint(leaf2));
    assert.deepEqual(der.tags, { from: 'ca' });
  });

  test('pending merge refusals; pending cancel, then delete', async () => {
    const badCsr = await pendingCreate('merge-bad');
    // Another request's certificate: the key does not match.
    const other = sign(await pendingCreate('merge-other'), 'merge-other');
    fails(await cert('pending', 'merge', ...v, '-n', 'merge-bad', '-f', other), /doesn't match/);
    writeFileSync(file('empty.pem'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    fails(
      await cert('pending', 'merge', ...v, '-n', 'merge-bad', '-f', file('empty.pem')),
      /no PEM certificate/,
      2,
    );
    fails(await cert('pending', 'merge', ...v, '-n', 'merge-bad', '-f', file('nope.pem')), /file not found/);

    const cancelled = ok(await cert('pending', 'cancel', ...v, '-n', 'merge-bad')).json;
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.cancellationRequested, true);
    assert.equal(ok(await cert('pending', 'show', ...v, '-n', 'merge-bad')).json.status, 'cancelled');
    const own = sign(badCsr, 'merge-bad');
    fails(await cert('pending', 'merge', ...v, '-n', 'merge-bad', '-f', own), /cancel/i);
    ok(await cert('pending', 'delete', ...v, '-n', 'merge-bad'));
    fails(await cert('pending', 'show', ...v, '-n', 'merge-bad'), /not found/i);
  });

  test('issuer create, show, list, update (disable, enable), delete; a certificate by the issuer', async () => {
    const created = ok(
      await cert(
        'issuer',
        'create',
        ...v,
        '--issuer-name',
        'corp-ca',
        '--provider-name',
        'Latchkey',
        '--account-id',
        'acct-1',
        '--password',
        'never-kept',
        '--organization-id',
        'org-1',
      ),
    ).json;
    assert.equal(created.id, `${s.vaultUrl('clipend')}/certificates/issuers/corp-ca`);
    assert.equal(created.provider, 'Latchkey');
    assert.deepEqual(created.credentials, { accountId: 'acct-1', password: null });
    assert.deepEqual(created.organizationDetails, { adminDetails: [], id: 'org-1' });
    assert.equal(created.attributes.enabled, true);
    assert.doesNotMatch(JSON.stringify(created), /never-kept/);
    const shown = ok(await cert('issuer', 'show', ...v, '--issuer-name', 'corp-ca')).json;
    assert.deepEqual(shown, created);
    assert.deepEqual(ok(await cert('issuer', 'list', ...v)).json, [{ id: created.id, provider: 'Latchkey' }]);

    const policy = (name: string) =>
      JSON.stringify({
        issuerParameters: { name: 'corp-ca' },
        keyProperties: { keyType: 'EC', curve: 'P-256' },
        x509CertificateProperties: { subject: `CN=${name}.example` },
      });
    const disabled = ok(
      await cert('issuer', 'update', ...v, '--issuer-name', 'corp-ca', '--disabled', 'true'),
    ).json;
    assert.equal(disabled.attributes.enabled, false);
    assert.equal(disabled.credentials.accountId, 'acct-1', 'an update keeps what it does not name');
    fails(await cert('create', ...v, '-n', 'by-corp', '-p', policy('by-corp')), /corp-ca/);
    ok(await cert('issuer', 'update', ...v, '--issuer-name', 'corp-ca', '--disabled', 'false'));
    const issued = ok(await cert('create', ...v, '-n', 'by-corp', '-p', policy('by-corp'))).json;
    assert.equal(issued.status, 'completed');
    assert.equal(issued.issuerParameters.name, 'corp-ca');

    fails(
      await cert('issuer', 'create', ...v, '--issuer-name', 'digi', '--provider-name', 'DigiCert'),
      /DigiCert/,
    );
    const usage = await cert('issuer', 'create', ...v, '--issuer-name', 'x');
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /--provider-name/);
    ok(await cert('issuer', 'delete', ...v, '--issuer-name', 'corp-ca'));
    fails(await cert('issuer', 'show', ...v, '--issuer-name', 'corp-ca'), /Issuer not found: corp-ca/);
    assert.deepEqual(ok(await cert('issuer', 'list', ...v)).json, []);
  });
});
