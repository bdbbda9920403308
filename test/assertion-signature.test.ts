// The client-assertion signature check through node:crypto (src/authority/client-assertion.ts,
// verifySignature): it must accept exactly what jose's jwtVerify accepted for the allowed
// algorithms, and refuse key-type confusion, short RSA keys, other PSS salt lengths and tampering.
import assert from 'node:assert/strict';
import { constants, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { base64url, decodeJwt, SignJWT } from 'jose';
import { assertionPayload, verifySignature } from '../src/authority/client-assertion.js';
import { isFederatedAssertion } from '../src/authority/federation.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const jwt = (alg: string, key: typeof rsa.privateKey) =>
  new SignJWT({ iss: 'a', jti: 'j' }).setProtectedHeader({ alg }).sign(key);

describe('client assertion signatures (node:crypto)', () => {
  test('jose-signed RS/PS 256-512 and ES256/ES384 verify; a changed payload or signature does not', async () => {
    const cases: [string, typeof rsa][] = [
      ['RS256', rsa],
      ['RS384', rsa],
      ['RS512', rsa],
      ['PS256', rsa],
      ['PS384', rsa],
      ['PS512', rsa],
      ['ES256', p256],
      ['ES384', p384],
    ];
    for (const [alg, pair] of cases) {
      const token = await jwt(alg, pair.privateKey);
      assert.equal(verifySignature(token, alg, pair.publicKey), true, alg);
      const [h, p, s] = token.split('.') as [string, string, string];
      const otherPayload = base64url.encode(JSON.stringify({ iss: 'b', jti: 'j' }));
      assert.equal(
        verifySignature(`${h}.${otherPayload}.${s}`, alg, pair.publicKey),
        false,
        `${alg} payload`,
      );
      const flipped = Buffer.from(s, 'base64url');
      flipped[5]! ^= 1;
      assert.equal(verifySignature(`${h}.${p}.${flipped.toString('base64url')}`, alg, pair.publicKey), false);
      assert.equal(verifySignature(`${h}.${p}.${s}!`, alg, pair.publicKey), false, 'not base64url');
    }
  });

  test('assertionPayload decodes once per assertion text and never answers for another text', () => {
    const h = base64url.encode(JSON.stringify({ alg: 'ES256' }));
    const a = `${h}.${base64url.encode(JSON.stringify({ jti: 'aaaa', iss: 'x' }))}.c2ln`;
    const b = `${h}.${base64url.encode(JSON.stringify({ jti: 'bbbb', iss: 'x' }))}.c2ln`; // same length
    assert.equal(a.length, b.length);
    const pa = assertionPayload(a);
    assert.equal(assertionPayload(a), pa, 'the same text: the remembered payload');
    assert.equal(assertionPayload(b).jti, 'bbbb', 'another text of the same length: its own payload');
    assert.equal(assertionPayload(a).jti, 'aaaa');
    assert.equal(assertionPayload(`${a.slice(0, -1)}m`).jti, 'aaaa', 'another signature, same payload');
    assert.ok(Object.isFrozen(pa), 'shared, so frozen');
    assert.throws(() => assertionPayload(`${h}.W10.c2ln`), /not a JSON object/, 'an array');
    assert.throws(() => assertionPayload(`${h}.e30`), /not a compact JWS/, 'two parts');
    assert.throws(() => assertionPayload(`${h}.e30!.c2ln`), /not base64url/);
  });

  test('assertionPayload accepts and decodes exactly what jose decodeJwt does (isFederatedAssertion peeks with it)', async () => {
    const h = base64url.encode(JSON.stringify({ alg: 'RS256' }));
    const json = JSON.stringify({ iss: 'https://token.actions.githubusercontent.com', sub: 'repo:x' });
    const std = Buffer.from(json).toString('base64'); // padded, so not canonical base64url
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"iss":"b"}')]);
    const payloads = [
      base64url.encode(json),
      std,
      ` ${std.replace(/=+$/, '')}\n`,
      `${base64url.encode(json)}A`, // length 4n+1
      `${base64url.encode('{"iss":"a"}')}=`, // wrong padding
      bom.toString('base64url'),
      Buffer.from('{"iss":"+/"}').toString('base64').replace(/=/g, ''),
      base64url.encode('{"iss":"x","iss":"y"}'),
      base64url.encode('[1]'),
      base64url.encode('null'),
      'e30!',
      '',
    ];
    for (const p of payloads) {
      const jws = `${h}.${p}.c2ln`;
      let expected: unknown;
      try {
        expected = decodeJwt(jws);
      } catch {
        expected = 'throws';
      }
      let actual: unknown;
      try {
        actual = { ...assertionPayload(jws) };
      } catch {
        actual = 'throws';
      }
      assert.deepEqual(actual, expected, `payload segment ${JSON.stringify(p)}`);
    }
    assert.equal(
      await isFederatedAssertion(`${h}.${std}.c2ln`, 'some-client'),
      true,
      'padded, as jose read it',
    );
  });

  test('the key must fit the algorithm: type, curve, RSA size', async () => {
    const es = await jwt('ES256', p256.privateKey);
    assert.equal(verifySignature(es, 'RS256', p256.publicKey), false, 'EC key under an RSA alg');
    assert.equal(verifySignature(es, 'ES384', p256.publicKey), false, 'P-256 key under ES384');
    const rs = await jwt('RS256', rsa.privateKey);
    assert.equal(verifySignature(rs, 'ES256', rsa.publicKey), false, 'RSA key under ES256');
    assert.equal(verifySignature(rs, 'HS256', rsa.publicKey), false, 'HMAC never');
    assert.equal(verifySignature(rs, 'none', rsa.publicKey), false);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const h = base64url.encode(JSON.stringify({ alg: 'RS256' }));
    const p = base64url.encode(JSON.stringify({ a: 1 }));
    const sig = sign('sha256', Buffer.from(`${h}.${p}`), small.privateKey).toString('base64url');
    assert.equal(verifySignature(`${h}.${p}.${sig}`, 'RS256', small.publicKey), false, '1024-bit RSA');
  });

  test('PS256 needs a salt of the digest length (RFC 7518 §3.5)', () => {
    const h = base64url.encode(JSON.stringify({ alg: 'PS256' }));
    const p = base64url.encode(JSON.stringify({ a: 1 }));
    const withSalt = (saltLength: number) =>
      sign('sha256', Buffer.from(`${h}.${p}`), {
        key: rsa.privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength,
      }).toString('base64url');
    assert.equal(verifySignature(`${h}.${p}.${withSalt(32)}`, 'PS256', rsa.publicKey), true);
    assert.equal(verifySignature(`${h}.${p}.${withSalt(0)}`, 'PS256', rsa.publicKey), false);
    assert.equal(
      verifySignature(`${h}.${p}.${withSalt(64)}`, 'PS256', createPublicKey(rsa.privateKey)),
      false,
    );
  });
});
