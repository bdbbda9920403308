import assert from 'node:assert/strict';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
} from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { base64url, decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { findRole } from '../src/access/roles.js';
import { jtiHashOf } from '../src/authority/client-assertion.js';
import { LatchkeyError } from '../src/errors/index.js';
import {
  assertOAuthError,
  type CreatedPrincipal,
  createServicePrincipal,
  secretTokenRequest,
} from './helpers/authority.js';
import { selfSignedEcCert, selfSignedRsaCert } from './helpers/certs.js';
import { startTestApp, type TestServer } from './helpers/server.js';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const enc = (o: unknown) => base64url.encode(JSON.stringify(o));

describe('JWT attacks against the verifier and the management API', () => {
  let s: TestServer;
  let mgmt: string;
  let app: CreatedPrincipal;
  let goodToken: string;
  let issuer: string;
  let kid: string;

  before(async () => {
    // Many deliberate failures from one address: keep the failed-auth throttle out of the way here.
    s = await startTestApp({ limits: { authFailureLimit: 1000, authFailureSlowAfter: 1000 } });
    mgmt = s.info.managementResource;
    issuer = `${s.info.authority}/${s.info.tenantId}/v2.0`;
    app = await createServicePrincipal(s, { displayName: 'victim-app' });
    const r = await secretTokenRequest(s, { appId: app.appId, secret: app.secret! }, `${mgmt}/.default`);
    assert.equal(r.status, 200, r.text);
    goodToken = r.json.access_token;
    kid = decodeProtectedHeader(goodToken).kid!;
  });
  after(async () => {
    await s?.stop();
  });

  /** Valid claims for `app` at the management API, to be spoiled one at a time. */
  const claims = (over: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return {
      aud: mgmt,
      iss: issuer,
      iat: now,
      nbf: now,
      exp: now + 3600,
      sub: app.id,
      oid: app.id,
      tid: s.info.tenantId,
      azp: app.appId,
      appid: app.appId,
      azpacr: '1',
      idtyp: 'app',
      uti: randomUUID(),
      ver: '2.0',
      ...over,
    };
  };
  /** Signs with the authority's real key (white box), so only the claim under test is wrong. */
  const signWithRealKey = async (c: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const key = await s.services.signingKeys.active();
    return new SignJWT(c)
      .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header })
      .sign(key.privateKey);
  };
  const account = (token: string) =>
    s.request('GET', '/api/account', { headers: { authorization: `Bearer ${token}` } });

  /** Refused by the verifier AND by the management API (401, Azure-shaped, WWW-Authenticate). */
  const refused = async (token: string, message?: RegExp) => {
    await assert.rejects(s.services.verifier.verify(token, [mgmt]), (e: unknown) => {
      assert.ok(e instanceof LatchkeyError, 'e instanceof LatchkeyError');
      assert.equal(e.code, 'Unauthorized');
      assert.equal(e.status, 401);
      if (message) assert.match(e.message, message);
      return true;
    });
    const r = await account(token);
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.error.code, 'Unauthorized');
    assert.ok(
      String(r.headers['www-authenticate']).startsWith('Bearer'),
      "String(r.headers['www-authenticate']).startsWith('Bearer')",
    );
    const sig = token.split('.')[2] ?? '';
    if (sig.length >= 16) assert.ok(!r.text.includes(sig), 'the token is not echoed');
  };

  test('control: the genuine token and a forged-with-the-real-key copy are accepted', async () => {
    assert.equal((await account(goodToken)).status, 200);
    const again = await signWithRealKey(claims());
    const v = await s.services.verifier.verify(again, [mgmt]);
    assert.equal(v.oid, app.id);
    assert.equal((await account(again)).status, 200);
  });

  test('alg "none" (unsigned) is refused', async () => {
    const body = enc(claims());
    await refused(`${enc({ alg: 'none', typ: 'JWT', kid })}.${body}.`);
    await refused(`${enc({ alg: 'none', kid })}.${body}.${base64url.encode('x')}`);
  });

  test('HS256 signed with the public key (PEM, JWK, raw) is refused', async () => {
    const jwks = (await s.request('GET', `/${s.info.tenantId}/discovery/v2.0/keys`)).json.keys;
    const jwk = jwks.find((k: { kid: string }) => k.kid === kid);
    const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    }) as string;
    const secrets = [Buffer.from(pem), Buffer.from(JSON.stringify(jwk)), Buffer.from(jwk.x ?? jwk.n)];
    for (const secret of secrets) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const t = await new SignJWT(claims()).setProtectedHeader({ alg, typ: 'JWT', kid }).sign(secret);
        await refused(t);
      }
    }
  });

  test('an unknown kid, a missing kid, and a foreign key under our kid are refused', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await refused(
      await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'not-a-key' }).sign(privateKey),
      /unknown key/,
    );
    await refused(
      await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(privateKey),
      /key id/,
    );
    await refused(await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    await refused(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid }).sign(rsa));
  });

  test('an embedded key (jwk / x5c / jku in the header) is never trusted', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const t = await new SignJWT(claims())
      .setProtectedHeader({
        alg: 'ES256',
        kid,
        jwk: publicKey.export({ format: 'jwk' }) as never,
        jku: 'https://evil.example/keys',
      })
      .sign(privateKey);
    await refused(t);
  });

  test('expired, not yet valid and missing-exp tokens are refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(
      await signWithRealKey(claims({ iat: now - 7200, nbf: now - 7200, exp: now - 600 })),
      /expired/,
    );
    await refused(await signWithRealKey(claims({ nbf: now + 600 })));
    const { exp: _exp, ...noExp } = claims();
    await refused(await signWithRealKey(noExp));
  });

  test('a wrong issuer, and an iss/tid mismatch, are refused', async () => {
    await refused(
      await signWithRealKey(claims({ iss: 'https://login.microsoftonline.com/x/v2.0' })),
      /issuer/,
    );
    await refused(await signWithRealKey(claims({ iss: `https://evil.example/${s.info.tenantId}/v2.0` })));
    const other = randomUUID();
    await refused(await signWithRealKey(claims({ iss: `${s.info.authority}/${other}/v2.0` })), /issuer/);
    await refused(await signWithRealKey(claims({ tid: other })), /issuer/);
    const { tid: _tid, ...noTid } = claims();
    await refused(await signWithRealKey(noTid));
  });

  test('a wrong audience is refused (a vault token at the management API)', async () => {
    await refused(await signWithRealKey(claims({ aud: 'https://evil.example' })));
    const vault = await secretTokenRequest(s, { appId: app.appId, secret: app.secret! });
    assert.equal(vault.status, 200);
    await refused(vault.json.access_token, /aud/);
  });

  test('a tampered payload or header is refused', async () => {
    const [h, , sig] = goodToken.split('.') as [string, string, string];
    const admin = s.services.principals.byUserName(s.info.tenantId, s.admin.userName);
    const adminOid = (await admin)!.principal.id;
    await refused(`${h}.${enc(claims({ oid: adminOid, sub: adminOid }))}.${sig}`);
    await refused(`${enc({ alg: 'ES256', typ: 'JWT', kid, x: 1 })}.${goodToken.split('.')[1]}.${sig}`);
    await refused(`${h}.${goodToken.split('.')[1]}.${sig!.slice(0, -4)}AAAA`);
    await refused('not.a.token');
    await refused('a.b');
    await refused(`${h}.${goodToken.split('.')[1]}.${sig}.extra`);
  });

  test('a token naming a principal of another tenant is refused (oid/tid mismatch)', async () => {
    const t2 = await s.services.tenants.create({ displayName: 'Other', domain: 'other.example' });
    const p2 = await s.services.principals.createServicePrincipal(t2.id, { displayName: 'other-app' });
    // claims say tenant 1 but the oid lives in tenant 2
    const r = await account(await signWithRealKey(claims({ oid: p2.id, sub: p2.id })));
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /no longer exists/);
  });

  describe('tokens of another tenant', () => {
    let t2: { id: string };
    let foreign: CreatedPrincipal;
    let foreignToken: string;

    before(async () => {
      t2 = await s.services.tenants.create({ displayName: 'Tenant Two', domain: 'two.example' });
      const p = await s.services.principals.createServicePrincipal(t2.id, { displayName: 'tenant-two-app' });
      const c = await s.services.credentials.addSecret(t2.id, p.id);
      await s.services.access.create(t2.id, {
        principalId: p.id,
        role: findRole('Owner')!,
        scope: '/',
        createdBy: 'test',
      });
      foreign = { id: p.id, appId: p.appId!, secret: c.secretText };
      const r = await secretTokenRequest(
        s,
        { appId: foreign.appId, secret: foreign.secret! },
        `${mgmt}/.default`,
        t2.id,
      );
      assert.equal(r.status, 200, r.text);
      foreignToken = r.json.access_token;
    });

    test('the other tenant’s app cannot authenticate in the first tenant', async () => {
      const r = await secretTokenRequest(
        s,
        { appId: foreign.appId, secret: foreign.secret! },
        `${mgmt}/.default`,
        s.info.tenantId,
      );
      assertOAuthError(r, 400, 'unauthorized_client');
    });

    test('its token is valid for its own tenant only and sees none of the first tenant’s resources', async () => {
      const me = await account(foreignToken);
      assert.equal(me.status, 200);
      assert.equal(me.json.tenantId, t2.id);
      const list = await s.request('GET', '/api/directory/servicePrincipals', {
        headers: { authorization: `Bearer ${foreignToken}` },
      });
      assert.equal(list.status, 200);
      const ids = list.json.value.map((x: { id: string }) => x.id);
      assert.ok(!ids.includes(app.id), '!ids.includes(app.id)');
      const show = await s.request('GET', `/api/directory/servicePrincipals/${app.id}`, {
        headers: { authorization: `Bearer ${foreignToken}` },
      });
      assert.equal(show.status, 404);
      const del = await s.request('DELETE', `/api/directory/servicePrincipals/${app.id}`, {
        headers: { authorization: `Bearer ${foreignToken}` },
      });
      assert.equal(del.status, 404);
      const disable = await s.request('PATCH', `/api/directory/servicePrincipals/${app.appId}`, {
        headers: { authorization: `Bearer ${foreignToken}` },
        json: { accountEnabled: false },
      });
      assert.equal(disable.status, 404);
      assert.equal((await s.services.principals.get(s.info.tenantId, app.id))!.enabled, true);
    });

    test('re-labelling its token with the first tenant (iss + tid) is refused', async () => {
      const forged = await signWithRealKey(
        claims({ oid: foreign.id, sub: foreign.id, azp: foreign.appId, appid: foreign.appId }),
      );
      await assert.doesNotReject(s.services.verifier.verify(forged, [mgmt]));
      const r = await account(forged);
      assert.equal(r.status, 401);
      // and without the real key, swapping claims breaks the signature
      const [h, , sig] = foreignToken.split('.') as [string, string, string];
      const payload = JSON.parse(Buffer.from(foreignToken.split('.')[1]!, 'base64url').toString());
      await refused(`${h}.${enc({ ...payload, tid: s.info.tenantId, iss: issuer })}.${sig}`);
    });
  });

  test('disabling a principal refuses its still-valid token at once; re-enabling restores it', async () => {
    const p = await createServicePrincipal(s, { displayName: 'to-disable' });
    const tok = (await secretTokenRequest(s, { appId: p.appId, secret: p.secret! }, `${mgmt}/.default`)).json
      .access_token;
    assert.equal((await account(tok)).status, 200);
    const admin = await s.adminToken();
    const off = await s.request('PATCH', `/api/directory/servicePrincipals/${p.id}`, {
      headers: { authorization: `Bearer ${admin}` },
      json: { accountEnabled: false },
    });
    assert.equal(off.status, 200, off.text);
    const r = await account(tok);
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /disabled/);
    // and no new token
    const again = await secretTokenRequest(s, { appId: p.appId, secret: p.secret! }, `${mgmt}/.default`);
    assertOAuthError(again, 400, 'unauthorized_client');
    const on = await s.request('PATCH', `/api/directory/servicePrincipals/${p.id}`, {
      headers: { authorization: `Bearer ${admin}` },
      json: { accountEnabled: true },
    });
    assert.equal(on.status, 200);
    assert.equal((await account(tok)).status, 200);
  });

  test('deleting a principal refuses its still-valid token at once', async () => {
    const p = await createServicePrincipal(s, { displayName: 'to-delete' });
    const tok = (await secretTokenRequest(s, { appId: p.appId, secret: p.secret! }, `${mgmt}/.default`)).json
      .access_token;
    assert.equal((await account(tok)).status, 200);
    const del = await s.request('DELETE', `/api/directory/servicePrincipals/${p.id}`, {
      headers: { authorization: `Bearer ${await s.adminToken()}` },
    });
    assert.equal(del.status, 204);
    const r = await account(tok);
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /no longer exists/);
    assertOAuthError(
      await secretTokenRequest(s, { appId: p.appId, secret: p.secret! }, `${mgmt}/.default`),
      400,
      'unauthorized_client',
    );
  });

  describe('client assertions at the token endpoint', () => {
    let certApp: CreatedPrincipal;
    let cert: Awaited<ReturnType<typeof selfSignedRsaCert>>;
    const tokenUrl = () => `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/token`;

    before(async () => {
      cert = await selfSignedRsaCert('assertion-client');
      certApp = await createServicePrincipal(s, {
        displayName: 'assertion-client',
        credential: { type: 'AsymmetricX509Cert', certificate: cert.certPem },
      });
    });

    const assertion = async (
      over: { header?: Record<string, unknown>; claims?: Record<string, unknown>; alg?: string } = {},
    ) => {
      const now = Math.floor(Date.now() / 1000);
      const alg = over.alg ?? 'PS256';
      return new SignJWT({
        aud: tokenUrl(),
        iss: certApp.appId,
        sub: certApp.appId,
        jti: randomUUID(),
        nbf: now,
        iat: now,
        exp: now + 600,
        ...over.claims,
      })
        .setProtectedHeader({ alg, typ: 'JWT', 'x5t#S256': cert.x5tS256, ...over.header })
        .sign(createPrivateKey(cert.keyPem));
    };
    const send = (jwt: string, scope = `${s.info.vaultResource}/.default`) =>
      s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: certApp.appId,
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: jwt,
          scope,
        },
      });
    const usedCount = async () =>
      (await s.services.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM used_assertions'))!.n;

    test('PS256 with x5t#S256 and legacy RS256 with x5t are accepted', async () => {
      const ps = await send(await assertion());
      assert.equal(ps.status, 200, ps.text);
      const rs = await send(
        await assertion({ alg: 'RS256', header: { 'x5t#S256': undefined, x5t: cert.x5t } }),
      );
      assert.equal(rs.status, 200, rs.text);
      // MSAL Python (the Azure CLI) pads its x5t with '=', and Entra ID accepts that.
      const padded = await send(
        await assertion({ alg: 'RS256', header: { 'x5t#S256': undefined, x5t: `${cert.x5t}=` } }),
      );
      assert.equal(padded.status, 200, padded.text);
      const wrongPadded = await send(
        await assertion({ header: { 'x5t#S256': `${(await selfSignedRsaCert('other')).x5tS256}=` } }),
      );
      assert.equal(wrongPadded.status, 401, wrongPadded.text);
    });

    test('a replayed assertion is refused (same resource), and nothing else is recorded', async () => {
      const jwt = await assertion();
      assert.equal((await send(jwt)).status, 200);
      const before = await usedCount();
      const replay = await send(jwt);
      assertOAuthError(replay, 401, 'invalid_client');
      assert.deepEqual(replay.json.error_codes, [700027]);
      assert.match(replay.json.error_description, /replayed/);
      assert.equal(await usedCount(), before);
      // MSAL resends one assertion for several resources within its 10 minutes: once per resource is allowed
      const mgmtScope = `${s.info.managementResource}/.default`;
      assert.equal((await send(jwt, mgmtScope)).status, 200);
      assertOAuthError(await send(jwt, mgmtScope), 401, 'invalid_client');
      assertOAuthError(await send(jwt), 401, 'invalid_client');
      // …but once per resource, not per spelling of it: the vault with its port is the vault.
      // Before, each alias (the vault's, the directory's base URLs) took the assertion once more.
      const aliases = s.services.vaultAudiences().filter((a) => a !== s.info.vaultResource);
      assert.ok(aliases.length > 0, 'the vault answers to a second audience (with its port)');
      for (const alias of aliases)
        assertOAuthError(await send(jwt, `${alias}/.default`), 401, 'invalid_client');
      const other = await assertion();
      assert.equal((await send(other, `${aliases[0]}/.default`)).status, 200);
      assertOAuthError(await send(other), 401, 'invalid_client');
    });

    test('a spent assertion is known by its jti and its exp: a new one that reuses the jti is accepted, each is accepted once', async () => {
      // Migration 0022 keys spent assertions by (expires_at, jti_hash). A captured assertion cannot
      // change its exp (the signature covers it), so its every replay has the key of its first use;
      // an assertion with the same jti and another exp is one only the certificate's key holder
      // can sign.
      const jti = randomUUID();
      const now = Math.floor(Date.now() / 1000);
      const first = await assertion({ claims: { jti, exp: now + 600 } });
      assert.equal((await send(first)).status, 200);
      assertOAuthError(await send(first), 401, 'invalid_client');
      const resigned = await assertion({ claims: { jti, exp: now + 601 } });
      assert.equal((await send(resigned)).status, 200);
      assertOAuthError(await send(resigned), 401, 'invalid_client');
      assertOAuthError(await send(first), 401, 'invalid_client');
    });

    test('an exp with a fraction of a second is remembered to the ms above it, and its replay is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jti = randomUUID();
      const jwt = await assertion({ claims: { jti, exp: now + 600.25 } });
      assert.equal((await send(jwt)).status, 200);
      assertOAuthError(await send(jwt), 401, 'invalid_client');
      const row = await s.services.db.get<{ expires_at: number }>(
        'SELECT expires_at FROM used_assertions WHERE jti_hash = $1',
        [jtiHashOf(certApp.appId, jti, s.info.vaultResource)],
      );
      assert.equal(Number(row?.expires_at), (now + 900) * 1000 + 250);
    });

    test('the same assertion sent N times at once is accepted exactly once (group-committed jti)', async () => {
      const jwt = await assertion();
      const before = await usedCount();
      const rs = await Promise.all(Array.from({ length: 12 }, () => send(jwt)));
      const statuses = rs.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, ...Array.from({ length: 11 }, () => 401)], statuses.join(','));
      for (const r of rs.filter((x) => x.status === 401)) assert.match(r.json.error_description, /replayed/);
      assert.equal(await usedCount(), before + 1);
    });

    test('an ES256 assertion changed in any byte is refused: each signature byte, each header and payload character', async () => {
      // As the bench sends its ES256 ones (bench/client-assertions.ts): x5t#S256, r||s. Checked through the
      // verifier itself (no throttle in the way of ~500 refusals), then the intact one over HTTP.
      const ec = await selfSignedEcCert('es256-client');
      const ecApp = await createServicePrincipal(s, {
        displayName: 'es256-client',
        credential: { type: 'AsymmetricX509Cert', certificate: ec.certPem },
      });
      const now = Math.floor(Date.now() / 1000);
      const input = `${enc({ alg: 'ES256', typ: 'JWT', 'x5t#S256': ec.x5tS256 })}.${enc({ aud: tokenUrl(), iss: ecApp.appId, sub: ecApp.appId, iat: now, nbf: now, exp: now + 600, jti: randomUUID() })}`;
      const sig = sign('sha256', Buffer.from(input), {
        key: createPrivateKey(ec.keyPem),
        dsaEncoding: 'ieee-p1363',
      });
      const verify = (assertion: string) =>
        s.services.assertions.verify({
          assertion,
          principalId: ecApp.id,
          clientId: ecApp.appId,
          audiences: [tokenUrl()],
        });
      await verify(`${input}.${sig.toString('base64url')}`); // the intact one passes
      const before = await usedCount();
      const refused = async (assertion: string, what: string) =>
        assert.rejects(
          verify(assertion),
          (e: unknown) => e instanceof LatchkeyError && e.code === 'invalid_client',
          what,
        );
      assert.equal(sig.length, 64);
      for (let i = 0; i < sig.length; i++) {
        for (const bit of [0x01, 0x80]) {
          const bad = Buffer.from(sig);
          bad[i]! ^= bit;
          await refused(`${input}.${bad.toString('base64url')}`, `signature byte ${i} ^ ${bit}`);
        }
      }
      const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      for (let i = 0; i < input.length; i++) {
        if (input[i] === '.') continue;
        const other = b64[(b64.indexOf(input[i]!) + 1) % 64]!;
        const changed = `${input.slice(0, i)}${other}${input.slice(i + 1)}`;
        await refused(`${changed}.${sig.toString('base64url')}`, `character ${i} of header.payload`);
      }
      await refused(`${input}.${sig.subarray(0, 63).toString('base64url')}`, 'a short signature');
      await refused(`${input}.${Buffer.concat([sig, Buffer.from([0])]).toString('base64url')}`, 'a long one');
      await refused(`${input}.`, 'no signature');
      assert.equal(await usedCount(), before, 'no refused assertion recorded a jti');
      const ok = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: ecApp.appId,
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: `${input}.${sig.toString('base64url')}`,
          scope: `${s.info.vaultResource}/.default`,
        },
      });
      assert.equal(ok.status, 200, ok.text);
    });

    test('disabling the principal or removing its certificate refuses the very next assertion', async () => {
      const c2 = await selfSignedRsaCert('revoked-client');
      const app2 = await createServicePrincipal(s, {
        displayName: 'revoked-client',
        credential: { type: 'AsymmetricX509Cert', certificate: c2.certPem },
      });
      const admin = { authorization: `Bearer ${await s.adminToken()}` };
      const sendFor = async () => {
        const now = Math.floor(Date.now() / 1000);
        const jwt = await new SignJWT({
          aud: tokenUrl(),
          iss: app2.appId,
          sub: app2.appId,
          jti: randomUUID(),
          exp: now + 600,
        })
          .setProtectedHeader({ alg: 'PS256', 'x5t#S256': c2.x5tS256 })
          .sign(createPrivateKey(c2.keyPem));
        return s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
          form: {
            grant_type: 'client_credentials',
            client_id: app2.appId,
            client_assertion_type: ASSERTION_TYPE,
            client_assertion: jwt,
            scope: `${s.info.vaultResource}/.default`,
          },
        });
      };
      assert.equal((await sendFor()).status, 200, 'accepted (and its key and lookups warm)');
      const off = await s.request('PATCH', `/api/directory/servicePrincipals/${app2.id}`, {
        headers: admin,
        json: { accountEnabled: false },
      });
      assert.equal(off.status, 200, off.text);
      const refused = await sendFor();
      assert.equal(refused.json.error, 'unauthorized_client', refused.text);
      assert.match(refused.json.error_description, /disabled/);
      const on = await s.request('PATCH', `/api/directory/servicePrincipals/${app2.id}`, {
        headers: admin,
        json: { accountEnabled: true },
      });
      assert.equal(on.status, 200, on.text);
      assert.equal((await sendFor()).status, 200, 'enabled again');
      const del = await s.request(
        'DELETE',
        `/api/directory/servicePrincipals/${app2.id}/credentials/${app2.keyId}`,
        {
          headers: admin,
        },
      );
      assert.equal(del.status, 204, del.text);
      const gone = await sendFor();
      assertOAuthError(gone, 401, 'invalid_client');
      assert.match(gone.json.error_description, /not registered/);
    });

    test('a decoded header answers only for its exact text: same-length thumbprints, crit, non-canonical base64url', async () => {
      // The verifier remembers decoded headers by their text (client-assertion.ts, headerOf).
      const other = await selfSignedRsaCert('header-cache-other'); // not registered for certApp
      const now = Math.floor(Date.now() / 1000);
      const signed = (headerText: string) => {
        const input = `${headerText}.${enc({ aud: tokenUrl(), iss: certApp.appId, sub: certApp.appId, jti: randomUUID(), exp: now + 600 })}`;
        return `${input}.${sign('sha256', Buffer.from(input), createPrivateKey(cert.keyPem)).toString('base64url')}`;
      };
      const verify = (headerText: string) =>
        s.services.assertions.verify({
          assertion: signed(headerText),
          principalId: certApp.id,
          clientId: certApp.appId,
          audiences: [tokenUrl()],
        });
      const refused = (headerText: string, message: RegExp, what: string) =>
        assert.rejects(
          verify(headerText),
          (e: unknown) =>
            e instanceof LatchkeyError && e.code === 'invalid_client' && message.test(e.message),
          what,
        );
      const registered = enc({ alg: 'RS256', typ: 'JWT', 'x5t#S256': cert.x5tS256 });
      const unregistered = enc({ alg: 'RS256', typ: 'JWT', 'x5t#S256': other.x5tS256 });
      assert.equal(registered.length, unregistered.length);
      await refused(unregistered, /not registered/, 'another certificate');
      await verify(registered); // after a header of the same length was decoded
      await refused(unregistered, /not registered/, 'another certificate, again');
      await verify(registered);
      const crit = enc({ alg: 'RS256', typ: 'JWT', 'x5t#S256': cert.x5tS256, crit: ['exp'] });
      await refused(crit, /critical/, 'crit');
      // Decodes to the registered header's JSON (whitespace is skipped), but is not canonical
      // base64url, so the signature check refuses it.
      await refused(` ${registered}`, /not valid/, 'a space before the header');
      await verify(registered);
    });

    test('a used jti is stored as SHA-256 of client id, jti and lowercased resource, as earlier versions stored it', async () => {
      // A replay across an upgrade is found only if the stored key is computed the same way.
      const jti = randomUUID();
      const jwt = await assertion({ claims: { jti } });
      const checked = await s.services.assertions.verify({
        assertion: jwt,
        principalId: certApp.id,
        clientId: certApp.appId,
        audiences: [tokenUrl()],
      });
      await checked.consume('https://Vault.Example/Mixed');
      const expected = createHash('sha256')
        .update(`${certApp.appId}\n${jti}\nhttps://vault.example/mixed`)
        .digest('base64url');
      const row = await s.services.db.get<{ n: number }>(
        'SELECT COUNT(*) AS n FROM used_assertions WHERE jti_hash = $1',
        [expected],
      );
      assert.equal(row?.n, 1);
      // and with it, its exp plus the 300 s tolerance in ms, as earlier versions stored it
      const exp = Number(decodeJwt(jwt).exp);
      assert.deepEqual(
        (
          await s.services.db.all('SELECT expires_at FROM used_assertions WHERE jti_hash = $1', [expected])
        ).map((r) => Number((r as { expires_at: number }).expires_at)),
        [(exp + 300) * 1000],
      );
    });

    test('bad assertions are refused: alg none/HS256, wrong aud, iss, sub, expired, too long, no jti, unknown cert', async () => {
      const now = Math.floor(Date.now() / 1000);
      const pub = createPublicKey(createPrivateKey(cert.keyPem)).export({ type: 'spki', format: 'pem' });
      const before = await usedCount();
      const bad = [
        `${enc({ alg: 'none', 'x5t#S256': cert.x5tS256 })}.${enc({ aud: tokenUrl(), iss: certApp.appId, sub: certApp.appId, jti: 'x', exp: now + 60 })}.`,
        await new SignJWT({
          aud: tokenUrl(),
          iss: certApp.appId,
          sub: certApp.appId,
          jti: randomUUID(),
          exp: now + 60,
        })
          .setProtectedHeader({ alg: 'HS256', 'x5t#S256': cert.x5tS256 })
          .sign(Buffer.from(pub as string)),
        await assertion({ claims: { aud: 'https://evil.example/token' } }),
        await assertion({ claims: { aud: `${s.info.authority}/${randomUUID()}/oauth2/v2.0/token` } }),
        await assertion({ claims: { iss: randomUUID() } }),
        await assertion({ claims: { sub: randomUUID() } }),
        await assertion({ claims: { iat: now - 7200, nbf: now - 7200, exp: now - 3600 } }),
        await assertion({ claims: { exp: now + 86_400 } }),
        await assertion({ claims: { nbf: now + 3000 } }),
        await assertion({ claims: { exp: String(now + 600) } }),
        await assertion({ claims: { aud: [`${tokenUrl()}x`] } }),
        await assertion({ claims: { jti: undefined } }),
        await assertion({ header: { 'x5t#S256': (await selfSignedRsaCert('other')).x5tS256 } }),
        await assertion({ header: { 'x5t#S256': undefined } }),
        'a.b.c',
        'garbage',
      ];
      for (const jwt of bad) {
        const r = await send(jwt);
        assert.ok(r.status === 401 || r.status === 400, `${r.status} ${r.text}`);
        assertOAuthError(r, r.status, r.status === 401 ? 'invalid_client' : 'invalid_request');
      }
      assert.equal(await usedCount(), before);
    });
  });
});
