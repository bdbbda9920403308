import assert from 'node:assert/strict';
import {
  constants,
  createHash,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { KeyClient } from '@azure/keyvault-keys';
import { auditCount, cryptoClient, keyClient, nodePublicKey } from './helpers/keys.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, type VaultTestPrincipal, vaultPrincipal, vaultToken } from './helpers/vault.js';

type RestError = Error & {
  statusCode?: number;
  code?: string;
  details?: { error?: { innerError?: { code?: string } } };
};
const status = (code: number, errorCode?: string) => (e: RestError) => {
  assert.equal(e.statusCode, code, e.message);
  if (errorCode) assert.equal(e.code, errorCode, e.message);
  return true;
};
const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' } as const;
const hashOf = (alg: string) => HASH[Number(alg.slice(2, 5)) as 256 | 384 | 512];
const digest = (alg: string, data: Buffer) => createHash(hashOf(alg)).update(data).digest();

/** The official KeyClient and CryptographyClient against a real server: every key type and algorithm. */
describe('Key Vault keys with the official SDK', () => {
  let s: TestServer;
  let officer: VaultTestPrincipal;
  let client: KeyClient;
  const poll = { intervalInMs: 10 };

  before(async () => {
    s = await startTestServer();
    const vault = await putVault(s, 'keysdk');
    officer = await vaultPrincipal(s, 'crypto-officer');
    await grant(s, officer.id, 'Key Vault Crypto Officer', vault.id);
    client = keyClient(s, 'keysdk', officer);
  });
  after(async () => {
    await s?.stop();
  });

  test('create RSA (2048/3072/4096, exponent) and EC (P-256/384/521/256K) keys; get latest and by version', async () => {
    for (const size of [2048, 3072, 4096]) {
      const k = await client.createRsaKey(`rsa-${size}`, { keySize: size });
      assert.equal(k.keyType, 'RSA');
      assert.equal(Buffer.from(k.key!.n!).length, size / 8);
      assert.equal(Buffer.from(k.key!.e!).toString('hex'), '010001');
      assert.deepEqual(k.keyOperations, ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']);
      assert.equal(k.key!.d, undefined, 'no private parts leave the vault');
      assert.equal(k.properties.vaultUrl, s.vaultUrl('keysdk'));
      assert.match(k.properties.version!, /^[0-9a-f]{32}$/);
      assert.equal(k.id, `${s.vaultUrl('keysdk')}/keys/rsa-${size}/${k.properties.version}`);
    }
    // The SDK does not send publicExponent: the REST API takes it.
    const e3 = await s.request('POST', `${s.vaultUrl('keysdk')}/keys/rsa-e3/create?api-version=7.5`, {
      headers: { authorization: `Bearer ${await vaultToken(s, officer)}` },
      json: { kty: 'RSA', key_size: 2048, public_exponent: 3 },
    });
    assert.equal(e3.status, 200, e3.text);
    assert.equal(e3.json.key.e, 'Aw');
    for (const curve of ['P-256', 'P-384', 'P-521', 'P-256K'] as const) {
      const k = await client.createEcKey(`ec-${curve}`, { curve });
      assert.equal(k.keyType, 'EC');
      assert.equal(k.key!.crv, curve);
      assert.deepEqual(k.keyOperations, ['sign', 'verify']);
      assert.equal(k.key!.d, undefined);
    }
    const v1 = await client.createKey('versioned', 'EC', { tags: { a: '1' } });
    const v2 = await client.createKey('versioned', 'EC');
    assert.notEqual(v1.properties.version, v2.properties.version);
    assert.equal((await client.getKey('versioned')).properties.version, v2.properties.version);
    const old = await client.getKey('VERSIONED', { version: v1.properties.version! });
    assert.deepEqual(old.properties.tags, { a: '1' });
    assert.deepEqual(Buffer.from(old.key!.x!), Buffer.from(v1.key!.x!));
    const versions: string[] = [];
    for await (const p of client.listPropertiesOfKeyVersions('versioned')) versions.push(p.version!);
    assert.deepEqual(versions.sort(), [v1.properties.version!, v2.properties.version!].sort());
  });

  test('update attributes, key_ops and tags (PATCH /keys/{name}/{version})', async () => {
    const k = await client.createRsaKey('updatable');
    const expires = new Date(Date.now() + 86_400_000);
    expires.setMilliseconds(0);
    const u = await client.updateKeyProperties('updatable', k.properties.version!, {
      keyOps: ['sign', 'verify'],
      tags: { owner: 'team-a' },
      expiresOn: expires,
    });
    assert.deepEqual(u.keyOperations, ['sign', 'verify']);
    assert.deepEqual(u.properties.tags, { owner: 'team-a' });
    assert.equal(u.properties.expiresOn?.getTime(), expires.getTime());
    const latest = await client.updateKeyProperties('updatable', {
      enabled: true,
      tags: { owner: 'team-b' },
    } as never);
    assert.deepEqual(latest.properties.tags, { owner: 'team-b' });
    await assert.rejects(
      client.updateKeyProperties('updatable', k.properties.version!, { keyOps: ['bogus' as never] }),
      status(400, 'BadParameter'),
    );
    const ec = await client.createEcKey('ec-ops');
    await assert.rejects(
      client.updateKeyProperties('ec-ops', ec.properties.version!, { keyOps: ['encrypt'] }),
      status(400, 'BadParameter'),
    );
  });

  test('RSA: encrypt/decrypt and wrap/unwrap with RSA1_5, RSA-OAEP, RSA-OAEP-256 (local public-key operations included)', async () => {
    const key = await client.createRsaKey('rsa-enc', { keySize: 2048 });
    const c = cryptoClient(s, key, officer);
    const encBefore = await auditCount(s, 'KeyEncrypt');
    const wrapBefore = await auditCount(s, 'KeyWrap');
    for (const algorithm of ['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256'] as const) {
      const pt = randomBytes(32);
      const enc = await c.encrypt({ algorithm, plaintext: pt });
      assert.equal(enc.result.length, 256);
      assert.deepEqual(Buffer.from((await c.decrypt({ algorithm, ciphertext: enc.result })).result), pt);
      const w = await c.wrapKey(algorithm, pt);
      assert.deepEqual(Buffer.from((await c.unwrapKey(algorithm, w.result)).result), pt);
    }
    // The SDK encrypts and wraps locally (from n/e) for RSA1_5 and RSA-OAEP; RSA-OAEP-256 goes to the vault.
    assert.equal((await auditCount(s, 'KeyEncrypt')) - encBefore, 1);
    assert.equal((await auditCount(s, 'KeyWrap')) - wrapBefore, 1);

    // Independent: node:crypto encrypts with the public JWK; the vault decrypts.
    const pub = nodePublicKey(key);
    const pt = Buffer.from('from node:crypto');
    const cases = [
      {
        algorithm: 'RSA-OAEP',
        ct: publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, pt),
      },
      {
        algorithm: 'RSA-OAEP-256',
        ct: publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, pt),
      },
      { algorithm: 'RSA1_5', ct: publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, pt) },
    ] as const;
    for (const { algorithm, ct } of cases) {
      assert.deepEqual(Buffer.from((await c.decrypt({ algorithm, ciphertext: ct })).result), pt, algorithm);
      assert.deepEqual(Buffer.from((await c.unwrapKey(algorithm, ct)).result), pt, algorithm);
    }
    // RSA1_5 with a corrupt ciphertext yields no padding oracle (implicit rejection): no error, not the plaintext.
    const bad = Buffer.from(cases[2].ct);
    bad[10]! ^= 0xff;
    const r = await c.decrypt({ algorithm: 'RSA1_5', ciphertext: bad });
    assert.notDeepEqual(Buffer.from(r.result), pt);
    assert.deepEqual(
      Buffer.from((await c.decrypt({ algorithm: 'RSA1_5', ciphertext: bad })).result),
      Buffer.from(r.result),
    );
  });

  test('RSA: sign/verify RS256/384/512 and PS256/384/512; signatures verify with node:crypto', async () => {
    const key = await client.createRsaKey('rsa-sig', { keySize: 3072 });
    const c = cryptoClient(s, key, officer);
    const pub = nodePublicKey(key);
    const data = Buffer.from('the message');
    for (const alg of ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const) {
      const d = digest(alg, data);
      const sig = Buffer.from((await c.sign(alg, d)).result);
      assert.equal(sig.length, 384);
      assert.equal((await c.verify(alg, d, sig)).result, true, alg);
      const pss = alg.startsWith('PS');
      // The SDK verifies data locally from n/e, but always with PKCS#1 v1.5 padding (so PS* fails there, as against Azure).
      if (!pss) assert.equal((await c.verifyData(alg, data, sig)).result, true, `${alg} local verifyData`);
      const nodeKey = pss
        ? { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: d.length }
        : { key: pub, padding: constants.RSA_PKCS1_PADDING };
      assert.equal(verify(hashOf(alg), data, nodeKey, sig), true, `${alg} verifies with node:crypto`);
      const sd = Buffer.from((await c.signData(alg, data)).result);
      assert.equal(verify(hashOf(alg), data, nodeKey, sd), true);
      const tampered = Buffer.from(sig);
      tampered[5]! ^= 1;
      assert.equal((await c.verify(alg, d, tampered)).result, false);
      assert.equal((await c.verify(alg, digest(alg, Buffer.from('other')), sig)).result, false);
    }
  });

  test('EC: sign/verify ES256 (P-256), ES384 (P-384), ES512 (P-521), ES256K (P-256K); raw r||s verifies with node:crypto', async () => {
    const cases = [
      ['ES256', 'P-256', 64],
      ['ES384', 'P-384', 96],
      ['ES512', 'P-521', 132],
      ['ES256K', 'P-256K', 64],
    ] as const;
    const data = Buffer.from('sign me');
    for (const [alg, curve, len] of cases) {
      const key = await client.getKey(`ec-${curve}`);
      const c = cryptoClient(s, key, officer);
      const d = createHash(alg === 'ES256K' ? 'sha256' : hashOf(alg))
        .update(data)
        .digest();
      const sig = Buffer.from((await c.sign(alg, d)).result);
      assert.equal(sig.length, len, alg);
      assert.equal((await c.verify(alg, d, sig)).result, true);
      // Randomized like Key Vault's: a second signature of the same digest differs (and verifies).
      const again = Buffer.from((await c.sign(alg, d)).result);
      assert.notDeepEqual(again, sig, `${alg}: a fresh nonce per signature`);
      assert.equal((await c.verify(alg, d, again)).result, true);
      assert.equal((await c.verifyData(alg, data, sig)).result, true);
      const nodeKey = { key: nodePublicKey(key), dsaEncoding: 'ieee-p1363' as const };
      const h = alg === 'ES256K' ? 'sha256' : hashOf(alg);
      assert.equal(verify(h, data, nodeKey, sig), true, `${alg} verifies with node:crypto`);
      assert.equal(verify(h, data, nodeKey, Buffer.from((await c.signData(alg, data)).result)), true);
      // A signature made by node:crypto verifies in the vault.
      const { privateKey, publicKey } = generateKeyPairSync('ec', {
        namedCurve: curve === 'P-256K' ? 'secp256k1' : curve,
      });
      const jwk = privateKey.export({ format: 'jwk' });
      const imported = await client.importKey(`imp-${curve}`, {
        kty: 'EC',
        crv: curve,
        d: Buffer.from(jwk.d!, 'base64url'),
        x: Buffer.from(jwk.x!, 'base64url'),
        y: Buffer.from(jwk.y!, 'base64url'),
      });
      const nodeSig = sign(h, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      assert.equal((await cryptoClient(s, imported, officer).verify(alg, d, nodeSig)).result, true);
      assert.equal(
        verify(
          h,
          data,
          { key: publicKey, dsaEncoding: 'ieee-p1363' },
          Buffer.from((await cryptoClient(s, imported, officer).sign(alg, d)).result),
        ),
        true,
      );
      const bad = Buffer.from(sig);
      bad[len - 1]! ^= 1;
      assert.equal((await c.verify(alg, d, bad)).result, false);
    }
  });

  test('POST /keys/{name}/sign without a version signs with the latest version; its path is still checked', async () => {
    // This route parsed its path with a schema built per request (issue 19: ~85 µs each); now built once.
    const key = await client.getKey('ec-P-256');
    const headers = { authorization: `Bearer ${await vaultToken(s, officer)}` };
    const d = createHash('sha256').update('unversioned').digest();
    for (let i = 0; i < 2; i++) {
      const r = await s.request('POST', `${s.vaultUrl('keysdk')}/keys/ec-P-256/sign?api-version=7.5`, {
        headers,
        json: { alg: 'ES256', value: d.toString('base64url') },
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.kid, key.id, 'the latest version signed');
      const sig = Buffer.from(r.json.value, 'base64url');
      const nodeKey = { key: nodePublicKey(key), dsaEncoding: 'ieee-p1363' as const };
      assert.equal(
        verify('sha256', Buffer.from('unversioned'), nodeKey, sig),
        true,
        'verifies with node:crypto',
      );
    }
    // The digest in standard base64, padded, with '+' and '/' (as some clients send it) signs the same bytes.
    let n = 0;
    const std = (i: number) => createHash('sha256').update(`std-${i}`).digest().toString('base64');
    while (!/\+.*\/|\/.*\+/.test(std(n))) n++;
    assert.match(std(n), /=$/);
    const r = await s.request('POST', `${s.vaultUrl('keysdk')}/keys/ec-P-256/sign?api-version=7.5`, {
      headers,
      json: { alg: 'ES256', value: std(n) },
    });
    assert.equal(r.status, 200, r.text);
    const nodeKey = { key: nodePublicKey(key), dsaEncoding: 'ieee-p1363' as const };
    const stdSig = Buffer.from(r.json.value, 'base64url');
    assert.equal(verify('sha256', Buffer.from(`std-${n}`), nodeKey, stdSig), true, 'standard base64 read');
    // An algorithm that is not one, prototype names included, is 400, for sign and verify alike.
    for (const alg of ['HS256', 'toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      for (const op of ['sign', 'verify']) {
        const bad = await s.request('POST', `${s.vaultUrl('keysdk')}/keys/ec-P-256/${op}?api-version=7.5`, {
          headers,
          json: { alg, value: d.toString('base64url'), digest: d.toString('base64url') },
        });
        assert.equal(bad.status, 400, `${op} ${alg}: ${bad.text}`);
        assert.equal(bad.json.error.code, 'BadParameter');
        assert.match(bad.json.error.message, /is not supported: use RS256/);
      }
    }
    const long = await s.request(
      'POST',
      `${s.vaultUrl('keysdk')}/keys/ec-P-256/${'s'.repeat(21)}?api-version=7.5`,
      {
        headers,
        json: { alg: 'ES256', value: d.toString('base64url') },
      },
    );
    assert.equal(long.status, 400, long.text);
    assert.match(long.text, /Invalid op/);
  });

  test('import an RSA JWK with private parts; its operations match node:crypto', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const j = privateKey.export({ format: 'jwk' });
    const b = (x: string | undefined) => Buffer.from(x!, 'base64url');
    const k = await client.importKey('imported-rsa', {
      kty: 'RSA',
      n: b(j.n),
      e: b(j.e),
      d: b(j.d),
      p: b(j.p),
      q: b(j.q),
      dp: b(j.dp),
      dq: b(j.dq),
      qi: b(j.qi),
      keyOps: ['sign', 'verify', 'decrypt'],
    });
    assert.deepEqual(k.keyOperations, ['decrypt', 'sign', 'verify']);
    assert.equal(Buffer.from(k.key!.n!).toString('base64url'), j.n);
    const data = Buffer.from('imported');
    const ic = cryptoClient(s, k, officer);
    assert.equal(
      (await ic.verify('RS256', digest('RS256', data), sign('sha256', data, privateKey))).result,
      true,
    );
    for (const alg of ['PS256', 'PS384', 'PS512'] as const) {
      const h = hashOf(alg);
      const pss = {
        key: privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: createHash(h).digest().length,
      };
      assert.equal(
        (await ic.verify(alg, digest(alg, data), sign(h, data, pss))).result,
        true,
        `node:crypto ${alg} verifies in the vault`,
      );
    }
    // Public parts that do not belong to the private key are refused.
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    await assert.rejects(
      client.importKey('mismatched', {
        kty: 'RSA',
        n: b(other.n),
        e: b(j.e),
        d: b(j.d),
        p: b(j.p),
        q: b(j.q),
        dp: b(j.dp),
        dq: b(j.dq),
        qi: b(j.qi),
      }),
      status(400, 'BadParameter'),
    );
    await assert.rejects(
      client.importKey('public-only', { kty: 'RSA', n: b(j.n), e: b(j.e) }),
      status(400, 'BadParameter'),
    );
  });

  test('import refuses an RSA public exponent of 1 or an even one (400, nothing made); rotating a key stored with e = 1 is a 400, not a 500', async () => {
    const j = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const b = (x: string | undefined) => Buffer.from(x!, 'base64url');
    const rsaKey = (k: typeof j) => ({
      kty: 'RSA' as const,
      ...{ n: b(k.n), e: b(k.e), d: b(k.d), p: b(k.p), q: b(k.q), dp: b(k.dp), dq: b(k.dq), qi: b(k.qi) },
    });
    // e = 1 with d = dp = dq = 1 is a consistent key whose every operation is the identity:
    // "encryption" leaves the plaintext readable and anyone forges signatures that verify.
    const one = Buffer.of(1);
    const weak = { ...rsaKey(j), e: one, d: one, dp: one, dq: one };
    for (const [name, key] of [
      ['exponent-1', weak],
      ['exponent-2', { ...rsaKey(j), e: Buffer.of(2) }],
    ] as const) {
      await assert.rejects(client.importKey(name, key), (e: RestError) => {
        status(400, 'BadParameter')(e);
        assert.match(e.message, /public exponent \(key\.e\) [12] is not accepted: .*odd integer from 3/);
        return true;
      });
      await assert.rejects(client.getKey(name), status(404, 'KeyNotFound'));
    }
    // 3 is a valid exponent (as for create).
    const three = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).privateKey;
    const k3 = await client.importKey('exponent-3', rsaKey(three.export({ format: 'jwk' })));
    assert.equal(Buffer.from(k3.key!.e!).toString('hex'), '03');
    // A key stored with e = 1 (imported before the check): its rotation says why, as a 400.
    const stored = await client.importKey('exponent-1-stored', rsaKey(j));
    await s.services.db.run(
      'UPDATE key_versions SET public_jwk = $1 WHERE name_lower = $2 AND version = $3',
      [
        JSON.stringify({ kty: 'RSA', n: j.n, e: one.toString('base64url') }),
        'exponent-1-stored',
        stored.properties.version!,
      ],
    );
    const rotate = await s.request(
      'POST',
      `${s.vaultUrl('keysdk')}/keys/exponent-1-stored/rotate?api-version=7.5`,
      {
        headers: { authorization: `Bearer ${await vaultToken(s, officer)}` },
      },
    );
    assert.equal(rotate.status, 400, rotate.text);
    assert.equal(rotate.json.error.code, 'BadParameter');
    assert.match(rotate.json.error.message, /public exponent \(1\) is not a valid one/);
    assert.equal((await client.getKey('exponent-1-stored')).properties.version, stored.properties.version);
  });

  test('list with more than one page; delete (poll), get and list deleted, recover (poll), purge', async () => {
    for (let i = 0; i < 27; i++) await client.createEcKey(`page-${String(i).padStart(2, '0')}`);
    const names: string[] = [];
    let pages = 0;
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 10 })) {
      pages++;
      assert.ok(page.length <= 10, 'page.length <= 10');
      for (const p of page) names.push(p.name);
    }
    assert.ok(pages >= 3, `several pages, got ${pages}`);
    for (let i = 0; i < 27; i++)
      assert.ok(
        names.includes(`page-${String(i).padStart(2, '0')}`),
        "names.includes('page-{String(i).padStart(2, '0')}')",
      );
    assert.equal(new Set(names).size, names.length);
    const all: string[] = [];
    for await (const p of client.listPropertiesOfKeys()) all.push(p.name);
    assert.deepEqual(all.sort(), [...names].sort());

    const k = await client.createRsaKey('to-delete');
    const deleted = await (await client.beginDeleteKey('to-delete', poll)).pollUntilDone();
    assert.equal(deleted.name, 'to-delete');
    assert.ok(
      deleted.properties.recoveryId?.endsWith('/deletedkeys/to-delete'),
      "deleted.properties.recoveryId?.endsWith('/deletedkeys/to-delete')",
    );
    assert.ok(deleted.properties.deletedOn instanceof Date, 'deleted.properties.deletedOn instanceof Date');
    assert.ok(
      deleted.properties.scheduledPurgeDate instanceof Date,
      'deleted.properties.scheduledPurgeDate instanceof Date',
    );
    const got = await client.getDeletedKey('to-delete');
    assert.equal(got.properties.version, k.properties.version);
    const listed: string[] = [];
    for await (const d of client.listDeletedKeys()) listed.push(d.name);
    assert.deepEqual(listed, ['to-delete']);
    await assert.rejects(client.getKey('to-delete'), status(404, 'KeyNotFound'));
    await assert.rejects(client.createRsaKey('to-delete'), status(409, 'Conflict'));
    const recovered = await (await client.beginRecoverDeletedKey('to-delete', poll)).pollUntilDone();
    assert.equal(recovered.properties.version, k.properties.version);
    assert.equal((await client.getKey('to-delete')).properties.version, k.properties.version);
    await (await client.beginDeleteKey('to-delete', poll)).pollUntilDone();
    await client.purgeDeletedKey('to-delete');
    // As Azure: a missing deleted key is KeyNotFound ("Deleted Key not found: …"), for get and recover.
    await assert.rejects(client.getDeletedKey('to-delete'), (e: RestError) => {
      assert.equal(e.statusCode, 404);
      assert.equal(e.code, 'KeyNotFound');
      assert.equal(e.message, 'Deleted Key not found: to-delete');
      return true;
    });
    await assert.rejects(
      client.beginRecoverDeletedKey('never-deleted', poll).then((p) => p.pollUntilDone()),
      status(404, 'KeyNotFound'),
    );
  });

  test('backup, purge, restore: the same versions and key material come back', async () => {
    const a = await client.createRsaKey('backed-up', { tags: { k: 'v' } });
    const b = await client.createRsaKey('backed-up');
    const blob = await client.backupKey('backed-up');
    assert.ok(blob && blob.length > 100, 'blob && blob.length > 100');
    await assert.rejects(client.restoreKeyBackup(blob), status(409, 'Conflict'));
    await (await client.beginDeleteKey('backed-up', poll)).pollUntilDone();
    await client.purgeDeletedKey('backed-up');
    const restored = await client.restoreKeyBackup(blob);
    assert.equal(restored.properties.version, b.properties.version);
    assert.deepEqual(Buffer.from(restored.key!.n!), Buffer.from(b.key!.n!));
    const old = await client.getKey('backed-up', { version: a.properties.version! });
    assert.deepEqual(old.properties.tags, { k: 'v' });
    const d = digest('RS256', Buffer.from('x'));
    const sig = (await cryptoClient(s, old, officer).sign('RS256', d)).result;
    assert.equal(verify('sha256', Buffer.from('x'), nodePublicKey(a), Buffer.from(sig)), true);
    for (const bad of [Buffer.from(blob).subarray(0, 40), Buffer.alloc(4728)])
      await assert.rejects(client.restoreKeyBackup(bad), (e: RestError) => {
        assert.equal(e.statusCode, 400);
        assert.equal(e.code, 'BadParameter');
        assert.equal(e.message, 'Backup blob contains invalid or corrupt version.');
        return true;
      });
    // An operation Latchkey does not perform is 400, not a 404 the SDK would read as "no such key".
    await assert.rejects(client.releaseKey('backed-up', 'attestation'), status(400, 'BadParameter'));
    await assert.rejects(
      client.releaseKey('backed-up', 'attestation', { version: b.properties.version! }),
      status(400, 'BadParameter'),
    );
    await assert.rejects(client.getKeyAttestation('backed-up'), status(400, 'BadParameter'));
    await assert.rejects(
      client.getKeyAttestation('backed-up', { version: b.properties.version! }),
      status(400, 'BadParameter'),
    );
  });

  test('rotate, rotation policy get/set, random bytes', async () => {
    const k = await client.createEcKey('rotating', { curve: 'P-384', tags: { app: 'x' } });
    const def = await client.getKeyRotationPolicy('rotating');
    assert.deepEqual(def.lifetimeActions, [
      { action: 'Notify', timeBeforeExpiry: 'P30D', timeAfterCreate: undefined },
    ]);
    const set = await client.updateKeyRotationPolicy('rotating', {
      lifetimeActions: [
        { action: 'Rotate', timeAfterCreate: 'P30D' },
        { action: 'Notify', timeBeforeExpiry: 'P7D' },
      ],
      expiresIn: 'P90D',
    });
    assert.equal(set.expiresIn, 'P90D');
    assert.ok(
      set.createdOn instanceof Date && set.updatedOn instanceof Date,
      'set.createdOn instanceof Date && set.updatedOn instanceof Date',
    );
    assert.equal(set.id, `${s.vaultUrl('keysdk')}/keys/rotating/rotationpolicy`);
    assert.deepEqual((await client.getKeyRotationPolicy('rotating')).lifetimeActions, set.lifetimeActions);
    await assert.rejects(
      client.updateKeyRotationPolicy('rotating', {
        lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P1D' }],
      }),
      status(400, 'BadParameter'),
    );
    await assert.rejects(
      client.updateKeyRotationPolicy('rotating', { expiresIn: 'ninety days' }),
      status(400, 'BadParameter'),
    );

    const r = await client.rotateKey('rotating');
    assert.notEqual(r.properties.version, k.properties.version);
    assert.equal(r.key!.crv, 'P-384');
    assert.deepEqual(r.properties.tags, { app: 'x' });
    assert.ok(r.properties.expiresOn, 'the policy expiryTime gives the new version an expiry');
    const days = (r.properties.expiresOn!.getTime() - r.properties.createdOn!.getTime()) / 86_400_000;
    assert.ok(days >= 89 && days <= 91, `≈90 days, got ${days}`);
    assert.notDeepEqual(Buffer.from(r.key!.x!), Buffer.from(k.key!.x!));
    assert.equal((await client.getKey('rotating')).properties.version, r.properties.version);

    const rnd = await client.getRandomBytes(32);
    assert.equal(rnd.length, 32);
    assert.notDeepEqual(Buffer.from(rnd), Buffer.from(await client.getRandomBytes(32)));
    await assert.rejects(client.getRandomBytes(0), status(400, 'BadParameter'));
    await assert.rejects(client.getRandomBytes(129), status(400, 'BadParameter'));
  });

  test('a crypto operation on a cached key reads no private key material from SQL', async () => {
    const key = await client.createEcKey('cache-hit');
    const c = cryptoClient(s, key, officer);
    const d = digest('ES256', Buffer.from('cached'));
    const db = s.services.db;
    const get = db.get;
    let sealedReads = 0;
    db.get = <T>(sql: string, params?: Parameters<typeof get>[1]) => {
      if (sql.includes('private_sealed')) sealedReads++;
      return get.call(db, sql, params) as Promise<T | undefined>;
    };
    try {
      await c.sign('ES256', d); // the first use reads, unseals and caches the key
      const first = sealedReads;
      assert.equal(first, 1, 'a cache miss reads the sealed key once');
      for (let i = 0; i < 3; i++) await c.sign('ES256', d);
      assert.equal((await c.verify('ES256', d, (await c.sign('ES256', d)).result)).result, true);
      assert.equal(sealedReads, first, 'cache hits read no sealed column');
    } finally {
      db.get = get;
    }
  });

  test('a CryptographyClient built from a key id without a version uses the latest version', async () => {
    await client.createEcKey('by-id');
    const c = client.getCryptographyClient('by-id');
    const d = digest('ES256', Buffer.from('y'));
    const sig = await c.sign('ES256', d);
    assert.equal((await c.verify('ES256', d, sig.result)).result, true);
    const raw = cryptoClient(s, `${s.vaultUrl('keysdk')}/keys/by-id`, officer);
    assert.equal((await raw.verify('ES256', d, sig.result)).result, true);
  });

  test('refusals: wrong algorithm, wrong digest length, key_ops, disabled, expired and not-yet-valid keys', async () => {
    // The SDK checks key_ops and the validity window itself before calling; the raw REST API shows the vault's answers.
    const token = await vaultToken(s, officer);
    const rest = (path: string, json: unknown) =>
      s.request('POST', `${s.vaultUrl('keysdk')}${path}?api-version=7.5`, {
        headers: { authorization: `Bearer ${token}` },
        json,
      });
    const refused = async (
      path: string,
      json: unknown,
      code: number,
      errorCode: string,
      inner?: string,
      message?: RegExp,
    ) => {
      const r = await rest(path, json);
      assert.equal(r.status, code, r.text);
      assert.equal(r.json.error.code, errorCode);
      if (inner) assert.equal(r.json.error.innererror?.code, inner);
      if (message) assert.match(r.json.error.message, message);
    };
    const b64 = (n: number) => randomBytes(n).toString('base64url');
    const rsaKey = await client.createRsaKey('refuse-rsa', { keyOps: ['sign', 'verify', 'encrypt'] });
    const rv = `/keys/refuse-rsa/${rsaKey.properties.version}`;
    const ecKey = await client.getKey('ec-P-256');
    const ev = `/keys/ec-P-256/${ecKey.properties.version}`;
    const rsa = cryptoClient(s, rsaKey, officer);
    const ec = cryptoClient(s, ecKey, officer);
    await assert.rejects(rsa.sign('ES256', randomBytes(32)), status(400, 'BadParameter'));
    await assert.rejects(ec.sign('RS256', randomBytes(32)), status(400, 'BadParameter'));
    await assert.rejects(ec.sign('ES384', randomBytes(48)), status(400, 'BadParameter'));
    await refused(
      `${ev}/decrypt`,
      { alg: 'RSA-OAEP', value: b64(256) },
      403,
      'Forbidden',
      'KeyOperationForbidden',
    );
    await client.updateKeyProperties('ec-P-256', ecKey.properties.version!, { keyOps: ['sign', 'verify'] });
    await refused(
      `${ev}/sign`,
      { alg: 'PS256', value: b64(32) },
      400,
      'BadParameter',
      undefined,
      /not valid for an EC key/,
    );
    await refused(`${rv}/sign`, { alg: 'XS256', value: b64(32) }, 400, 'BadParameter');
    await assert.rejects(rsa.sign('RS256', randomBytes(20)), (e: RestError) => {
      status(400, 'BadParameter')(e);
      assert.match(e.message, /Invalid length of 'value': 20 bytes\. RS256 requires 32 bytes/);
      return true;
    });
    await refused(
      `${rv}/verify`,
      { alg: 'PS512', digest: b64(32), value: b64(256) },
      400,
      'BadParameter',
      undefined,
      /Invalid length of 'digest'/,
    );
    await refused(
      `${rv}/decrypt`,
      { alg: 'RSA-OAEP', value: b64(256) },
      403,
      'Forbidden',
      'KeyOperationForbidden',
      /Operation decrypt is not permitted on this key/,
    );

    await client.updateKeyProperties('refuse-rsa', rsaKey.properties.version!, { enabled: false });
    const disabledClient = cryptoClient(s, rsaKey.id!, officer);
    await assert.rejects(disabledClient.sign('RS256', randomBytes(32)), (e: RestError) => {
      status(403, 'Forbidden')(e);
      assert.match(e.message, /Operation sign is not allowed on a disabled key/);
      assert.equal(e.details?.error?.innerError?.code, 'KeyDisabled');
      return true;
    });
    await refused(
      `${rv}/verify`,
      { alg: 'RS256', digest: b64(32), value: b64(256) },
      403,
      'Forbidden',
      'KeyDisabled',
    );
    await assert.rejects(client.getKey('refuse-rsa'), status(403, 'Forbidden'));

    const expired = await client.createEcKey('expired', { expiresOn: new Date(Date.now() - 3_600_000) });
    const xv = `/keys/expired/${expired.properties.version}`;
    await refused(`${xv}/sign`, { alg: 'ES256', value: b64(32) }, 403, 'Forbidden', 'KeyExpired');
    // Azure lets verify (and decrypt, unwrap) work outside the validity window.
    const v = await rest(`${xv}/verify`, { alg: 'ES256', digest: b64(32), value: b64(64) });
    assert.equal(v.status, 200);
    assert.equal(v.json.value, false);
    const future = await client.createRsaKey('not-yet', { notBefore: new Date(Date.now() + 3_600_000) });
    const fv = `/keys/not-yet/${future.properties.version}`;
    await refused(`${fv}/sign`, { alg: 'RS256', value: b64(32) }, 403, 'Forbidden', 'KeyNotYetValid');
    await refused(`${fv}/encrypt`, { alg: 'RSA-OAEP', value: b64(16) }, 403, 'Forbidden', 'KeyNotYetValid');
    await refused(`${fv}/wrapkey`, { alg: 'RSA-OAEP', value: b64(16) }, 403, 'Forbidden', 'KeyNotYetValid');
    const u = await rest(`${fv}/unwrapkey`, { alg: 'RSA-OAEP', value: b64(256) });
    assert.equal(u.status, 400, 'unwrap is allowed before nbf (this ciphertext just does not decrypt)');
    await assert.rejects(client.getKey('no-such-key'), status(404, 'KeyNotFound'));
    await refused(
      `/keys/no-such-key/${'0'.repeat(32)}/sign`,
      { alg: 'ES256', value: b64(32) },
      404,
      'KeyNotFound',
    );
  });

  test('refusals: callers without the role, per role (RBAC) and per access policy', async () => {
    const vault = await putVault(s, 'keyroles');
    const setup = keyClient(s, 'keyroles', officer);
    await grant(s, officer.id, 'Key Vault Crypto Officer', vault.id);
    const rsa = await setup.createRsaKey('k');
    const d = digest('RS256', Buffer.from('m'));
    const sig = (await cryptoClient(s, rsa, officer).sign('RS256', d)).result;

    const nobody = await vaultPrincipal(s, 'nobody');
    await assert.rejects(keyClient(s, 'keyroles', nobody).getKey('k'), (e: RestError) => {
      status(403, 'Forbidden')(e);
      assert.match(e.message, /Microsoft\.KeyVault\/vaults\/keys\/read/);
      return true;
    });
    await assert.rejects(cryptoClient(s, rsa.id!, nobody).sign('RS256', d), (e: RestError) => {
      status(403, 'Forbidden')(e);
      assert.match(e.message, /not authorized to perform 'Microsoft\.KeyVault\/vaults\/keys\/sign\/action'/);
      return true;
    });

    const reader = await vaultPrincipal(s, 'kv-reader');
    await grant(s, reader.id, 'Key Vault Reader', vault.id);
    const rc = cryptoClient(s, rsa.id!, reader);
    assert.equal(
      (await keyClient(s, 'keyroles', reader).getKey('k')).properties.version,
      rsa.properties.version,
    );
    assert.equal(
      (await rc.verify('RS256', d, sig)).result,
      true,
      'keys/read allows the public-key operations',
    );
    await assert.rejects(rc.sign('RS256', d), status(403, 'Forbidden'));
    await assert.rejects(keyClient(s, 'keyroles', reader).createRsaKey('x'), status(403, 'Forbidden'));
    await assert.rejects(keyClient(s, 'keyroles', reader).getRandomBytes(8), status(403, 'Forbidden'));

    const sealUser = await vaultPrincipal(s, 'kv-seal');
    await grant(s, sealUser.id, 'Key Vault Crypto Service Encryption User', vault.id);
    const sc = cryptoClient(s, rsa.id!, sealUser);
    const wrapped = await sc.wrapKey('RSA-OAEP-256', Buffer.alloc(32, 7));
    assert.deepEqual(
      Buffer.from((await sc.unwrapKey('RSA-OAEP-256', wrapped.result)).result),
      Buffer.alloc(32, 7),
    );
    await assert.rejects(
      sc.decrypt({ algorithm: 'RSA-OAEP', ciphertext: wrapped.result }),
      status(403, 'Forbidden'),
    );

    const user = await vaultPrincipal(s, 'kv-crypto-user');
    await grant(s, user.id, 'Key Vault Crypto User', vault.id);
    const uc = cryptoClient(s, rsa.id!, user);
    assert.equal(
      verify('sha256', Buffer.from('m'), nodePublicKey(rsa), Buffer.from((await uc.sign('RS256', d)).result)),
      true,
    );
    await assert.rejects(keyClient(s, 'keyroles', user).rotateKey('k'), status(403, 'Forbidden'));
    await assert.rejects(keyClient(s, 'keyroles', user).beginDeleteKey('k', poll), status(403, 'Forbidden'));

    // A vault on access policies: keys get+sign only.
    const pv = await putVault(s, 'keypolicy', {
      properties: {
        sku: { family: 'A', name: 'standard' },
        tenantId: s.info.tenantId,
        enableRbacAuthorization: false,
        accessPolicies: [
          { tenantId: s.info.tenantId, objectId: officer.id, permissions: { keys: ['all'] } },
          { tenantId: s.info.tenantId, objectId: user.id, permissions: { keys: ['get', 'sign'] } },
        ],
      },
    });
    assert.ok(pv.id, 'pv.id');
    const pk = await keyClient(s, 'keypolicy', officer).createRsaKey('pk');
    const pc = cryptoClient(s, pk.id!, user);
    assert.equal((await pc.sign('RS256', d)).result.length, 256);
    await assert.rejects(
      pc.decrypt({ algorithm: 'RSA-OAEP', ciphertext: randomBytes(256) }),
      (e: RestError) => {
        status(403, 'Forbidden')(e);
        assert.match(e.message, /does not have keys decrypt permission/);
        return true;
      },
    );
    await assert.rejects(keyClient(s, 'keypolicy', user).createRsaKey('nope'), status(403, 'Forbidden'));
  });

  test('bad input is a 400 and changes nothing; private key parts never appear in responses', async () => {
    const token = await vaultToken(s, officer);
    const call = (method: string, path: string, json?: unknown) =>
      s.request(method, `${s.vaultUrl('keysdk')}${path}?api-version=7.5`, {
        headers: { authorization: `Bearer ${token}` },
        ...(json !== undefined ? { json } : {}),
      });
    for (const body of [
      { kty: 'oct' },
      { kty: 'RSA-HSM' },
      { kty: 'RSA', key_size: 1024 },
      { kty: 'RSA', public_exponent: 4 },
      { kty: 'EC', crv: 'P-192' },
      { kty: 'EC', key_ops: ['encrypt'] },
      { kty: 'RSA', attributes: { exportable: true } },
      { kty: 'RSA', attributes: { nbf: 2000, exp: 1000 } },
      { kty: 7 },
    ]) {
      const r = await call('POST', '/keys/badinput/create', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.code, 'BadParameter');
    }
    assert.equal((await call('GET', '/keys/badinput')).status, 404);
    const r = await call('POST', '/keys/rng-dummy/create', { kty: 'RSA' });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json.key).sort(), ['e', 'key_ops', 'kid', 'kty', 'n']);
    const sign = await call('POST', `/keys/rng-dummy/${r.json.key.kid.split('/').pop()}/sign`, {
      alg: 'RS256',
      value: '!!notbase64',
    });
    assert.equal(sign.status, 400);
    // An unknown operation is 400 BadParameter (a 404 reads as "no such key" to the SDKs).
    const unknown = await call('POST', '/keys/rng-dummy//frobnicate', { alg: 'RS256', value: 'AA' });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.json.error, {
      code: 'BadParameter',
      message: "The key operation 'frobnicate' is not supported.",
    });
  });
});
