import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** `latchkey keyvault key ...` end to end: the real CLI binary against a real server. */
describe('keyvault key CLI end to end', () => {
  let s: TestServer;
  let user: CliUser;
  let tmp: string;
  let run: (...args: string[]) => Promise<CliResult>;
  const v = ['--vault-name', 'clikeys'];

  before(async () => {
    s = await startTestServer();
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-clikeys-'));
    ({ user, run } = await vaultAdminCli(s, 'clikeys', 'Key Vault Crypto Officer'));
  });
  after(async () => {
    user?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await s?.stop();
  });

  test('every key command: create, import, show, list, versions, attributes, crypto, rotation, delete/recover/purge, backup/restore', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = join(tmp, 'key.pem');
    writeFileSync(pem, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const jwkFile = join(tmp, 'key.jwk');
    writeFileSync(
      jwkFile,
      JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })),
    );
    const pubOnly = join(tmp, 'pub.jwk');
    writeFileSync(pubOnly, JSON.stringify(publicKey.export({ format: 'jwk' })));
    const policyFile = join(tmp, 'policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        lifetimeActions: [
          { trigger: { timeAfterCreate: 'P18M', timeBeforeExpiry: null }, action: { type: 'Rotate' } },
          { trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } },
        ],
        attributes: { expiryTime: 'P2Y' },
      }),
    );
    const backup = join(tmp, 'cli-life.bak');
    const key = (...args: string[]) => run('keyvault', 'key', ...args);
    const msg = Buffer.from('sign this');
    const digest = createHash('sha256').update(msg).digest().toString('base64');

    // Round 1: create and import.
    const [rsa, ec, imp, impEc, life, pubFail, ktyFail] = await Promise.all([
      key('create', ...v, '-n', 'cli-rsa', '--kty', 'RSA', '--size', '2048', '--tags', 'env=dev'),
      key('create', ...v, '-n', 'cli-ec', '--kty', 'EC', '--curve', 'P-384', '--ops', 'sign', 'verify'),
      key('import', ...v, '-n', 'cli-imported', '--pem-file', pem),
      key('import', ...v, '-n', 'cli-imported-ec', '--file', jwkFile),
      key('create', ...v, '-n', 'cli-life', '--kty', 'RSA', '--disabled', 'false'),
      key('import', ...v, '-n', 'x', '--file', pubOnly),
      key('create', ...v, '-n', 'bad', '--kty', 'oct'),
    ]);
    assert.equal(ok(rsa, 'create').json.key.kty, 'RSA');
    assert.equal(rsa.json.name, 'cli-rsa');
    assert.deepEqual(rsa.json.tags, { env: 'dev' });
    assert.equal(rsa.json.key.d, undefined);
    assert.equal(ok(ec).json.key.crv, 'P-384');
    assert.deepEqual(ec.json.key.keyOps, ['sign', 'verify']);
    assert.equal(ok(imp, 'import pem').json.key.n, publicKey.export({ format: 'jwk' }).n);
    assert.equal(ok(impEc, 'import jwk').json.key.crv, 'P-256');
    ok(life);
    fails(pubFail, /private parts/);
    fails(ktyFail, /BadParameter/);

    // Round 2: read, change, sign, encrypt, back up.
    const [byId, list, upd, policy, sig, enc, bak, lenFail] = await Promise.all([
      key('show', '--id', ec.json.key.kid),
      key('list', ...v, '-o', 'table'),
      key(
        'set-attributes',
        ...v,
        '-n',
        'cli-rsa',
        '--expires',
        '2031-01-01T00:00:00Z',
        '--ops',
        'sign',
        'verify',
        '--tags',
        'team=x',
      ),
      key('rotation-policy', 'update', ...v, '-n', 'cli-ec', '--value', `@${policyFile}`),
      key('sign', ...v, '-n', 'cli-imported', '-a', 'PS256', '--digest', digest),
      key(
        'encrypt',
        ...v,
        '-n',
        'cli-imported',
        '-a',
        'RSA-OAEP-256',
        '--value',
        'hello key',
        '--data-type',
        'plaintext',
      ),
      key('backup', ...v, '-n', 'cli-life', '--file', backup),
      key('sign', ...v, '-n', 'cli-imported', '-a', 'RS256', '--digest', 'AAAA'),
    ]);
    assert.equal(ok(byId).json.key.x, ec.json.key.x);
    assert.match(ok(list).stdout, /^Name\s+Enabled/);
    for (const n of ['cli-ec', 'cli-imported', 'cli-life', 'cli-rsa'])
      assert.match(list.stdout, new RegExp(`\\n${n}\\s`));
    assert.equal(ok(upd).json.attributes.expires, '2031-01-01T00:00:00+00:00');
    assert.deepEqual(upd.json.key.keyOps, ['sign', 'verify']);
    assert.deepEqual(upd.json.tags, { team: 'x' });
    assert.equal(ok(policy, 'policy').json.attributes.expiryTime, 'P2Y');
    assert.equal(policy.json.lifetimeActions[0].trigger.timeAfterCreate, 'P18M');
    assert.equal(ok(sig, 'sign').json.algorithm, 'PS256');
    assert.ok(
      verify(
        'sha256',
        msg,
        { key: publicKey, padding: 6, saltLength: 32 },
        Buffer.from(sig.json.signature, 'base64'),
      ),
      'the CLI signature verifies with node:crypto',
    );
    assert.equal(Buffer.from(ok(enc, 'encrypt').json.result, 'base64').length, 256);
    ok(bak, 'backup');
    fails(lenFail, /Invalid length of 'value'/);

    // Round 3: verify, decrypt, versions, policy, rotate, delete.
    const [good, dec, versions, shownPolicy, rotated, del] = await Promise.all([
      key(
        'verify',
        ...v,
        '-n',
        'cli-imported',
        '-a',
        'PS256',
        '--digest',
        digest,
        '--signature',
        sig.json.signature,
      ),
      key(
        'decrypt',
        ...v,
        '-n',
        'cli-imported',
        '-a',
        'RSA-OAEP-256',
        '--value',
        enc.json.result,
        '--data-type',
        'plaintext',
      ),
      key('list-versions', ...v, '-n', 'cli-rsa'),
      key('rotation-policy', 'show', ...v, '-n', 'cli-ec'),
      key('rotate', ...v, '-n', 'cli-ec'),
      key('delete', ...v, '-n', 'cli-life'),
    ]);
    assert.equal(ok(good, 'verify').json.isValid, true);
    assert.equal(ok(dec, 'decrypt').json.result, 'hello key');
    assert.equal(ok(versions).json.length, 1);
    assert.deepEqual(ok(shownPolicy).json.lifetimeActions, policy.json.lifetimeActions);
    assert.notEqual(ok(rotated, 'rotate').json.key.kid, ec.json.key.kid);
    assert.ok(rotated.json.attributes.expires, 'expiryTime P2Y gives the new version an expiry');
    assert.match(ok(del).json.recoveryId, /\/deletedkeys\/cli-life$/);

    // Round 4: deleted keys, recover, purge, restore.
    const deleted = ok(await key('list-deleted', ...v));
    assert.deepEqual(
      deleted.json.map((k: { name: string }) => k.name),
      ['cli-life'],
    );
    assert.equal(ok(await key('recover', ...v, '-n', 'cli-life')).json.name, 'cli-life');
    ok(await key('delete', ...v, '-n', 'cli-life', '-o', 'none'));
    ok(await key('purge', ...v, '-n', 'cli-life'));
    const [restored, missing] = await Promise.all([
      key('restore', ...v, '--file', backup),
      key('show', ...v, '-n', 'no-such'),
    ]);
    assert.equal(ok(restored, 'restore').json.name, 'cli-life');
    fails(missing, /KeyNotFound/);
  });
});
