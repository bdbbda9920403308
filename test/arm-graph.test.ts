import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { parseResourceFilter } from '../src/http/routes/resources.js';
import {
  assignRole,
  createVault,
  servicePrincipal,
  type TestPrincipal,
  vaultArmPath,
} from './helpers/access.js';
import { selfSignedRsaCert } from './helpers/certs.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';

/**
 * What the Azure CLI needs beyond the SDKs' surface, over raw HTTP: cloud metadata, the `adfs`
 * authority alias, ID tokens and client_info on the password grant, `GET /tenants`, ARM's
 * generic resource list, and the read-only Graph subset. `azure-cli.test.ts` drives `az` itself.
 */
describe('Azure CLI surface (raw HTTP)', () => {
  let s: TestServer;
  let reader: TestPrincipal;
  let nobody: TestPrincipal;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  before(async () => {
    s = await startTestServer();
    await createVault(s, 'armlist1');
    await createVault(s, 'armlist2', { enableRbacAuthorization: false, accessPolicies: [] });
    reader = await servicePrincipal(s, 'arm-reader');
    nobody = await servicePrincipal(s, 'arm-nobody');
    await assignRole(s, reader.id, 'Reader', vaultArmPath(s, 'armlist1'));
  });
  after(() => s?.stop());

  it('cloud metadata: the 2019-05-01+ array and the 1.0 object point at this server', async () => {
    const base = s.info.authority;
    const port = new URL(base).port;
    const r = await s.request('GET', '/metadata/endpoints?api-version=2022-09-01');
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.json) && r.json.length === 1, 'Array.isArray(r.json) && r.json.length === 1');
    const c = r.json[0];
    assert.equal(c.name, 'Latchkey');
    assert.equal(c.resourceManager, `${base}/`);
    assert.equal(c.authentication.loginEndpoint, `${base}/adfs`);
    assert.equal(c.authentication.audiences[0], s.info.managementResource);
    assert.equal(c.microsoftGraphResourceId, `${base}/`);
    assert.equal(c.suffixes.keyVaultDns, `vault.localhost:${port}`);
    const old = await s.request('GET', '/metadata/endpoints?api-version=1.0');
    assert.equal(old.json.authentication.loginEndpoint, `${base}/adfs`);
    for (const bad of ['', '?api-version=2018-01-01', '?api-version=latest']) {
      const e = await s.request('GET', `/metadata/endpoints${bad}`);
      assert.equal(e.status, 400, bad);
      assert.equal(e.json.error.code, 'InvalidApiVersion');
    }
  });

  it('the adfs alias is the default tenant; no tenant may take the domain adfs', async () => {
    const r = await s.request('GET', '/adfs/.well-known/openid-configuration');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.token_endpoint, `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/token`);
    assert.equal(r.json.issuer, `${s.info.authority}/${s.info.tenantId}/v2.0`);
    for (const domain of ['adfs', 'common', 'organizations']) {
      await assert.rejects(s.services.tenants.create({ displayName: 'x', domain }), /reserved/);
    }
    assert.equal((await s.services.tenants.list()).length, 1);
  });

  it('the password grant returns an ID token and client_info when asked; a refresh keeps them', async () => {
    const form = {
      grant_type: 'password',
      client_id: CLI,
      username: s.admin.userName,
      password: s.admin.password,
      scope: `${s.info.managementResource}/.default openid profile offline_access`,
      client_info: '1',
    };
    const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, { form });
    assert.equal(r.status, 200, r.text);
    const id = decodeJwt(r.json.id_token);
    const oid = decodeJwt(r.json.access_token).oid;
    assert.equal(id.aud, CLI);
    assert.equal(id.preferred_username, s.admin.userName);
    assert.equal(id.oid, oid);
    assert.equal(id.tid, s.info.tenantId);
    assert.equal(typeof id.auth_time, 'number');
    assert.deepEqual(JSON.parse(Buffer.from(r.json.client_info, 'base64url').toString()), {
      uid: oid,
      utid: s.info.tenantId,
    });
    // Without openid and client_info=1: neither.
    const bare = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: { ...form, scope: `${s.info.managementResource}/.default offline_access`, client_info: '0' },
    });
    assert.equal(bare.json.id_token, undefined);
    assert.equal(bare.json.client_info, undefined);
    const refreshed = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'refresh_token',
        client_id: CLI,
        refresh_token: r.json.refresh_token,
        client_info: '1',
      },
    });
    assert.equal(refreshed.status, 200, refreshed.text);
    const rid = decodeJwt(refreshed.json.id_token);
    assert.equal(rid.oid, oid);
    assert.equal(rid.auth_time, undefined, 'a refresh is not a sign-in');
    assert.ok(refreshed.json.client_info, 'refreshed.json.client_info');
  });

  it('GET /tenants lists the caller’s own tenant', async () => {
    const r = await s.request('GET', '/tenants?api-version=2022-12-01', {
      headers: bearer(await reader.token(s.info.managementResource)),
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      r.json.value.map((t: { tenantId: string; defaultDomain: string }) => [t.tenantId, t.defaultDomain]),
      [[s.info.tenantId, 'latchkey.localhost']],
    );
  });

  it('generic resource list: filters, visibility by read permission, bad filters refused', async () => {
    const sub = `/subscriptions/${s.info.subscriptionId}`;
    const list = async (token: string, query: string, path = `${sub}/resources`) =>
      s.request('GET', `${path}?api-version=2021-04-01${query}`, { headers: bearer(token) });
    const admin = await s.adminToken();
    const names = (r: { json: { value: { name: string }[] } }) => r.json.value.map((v) => v.name).sort();

    const all = await list(admin, '');
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(names(all), ['armlist1', 'armlist2', 'local']);
    const vaults = await list(
      admin,
      `&$filter=${encodeURIComponent("resourceType eq 'microsoft.keyvault/VAULTS'")}`,
    );
    assert.deepEqual(names(vaults), ['armlist1', 'armlist2']);
    assert.deepEqual(vaults.json.value[0], {
      id: vaultArmPath(s, 'armlist1'),
      name: 'armlist1',
      type: 'Microsoft.KeyVault/vaults',
      location: 'local',
      tags: {},
    });
    const one = await list(
      admin,
      `&$filter=${encodeURIComponent("resourceType eq 'Microsoft.KeyVault/vaults' and name eq 'ARMLIST2'")}`,
    );
    assert.deepEqual(names(one), ['armlist2']);
    assert.deepEqual(names(await list(admin, '&$top=1')).length, 1);
    const inGroup = await list(admin, '', `${sub}/resourceGroups/default/resources`);
    assert.deepEqual(names(inGroup), ['armlist1', 'armlist2', 'local']);
    assert.equal((await list(admin, '', `${sub}/resourceGroups/nope/resources`)).status, 404);

    // Only what the caller may read: Reader on one vault sees that vault; no role sees nothing.
    assert.deepEqual(names(await list(await reader.token(s.info.managementResource), '')), ['armlist1']);
    assert.deepEqual(names(await list(await nobody.token(s.info.managementResource), '')), []);

    for (const bad of [
      "location eq 'local'",
      "name ne 'x'",
      "name eq 'a' or name eq 'b'",
      "name eq 'a' and name eq 'b'",
    ]) {
      const r = await list(admin, `&$filter=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.json.error.code, 'InvalidFilterInQueryString');
    }
    assert.equal((await list(admin, '&$top=0')).status, 400);
    assert.deepEqual((await list(admin, '', `${sub}/providers/Microsoft.KeyVault/deletedManagedHSMs`)).json, {
      value: [],
    });
    // The filter parser on its own: quotes doubled inside a value, case-insensitive keywords.
    assert.deepEqual(
      [...parseResourceFilter("Name EQ 'o''brien' AND resourceGroup eq 'RG'")],
      [
        ['name', "o'brien"],
        ['resourcegroup', 'rg'],
      ],
    );
  });

  it('Graph: /me, users and service principals by filter, getByIds; reads need a directory role', async () => {
    const base = s.info.authority;
    const graphToken = async (who?: TestPrincipal) => (who ? who.token(base) : s.adminToken(base));
    const admin = await graphToken();
    assert.equal(decodeJwt(admin).aud, base);
    const get = (token: string, path: string) => s.request('GET', path, { headers: bearer(token) });

    const me = await get(admin, '/v1.0/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.userPrincipalName, s.admin.userName);
    const adminOid = me.json.id;

    const byUpn = await get(
      admin,
      `/v1.0/users?$filter=${encodeURIComponent(`userPrincipalName eq '${s.admin.userName.toUpperCase()}'`)}`,
    );
    assert.deepEqual(
      byUpn.json.value.map((u: { id: string }) => u.id),
      [adminOid],
    );
    assert.equal((await get(admin, `/v1.0/users/${encodeURIComponent(s.admin.userName)}`)).json.id, adminOid);

    const bySpn = await get(
      admin,
      `/v1.0/servicePrincipals?$filter=${encodeURIComponent(`servicePrincipalNames/any(c:c eq '${reader.appId}')`)}`,
    );
    assert.deepEqual(
      bySpn.json.value.map((p: { id: string }) => p.id),
      [reader.id],
    );
    const byPrefix = await get(
      admin,
      `/v1.0/servicePrincipals?$filter=${encodeURIComponent("startswith(displayName,'ARM-')")}`,
    );
    assert.deepEqual(byPrefix.json.value.map((p: { displayName: string }) => p.displayName).sort(), [
      'arm-nobody',
      'arm-reader',
    ]);
    assert.equal((await get(admin, `/v1.0/servicePrincipals/${reader.id}`)).json.appId, reader.appId);

    const ids = await s.request('POST', '/v1.0/directoryObjects/getByIds', {
      headers: bearer(admin),
      json: { ids: [adminOid, reader.id, '00000000-0000-0000-0000-000000000000'] },
    });
    assert.deepEqual(ids.json.value.map((o: { '@odata.type': string }) => o['@odata.type']).sort(), [
      '#microsoft.graph.servicePrincipal',
      '#microsoft.graph.user',
    ]);

    // A service principal has no /me; without a directory role it reads itself only.
    const nb = await graphToken(nobody);
    assert.equal((await get(nb, '/v1.0/me')).status, 400);
    assert.equal((await get(nb, '/v1.0/users')).status, 403);
    assert.equal((await get(nb, '/v1.0/servicePrincipals')).status, 403);
    assert.equal((await get(nb, `/v1.0/servicePrincipals/${nobody.id}`)).status, 200);
    assert.equal((await get(nb, `/v1.0/servicePrincipals/${reader.id}`)).status, 404);
    const own = await s.request('POST', '/v1.0/directoryObjects/getByIds', {
      headers: bearer(nb),
      json: { ids: [adminOid, nobody.id] },
    });
    assert.deepEqual(
      own.json.value.map((o: { id: string }) => o.id),
      [nobody.id],
    );

    // A management or vault token is not a Graph token; filters Graph does not know are refused.
    assert.equal((await get(await s.adminToken(), '/v1.0/me')).status, 401);
    for (const bad of [
      "accountEnabled eq 'true'",
      "displayName eq 'a' and id eq 'b' or id eq 'c'",
      'garbage',
    ]) {
      const r = await get(admin, `/v1.0/servicePrincipals?$filter=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.json.error.code, 'Request_UnsupportedQuery');
    }
  });
  it('Graph application writes: validated, authorized like the directory API, audited, never a secret read back', async () => {
    const base = s.info.authority;
    const admin = await s.adminToken(base);
    const send = (token: string, method: string, path: string, json?: unknown) =>
      s.request(method, path, { headers: bearer(token), ...(json !== undefined ? { json } : {}) });
    const principals = async () => (await s.services.principals.list(s.info.tenantId)).length;
    const before = await principals();
    for (const bad of [
      { displayName: 'x', homepage: 'https://x' },
      { displayName: 'x', identifierUris: ['api://a', 'api://b'] },
      { displayName: 'x', identifierUris: [`${s.info.vaultResource}:${new URL(base).port}`] },
      { displayName: '' },
      { displayName: 'x', keyCredentials: [{ type: 'Symmetric', key: 'AA==' }] },
    ]) {
      const r = await send(admin, 'POST', '/v1.0/applications', bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
    assert.equal(await principals(), before, 'a refused body creates nothing');

    // With a certificate (base64 DER, as az sends it): registered as the application's credential.
    const cert = await selfSignedRsaCert('graph-cert');
    const withCert = await send(admin, 'POST', '/v1.0/applications', {
      displayName: 'graph-cert-app',
      keyCredentials: [{ type: 'AsymmetricX509Cert', usage: 'Verify', key: cert.der.toString('base64') }],
    });
    assert.equal(withCert.status, 201, withCert.text);
    assert.equal(withCert.json.keyCredentials.length, 1);
    assert.equal(withCert.json.passwordCredentials.length, 0);
    const garbage = await send(admin, 'POST', '/v1.0/applications', {
      displayName: 'graph-bad-cert',
      keyCredentials: [
        { type: 'AsymmetricX509Cert', key: Buffer.from('not a certificate').toString('base64') },
      ],
    });
    assert.equal(garbage.status, 400, garbage.text);
    assert.ok(
      !(await s.services.principals.list(s.info.tenantId)).some((p) => p.displayName === 'graph-bad-cert'),
      "!(await s.services.principals.list(s.info.tenantId)).some((p) => p.displayName === 'gra...",
    );

    const created = await send(admin, 'POST', '/v1.0/applications', { displayName: 'graph-app' });
    assert.equal(created.status, 201, created.text);
    const app = created.json;
    assert.deepEqual(app.passwordCredentials, []);
    const sp = await send(admin, 'POST', '/v1.0/servicePrincipals', { appId: app.appId });
    assert.equal(sp.status, 201);
    assert.equal(sp.json.id, app.id, 'one object in Latchkey');
    assert.equal(
      (
        await send(admin, 'POST', '/v1.0/servicePrincipals', {
          appId: '00000000-0000-0000-0000-000000000001',
        })
      ).status,
      400,
    );

    const tooLong = await send(admin, 'POST', `/v1.0/applications/${app.id}/addPassword`, {
      passwordCredential: { endDateTime: new Date(Date.now() + 3 * 365 * 86_400_000).toISOString() },
    });
    assert.equal(tooLong.status, 400);
    const pw = await send(admin, 'POST', `/v1.0/applications/${app.id}/addPassword`, {
      passwordCredential: {
        displayName: 'ci',
        endDateTime: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      },
    });
    assert.equal(pw.status, 200, pw.text);
    assert.equal(pw.headers['cache-control'], 'no-store');
    assert.ok(pw.json.secretText.length >= 32, 'pw.json.secretText.length >= 32');
    const listed = (await send(admin, 'GET', `/v1.0/applications/${app.id}`)).json;
    assert.equal(listed.passwordCredentials[0].secretText, null);
    assert.ok(
      !JSON.stringify(listed).includes(pw.json.secretText),
      '!JSON.stringify(listed).includes(pw.json.secretText)',
    );

    // Renaming is not supported (and says so); the same name is accepted (az sends it).
    assert.equal(
      (await send(admin, 'PATCH', `/v1.0/applications/${app.id}`, { displayName: 'graph-app' })).status,
      204,
    );
    const rename = await send(admin, 'PATCH', `/v1.0/applications/${app.id}`, { displayName: 'other' });
    assert.equal(rename.status, 400);
    assert.equal(rename.json.error.code, 'Request_BadRequest');

    // Authorization: a service principal without a directory role, and a Contributor (no credentials/write).
    const nb = await nobody.token(base);
    assert.equal((await send(nb, 'POST', '/v1.0/applications', { displayName: 'nope' })).status, 403);
    assert.equal((await send(nb, 'POST', `/v1.0/applications/${app.id}/addPassword`, {})).status, 404);
    await assignRole(s, nobody.id, 'Contributor', '/');
    const contributor = await nobody.token(base);
    const denied = await send(contributor, 'POST', `/v1.0/applications/${app.id}/addPassword`, {});
    assert.equal(denied.status, 403, denied.text);
    assert.match(denied.json.error.message, /credentials\/write/);

    // Managed identities are not application registrations.
    const mi = (await s.services.principals.list(s.info.tenantId)).find((p) => p.kind === 'managedIdentity');
    if (mi) assert.equal((await send(admin, 'GET', `/v1.0/applications/${mi.id}`)).status, 404);

    assert.equal(
      (
        await send(admin, 'POST', `/v1.0/applications/${app.id}/removePassword`, {
          keyId: '00000000-0000-0000-0000-000000000002',
        })
      ).status,
      404,
    );
    assert.equal(
      (await send(admin, 'POST', `/v1.0/applications/${app.id}/removePassword`, { keyId: pw.json.keyId }))
        .status,
      204,
    );
    assert.equal((await send(admin, 'DELETE', `/v1.0/applications/${app.id}`)).status, 204);
    assert.equal((await send(admin, 'GET', `/v1.0/applications/${app.id}`)).status, 404);

    const ops = (
      await s.services.db.all<{ operation: string; details: string | null }>(
        'SELECT operation, details FROM audit_events WHERE target = $1 OR details LIKE $2 ORDER BY seq',
        [app.id, `%${pw.json.keyId}%`],
      )
    ).map((r) => r.operation);
    for (const op of [
      'ServicePrincipalCreate',
      'ServicePrincipalCredentialReset',
      'ServicePrincipalCredentialDelete',
      'ServicePrincipalDelete',
    ])
      assert.ok(ops.includes(op), `${op} in ${ops.join(', ')}`);
    const audit = JSON.stringify(await s.services.db.all('SELECT * FROM audit_events'));
    assert.ok(!audit.includes(pw.json.secretText), 'no secret in the audit log');
  });
});
