import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { policyToWire } from '../src/cli/commands/keyvault-certificate.js';
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
const openssl = (args: string[], input?: Buffer | string) =>
  execFileSync('openssl', args, {
    ...(input !== undefined ? { input } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString('utf8');

/** `latchkey keyvault certificate ...` end to end: the real CLI binary against a real server. */
describe('keyvault certificate CLI end to end', () => {
  let s: TestServer;
  let user: CliUser;
  let tmp: string;
  let run: (...args: string[]) => Promise<CliResult>;
  const v = ['--vault-name', 'clicerts'];
  const cert = (...args: string[]) => run('keyvault', 'certificate', ...args);

  before(async () => {
    s = await startTestServer();
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-clicerts-'));
    ({ user, run } = await vaultAdminCli(s, 'clicerts', 'Key Vault Certificates Officer'));
  });
  after(async () => {
    user?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await s?.stop();
  });

  test("get-default-policy prints az's policy, and create takes it (Self, RSA 2048, 12 months)", async () => {
    const def = ok(await cert('get-default-policy'));
    assert.deepEqual(def.json, {
      issuerParameters: { certificateTransparency: null, name: 'Self' },
      keyProperties: { curve: null, exportable: true, keySize: 2048, keyType: 'RSA', reuseKey: true },
      lifetimeActions: [{ action: { actionType: 'AutoRenew' }, trigger: { daysBeforeExpiry: 90 } }],
      secretProperties: { contentType: 'application/x-pkcs12' },
      x509CertificateProperties: {
        keyUsage: [
          'cRLSign',
          'dataEncipherment',
          'digitalSignature',
          'keyEncipherment',
          'keyAgreement',
          'keyCertSign',
        ],
        subject: 'CN=CLIGetDefaultPolicy',
        validityInMonths: 12,
      },
    });
    const file = join(tmp, 'policy.json');
    writeFileSync(file, def.stdout);
    const created = ok(await cert('create', ...v, '-n', 'cli-default', '--policy', `@${file}`), 'create');
    assert.equal(created.json.status, 'completed');
    assert.equal(created.json.issuerParameters.name, 'Self');
    assert.equal(created.json.name, 'cli-default');
    assert.match(created.json.target, /\/certificates\/cli-default$/);

    const shown = ok(await cert('show', ...v, '-n', 'cli-default'));
    assert.equal(shown.json.name, 'cli-default');
    assert.equal(shown.json.policy.x509CertificateProperties.subject, 'CN=CLIGetDefaultPolicy');
    assert.equal(shown.json.policy.keyProperties.keySize, 2048);
    assert.equal(shown.json.policy.keyProperties.reuseKey, true);
    assert.equal(shown.json.policy.issuerParameters.name, 'Self');
    assert.equal(shown.json.contentType, 'application/x-pkcs12');
    const der = Buffer.from(shown.json.cer, 'base64');
    const fp = openssl(['x509', '-inform', 'DER', '-noout', '-fingerprint', '-sha1'], der);
    assert.equal(fp.trim().split('=')[1]!.replaceAll(':', ''), shown.json.x509ThumbprintHex);
    assert.equal(
      Buffer.from(shown.json.x509Thumbprint, 'base64').toString('hex').toUpperCase(),
      shown.json.x509ThumbprintHex,
    );
    const text = openssl(['x509', '-inform', 'DER', '-noout', '-text'], der);
    assert.match(text, /Subject: CN = CLIGetDefaultPolicy/);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    const months =
      (Date.parse(shown.json.attributes.expires) - Date.parse(shown.json.attributes.notBefore)) /
      (30.4 * 86_400_000);
    assert.ok(months > 11.8 && months < 12.2, `${months} months`);
  });

  test('create (REST-shaped policy, --validity, tags, disabled), show by id, list, versions, download PEM/DER, pending', async () => {
    const policy = JSON.stringify({
      issuer: { name: 'Self' },
      key_props: { kty: 'EC', crv: 'P-256' },
      x509_props: { subject: 'CN=cli.example', sans: { dns_names: ['cli.example'] } },
    });
    ok(await cert('create', ...v, '-n', 'cli-ec', '-p', policy, '--validity', '2', '--tags', 'env=dev'));
    const second = ok(await cert('create', ...v, '-n', 'cli-ec', '-p', policy, '--disabled', 'true'));
    assert.equal(second.json.status, 'completed');
    const latest = ok(await cert('show', ...v, '-n', 'cli-ec')).json;
    assert.equal(latest.attributes.enabled, false);
    const [versions, list, table, byId] = await Promise.all([
      cert('list-versions', ...v, '-n', 'cli-ec'),
      cert('list', ...v),
      cert('list', ...v, '-o', 'table'),
      cert('show', '--id', latest.id),
    ]);
    assert.equal(ok(versions).json.length, 2);
    const tagged = versions.json.find((x: { tags: unknown }) => x.tags !== null);
    assert.deepEqual(tagged.tags, { env: 'dev' });
    const names = ok(list).json.map((x: { name: string }) => x.name);
    assert.ok(names.includes('cli-ec') && names.includes('cli-default'), names.join());
    assert.match(ok(table).stdout, /^Name\s+Thumbprint\s+Enabled/);
    assert.equal(ok(byId).json.x509ThumbprintHex, latest.x509ThumbprintHex);
    assert.equal(byId.json.policy.keyProperties.curve, 'P-256');
    assert.deepEqual(byId.json.policy.x509CertificateProperties.subjectAlternativeNames.dnsNames, [
      'cli.example',
    ]);

    const pem = join(tmp, 'cli-ec.pem');
    const der = join(tmp, 'cli-ec.der');
    const old = join(tmp, 'cli-ec-old.pem');
    ok(await cert('download', ...v, '-n', 'cli-ec', '-f', pem));
    ok(await cert('download', ...v, '-n', 'cli-ec', '-f', der, '-e', 'DER'));
    ok(await cert('download', ...v, '-n', 'cli-ec', '--version', tagged.id.split('/').pop(), '-f', old));
    const pemText = readFileSync(pem, 'utf8');
    assert.match(
      pemText,
      /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{76}\n)+[A-Za-z0-9+/=]{1,76}\n-----END CERTIFICATE-----\n$/,
    );
    assert.deepEqual(readFileSync(der), Buffer.from(latest.cer, 'base64'));
    assert.match(openssl(['x509', '-in', pem, '-noout', '-subject']), /CN = cli\.example/);
    assert.notEqual(readFileSync(old, 'utf8'), pemText);
    // As az: never over an existing file.
    fails(await cert('download', ...v, '-n', 'cli-ec', '-f', pem), /already exists/);
    fails(await cert('download', ...v, '-n', 'cli-ec', '-f', join(tmp, 'x'), '-e', 'BER'), /PEM or DER/, 2);

    const upd = ok(
      await cert(
        'set-attributes',
        '--id',
        latest.id,
        '--enabled',
        'true',
        '--tags',
        'team=x',
        '-p',
        JSON.stringify({
          lifetimeActions: [{ trigger: { lifetimePercentage: 70 }, action: { actionType: 'EmailContacts' } }],
        }),
      ),
    );
    assert.equal(upd.json.attributes.enabled, true);
    assert.deepEqual(upd.json.tags, { team: 'x' });
    assert.equal(upd.json.policy.lifetimeActions[0].trigger.lifetimePercentage, 70);
    assert.equal(upd.json.policy.x509CertificateProperties.subject, 'CN=cli.example');
    fails(
      await cert('set-attributes', ...v, '-n', 'cli-ec', '--enabled', 'maybe'),
      /--enabled must be true or false/,
      2,
    );

    const pending = ok(await cert('pending', 'show', ...v, '-n', 'cli-ec'));
    assert.equal(pending.json.status, 'completed');
    assert.equal(pending.json.issuerParameters.name, 'Self');
    ok(await cert('pending', 'delete', ...v, '-n', 'cli-ec'));
    fails(await cert('pending', 'show', ...v, '-n', 'cli-ec'), /Pending certificate not found/);
  });

  test('import a PFX with a password and a PEM made by openssl', async () => {
    const key = join(tmp, 'imp.key');
    const crt = join(tmp, 'imp.crt');
    const pfx = join(tmp, 'imp.pfx');
    openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-subj',
      '/CN=imported.example',
      '-days',
      '30',
    ]);
    openssl(['pkcs12', '-export', '-inkey', key, '-in', crt, '-out', pfx, '-passout', 'pass:s3cret']);
    const combined = join(tmp, 'imp.pem');
    writeFileSync(combined, readFileSync(key, 'utf8') + readFileSync(crt, 'utf8'));
    const [withPw, noPw, asPem] = await Promise.all([
      cert('import', ...v, '-n', 'cli-pfx', '-f', pfx, '--password', 's3cret', '--tags', 'src=pfx'),
      cert('import', ...v, '-n', 'cli-nopw', '-f', pfx),
      cert('import', ...v, '-n', 'cli-pem', '-f', combined),
    ]);
    assert.equal(
      ok(withPw, 'import pfx').json.policy.x509CertificateProperties.subject,
      'CN=imported.example',
    );
    assert.equal(withPw.json.policy.issuerParameters.name, 'Unknown');
    assert.deepEqual(withPw.json.tags, { src: 'pfx' });
    assert.equal(withPw.json.contentType, 'application/x-pkcs12');
    fails(noPw, /BadParameter|password/i);
    assert.equal(ok(asPem, 'import pem').json.contentType, 'application/x-pem-file');
    const crtDer = Buffer.from(
      readFileSync(crt, 'utf8')
        .replace(/-----[A-Z ]+-----/g, '')
        .replace(/\s+/g, ''),
      'base64',
    );
    assert.deepEqual(Buffer.from(asPem.json.cer, 'base64'), crtDer);
    fails(await cert('import', ...v, '-n', 'x', '-f', join(tmp, 'none.pfx')), /file not found/);
  });

  test('delete, show-deleted, list-deleted, recover, backup, purge, restore', async () => {
    const policy = JSON.stringify({
      issuerParameters: { name: 'Self' },
      x509CertificateProperties: { subject: 'CN=life' },
    });
    const made = ok(await cert('create', ...v, '-n', 'cli-life', '-p', policy));
    assert.equal(made.json.status, 'completed');
    const before = ok(await cert('show', ...v, '-n', 'cli-life')).json;
    const bak = join(tmp, 'cli-life.bak');
    ok(await cert('backup', ...v, '-n', 'cli-life', '-f', bak));
    const del = ok(await cert('delete', ...v, '-n', 'cli-life'));
    assert.match(del.json.recoveryId, /\/deletedcertificates\/cli-life$/);
    const [shownDeleted, listed] = await Promise.all([
      cert('show-deleted', ...v, '-n', 'cli-life'),
      cert('list-deleted', ...v),
    ]);
    assert.equal(ok(shownDeleted).json.name, 'cli-life');
    assert.ok(
      ok(listed).json.some((x: { name: string }) => x.name === 'cli-life'),
      "ok(listed).json.some((x: { name: string }) => x.name === 'cli-life')",
    );
    assert.equal(ok(await cert('recover', ...v, '-n', 'cli-life')).json.name, 'cli-life');
    fails(await cert('restore', ...v, '-f', bak), /Conflict|already exists/);
    ok(await cert('delete', ...v, '-n', 'cli-life'));
    ok(await cert('purge', ...v, '-n', 'cli-life'));
    fails(await cert('show', ...v, '-n', 'cli-life'), /CertificateNotFound|not found/);
    const restored = ok(await cert('restore', ...v, '-f', bak), 'restore');
    assert.equal(restored.json.x509ThumbprintHex, before.x509ThumbprintHex);
    assert.equal(restored.json.id, before.id);
  });

  test('refusals: bad policy JSON, a policy the vault refuses, missing names', async () => {
    fails(await cert('create', ...v, '-n', 'bad', '-p', '{nope'), /not valid JSON/, 2);
    fails(await cert('create', ...v, '-n', 'bad', '-p', '[]'), /JSON object/, 2);
    fails(await cert('create', ...v, '-n', 'bad', '-p', '@/no/such/file.json'), /file not found/);
    fails(
      await cert(
        'create',
        ...v,
        '-n',
        'bad',
        '-p',
        JSON.stringify({ issuer: { name: 'Self' }, key_props: { kty: 'oct' } }),
      ),
      /BadParameter|kty|key type/i,
    );
    fails(await cert('show', '--id', 'https://clicerts.vault.localhost/keys/x'), /certificate identifier/, 2);
    fails(await cert('show', '-n', 'x'), /--vault-name and --name/, 2);
  });

  test('policyToWire: az camelCase, az snake_case and the REST shape give the same REST policy', () => {
    const rest = {
      key_props: { kty: 'EC', crv: 'P-384', exportable: false, reuse_key: false },
      secret_props: { contentType: 'application/x-pem-file' },
      x509_props: {
        subject: 'CN=x',
        sans: { dns_names: ['a.example'], emails: ['e@x.example'] },
        ekus: ['1.3.6.1.5.5.7.3.1'],
        key_usage: ['digitalSignature'],
        validity_months: 6,
      },
      lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'EmailContacts' } }],
      issuer: { name: 'Self', cty: 'OV-SSL' },
    };
    const camel = {
      keyProperties: { keyType: 'EC', curve: 'P-384', exportable: false, reuseKey: false },
      secretProperties: { contentType: 'application/x-pem-file' },
      x509CertificateProperties: {
        subject: 'CN=x',
        subjectAlternativeNames: { dnsNames: ['a.example'], emails: ['e@x.example'], upns: null },
        ekus: ['1.3.6.1.5.5.7.3.1'],
        keyUsage: ['digitalSignature'],
        validityInMonths: 6,
      },
      lifetimeActions: [
        {
          trigger: { lifetimePercentage: 80, daysBeforeExpiry: null },
          action: { actionType: 'EmailContacts' },
        },
      ],
      issuerParameters: { name: 'Self', certificateType: 'OV-SSL', certificateTransparency: null },
    };
    const snake = {
      key_properties: { key_type: 'EC', curve: 'P-384', exportable: false, reuse_key: false },
      secret_properties: { content_type: 'application/x-pem-file' },
      x509_certificate_properties: {
        subject: 'CN=x',
        subject_alternative_names: { dns_names: ['a.example'], emails: ['e@x.example'] },
        ekus: ['1.3.6.1.5.5.7.3.1'],
        key_usage: ['digitalSignature'],
        validity_in_months: 6,
      },
      lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'EmailContacts' } }],
      issuer_parameters: { name: 'Self', certificate_type: 'OV-SSL' },
    };
    for (const p of [rest, camel, snake]) assert.deepEqual(policyToWire(p), rest);
  });
});
