import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClientCertificateCredential, ClientSecretCredential } from '@azure/identity';
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import {
  captureTokenRequests,
  createServicePrincipal,
  credentialOptions,
  localJwks,
} from './helpers/authority.js';
import { selfSignedRsaCert, type TestCertificate } from './helpers/certs.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('authority with the official @azure/identity credentials', () => {
  let s: TestServer;
  let jwks: JWTVerifyGetKey;
  let issuer: string;

  before(async () => {
    s = await startTestServer();
    jwks = await localJwks(s);
    issuer = `${s.info.authority}/${s.info.tenantId}/v2.0`;
  });
  after(async () => {
    await s?.stop();
  });

  /** Verifies an access token against the published JWKS and checks the Entra-shaped app claims. */
  const verifyAppToken = async (
    token: string,
    audience: string,
    app: { id: string; appId: string },
  ): Promise<JWTPayload> => {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience });
    assert.equal(protectedHeader.typ, 'JWT');
    assert.ok(typeof protectedHeader.kid === 'string', "typeof protectedHeader.kid === 'string'");
    assert.equal(payload.iss, issuer);
    assert.equal(payload.aud, audience);
    assert.equal(payload.tid, s.info.tenantId);
    assert.equal(payload.oid, app.id);
    assert.equal(payload.sub, app.id);
    assert.equal(payload.azp, app.appId);
    assert.equal(payload.appid, app.appId);
    assert.equal(payload.idtyp, 'app');
    assert.equal(payload.ver, '2.0');
    assert.ok(
      typeof payload.uti === 'string' && payload.uti.length > 0,
      "typeof payload.uti === 'string' && payload.uti.length > 0",
    );
    const lifetime = payload.exp! - payload.iat!;
    assert.ok(lifetime >= 3600 && lifetime <= 5400, `lifetime ${lifetime}s`);
    assert.equal(payload.nbf, payload.iat);
    assert.ok(
      Math.abs(payload.iat! - Date.now() / 1000) < 120,
      'Math.abs(payload.iat! - Date.now() / 1000) < 120',
    );
    return payload;
  };

  test('ClientSecretCredential gets tokens for the vault and the management API', async () => {
    const app = await createServicePrincipal(s, { displayName: 'sdk-secret' });
    const cred = new ClientSecretCredential(s.info.tenantId, app.appId, app.secret!, credentialOptions(s));
    const vault = await cred.getToken(`${s.info.vaultResource}/.default`);
    assert.ok(
      vault.expiresOnTimestamp > Date.now() + 3000_000,
      'vault.expiresOnTimestamp > Date.now() + 3000_000',
    );
    const claims = await verifyAppToken(vault.token, s.info.vaultResource, app);
    assert.equal(claims.azpacr, '1');
    const mgmt = await cred.getToken(`${s.info.managementResource}/.default`);
    await verifyAppToken(mgmt.token, s.info.managementResource, app);
    // the token works at the management API
    const me = await s.request('GET', '/api/account', { headers: { authorization: `Bearer ${mgmt.token}` } });
    assert.equal(me.status, 200);
    assert.equal(me.json.objectId, app.id);
  });

  test('the tenant may be named by its domain (latchkey.localhost)', async () => {
    const app = await createServicePrincipal(s, { displayName: 'sdk-domain' });
    const cred = new ClientSecretCredential(
      s.info.tenantDomain,
      app.appId,
      app.secret!,
      credentialOptions(s),
    );
    assert.equal(s.info.tenantDomain, 'latchkey.localhost');
    const t = await cred.getToken(`${s.info.vaultResource}/.default`);
    const claims = await verifyAppToken(t.token, s.info.vaultResource, app);
    assert.equal(claims.tid, s.info.tenantId);
  });

  test('a wrong secret fails with invalid_client (AADSTS7000215)', async () => {
    const app = await createServicePrincipal(s, { displayName: 'sdk-wrong' });
    const cred = new ClientSecretCredential(
      s.info.tenantId,
      app.appId,
      'lks~not-the-secret',
      credentialOptions(s),
    );
    await assert.rejects(cred.getToken(`${s.info.vaultResource}/.default`), (e: Error) => {
      // MSAL's ServerError surfaces as AuthenticationRequiredError in @azure/identity 4.x (as with Entra)
      assert.match(e.name, /^Authentication(Required)?Error$/);
      assert.match(e.message, /invalid_client/);
      assert.match(e.message, /7000215/);
      return true;
    });
  });

  describe('ClientCertificateCredential', () => {
    let cert: TestCertificate;
    let app: { id: string; appId: string };

    before(async () => {
      cert = await selfSignedRsaCert('sdk-cert');
      app = await createServicePrincipal(s, {
        displayName: 'sdk-cert',
        credential: { type: 'AsymmetricX509Cert', certificate: cert.certPem },
      });
    });

    test('PEM in memory: tokens for two resources, assertion is PS256 with x5t#S256', async () => {
      const capture = captureTokenRequests();
      const cred = new ClientCertificateCredential(
        s.info.tenantId,
        app.appId,
        { certificate: cert.combinedPem },
        credentialOptions(s, { additionalPolicies: [{ policy: capture.policy, position: 'perCall' }] }),
      );
      const vault = await cred.getToken(`${s.info.vaultResource}/.default`);
      const claims = await verifyAppToken(vault.token, s.info.vaultResource, app);
      assert.equal(claims.azpacr, '2');
      // MSAL reuses its signed assertion for ten minutes: a second resource must still work
      const mgmt = await cred.getToken(`${s.info.managementResource}/.default`);
      await verifyAppToken(mgmt.token, s.info.managementResource, app);

      assert.equal(capture.forms.length, 2);
      const form = capture.forms[0]!;
      assert.equal(form.get('grant_type'), 'client_credentials');
      assert.equal(form.get('client_id'), app.appId);
      assert.equal(
        form.get('client_assertion_type'),
        'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      );
      assert.equal(form.get('client_secret'), null);
      const assertion = form.get('client_assertion')!;
      const header = decodeProtectedHeader(assertion);
      assert.equal(header.alg, 'PS256');
      assert.equal(header['x5t#S256'], cert.x5tS256);
      assert.equal(header.x5c, undefined);
      const body = decodeJwt(assertion);
      assert.equal(body.iss, app.appId);
      assert.equal(body.sub, app.appId);
      assert.equal(body.aud, `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/token`);
      assert.ok(typeof body.jti === 'string', "typeof body.jti === 'string'");
      assert.equal(capture.forms[1]!.get('client_assertion'), assertion, 'MSAL resent the same assertion');
    });

    test('certificatePath with sendCertificateChain sends x5c', async () => {
      const path = join(s.dataDir, 'client-cert.pem');
      writeFileSync(path, cert.combinedPem, { mode: 0o600 });
      const capture = captureTokenRequests();
      const cred = new ClientCertificateCredential(
        s.info.tenantId,
        app.appId,
        path,
        credentialOptions(s, {
          sendCertificateChain: true,
          additionalPolicies: [{ policy: capture.policy, position: 'perCall' }],
        }),
      );
      const t = await cred.getToken(`${s.info.vaultResource}/.default`);
      await verifyAppToken(t.token, s.info.vaultResource, app);
      const header = decodeProtectedHeader(capture.forms[0]!.get('client_assertion')!);
      assert.equal(header.alg, 'PS256');
      assert.deepEqual(header.x5c, [cert.der.toString('base64')]);
    });

    test('an unregistered certificate is refused', async () => {
      const other = await selfSignedRsaCert('not-registered');
      const cred = new ClientCertificateCredential(
        s.info.tenantId,
        app.appId,
        { certificate: other.combinedPem },
        credentialOptions(s),
      );
      await assert.rejects(cred.getToken(`${s.info.vaultResource}/.default`), (e: Error) => {
        assert.match(e.name, /^Authentication(Required)?Error$/);
        assert.match(e.message, /700027/);
        return true;
      });
    });
  });

  test('OIDC discovery by tenant id and by domain', async () => {
    for (const seg of [s.info.tenantId, 'latchkey.localhost', 'LATCHKEY.localhost']) {
      const r = await s.request('GET', `/${seg}/v2.0/.well-known/openid-configuration`);
      assert.equal(r.status, 200, seg);
      const d = r.json;
      assert.equal(d.issuer, issuer);
      assert.equal(new URL(d.issuer).origin, new URL(s.info.authority).origin);
      assert.equal(d.token_endpoint, `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/token`);
      assert.equal(d.jwks_uri, `${s.info.authority}/${s.info.tenantId}/discovery/v2.0/keys`);
      assert.equal(d.authorization_endpoint, `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/authorize`);
      assert.ok(
        d.token_endpoint_auth_methods_supported.includes('private_key_jwt'),
        "d.token_endpoint_auth_methods_supported.includes('private_key_jwt')",
      );
      assert.ok(
        d.token_endpoint_auth_methods_supported.includes('client_secret_post'),
        "d.token_endpoint_auth_methods_supported.includes('client_secret_post')",
      );
      assert.deepEqual(d.id_token_signing_alg_values_supported, [s.services.config.token.signingAlg]);
      assert.ok(
        d.grant_types_supported.includes('client_credentials'),
        "d.grant_types_supported.includes('client_credentials')",
      );
      assert.equal(d.cloud_instance_name, 'localhost');
    }
    const v1 = await s.request('GET', `/${s.info.tenantId}/.well-known/openid-configuration`);
    assert.equal(v1.status, 200);
    const missing = await s.request('GET', '/nope.example/v2.0/.well-known/openid-configuration');
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error, 'invalid_request');
    assert.deepEqual(missing.json.error_codes, [90002]);
    const undecodable = await s.request('GET', '/%ff/v2.0/.well-known/openid-configuration');
    assert.equal(undecodable.status, 400);
    assert.equal(undecodable.json.error, 'invalid_request');
  });

  test('the jwks_uri publishes the signing key with kid, use and alg', async () => {
    const d = (await s.request('GET', `/${s.info.tenantId}/v2.0/.well-known/openid-configuration`)).json;
    const r = await s.request('GET', new URL(d.jwks_uri).pathname);
    assert.equal(r.status, 200);
    assert.ok(r.json.keys.length >= 1, 'r.json.keys.length >= 1');
    for (const k of r.json.keys) {
      assert.equal(k.use, 'sig');
      assert.ok(
        typeof k.kid === 'string' && k.kid.length > 0,
        "typeof k.kid === 'string' && k.kid.length > 0",
      );
      assert.equal(k.alg, s.services.config.token.signingAlg);
      assert.equal(k.d, undefined, 'no private part');
      assert.equal(k.p, undefined);
    }
    const common = await s.request('GET', '/common/discovery/keys');
    assert.deepEqual(common.json, r.json);
  });

  test('instance discovery document', async () => {
    const authorize = `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/authorize`;
    const r = await s.request(
      'GET',
      `/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(authorize)}`,
    );
    assert.equal(r.status, 200);
    const host = new URL(s.info.authority).host;
    assert.equal(r.json['api-version'], '1.1');
    assert.equal(
      r.json.tenant_discovery_endpoint,
      `${s.info.authority}/${s.info.tenantId}/v2.0/.well-known/openid-configuration`,
    );
    assert.deepEqual(r.json.metadata, [{ preferred_network: host, preferred_cache: host, aliases: [host] }]);
    const plain = await s.request('GET', '/common/discovery/instance');
    assert.equal(plain.status, 200);
    assert.match(
      plain.json.tenant_discovery_endpoint,
      /\/common\/v2\.0\/\.well-known\/openid-configuration$/,
    );
  });

  test('a token response has the Entra shape and is not cacheable', async () => {
    const app = await createServicePrincipal(s, { displayName: 'shape' });
    const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: app.appId,
        client_secret: app.secret!,
        scope: `${s.info.vaultResource}/.default`,
        'x-client-SKU': 'MSAL.Node',
        'x-client-VER': '5.0.0',
      },
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.token_type, 'Bearer');
    assert.ok(
      r.json.expires_in >= 3600 && r.json.expires_in <= 5400,
      'r.json.expires_in >= 3600 && r.json.expires_in <= 5400',
    );
    assert.equal(r.json.ext_expires_in, r.json.expires_in);
    assert.ok(typeof r.json.access_token === 'string', "typeof r.json.access_token === 'string'");
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.match(String(r.json.access_token), /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.match(app.id, GUID);
  });
});
