import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { findRole } from '../src/access/roles.js';
import { signHostAssertion } from '../src/identity-endpoint/certificates.js';
import { selfSignedRsaCert } from './helpers/certs.js';
import { appId, arm, patchApp, putApp, putIdentity, putSettings, rgPath, uaiId } from './helpers/identity.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import { grant, putVault, vaultPrincipal } from './helpers/vault.js';

describe('managed identities: the management API', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestApp();
  });
  after(async () => {
    await s?.stop();
  });

  /** A management token for a service principal with a client secret. */
  const mgmtToken = async (p: { appId: string; secret: string }, tenantId = s.info.tenantId) => {
    const r = await s.request('POST', `/${tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: p.appId,
        client_secret: p.secret,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    assert.equal(r.status, 200, r.text);
    return r.json.access_token as string;
  };

  test('a caller who may not read there gets the same 403 whether the app, identity, host or group exists', async () => {
    await putApp(s, 'exists-app');
    await putIdentity(s, 'exists-uai');
    const nobody = await vaultPrincipal(s, 'no-roles');
    const token = await mgmtToken(nobody);
    const get = (path: string) =>
      s.request('GET', `${path}?api-version=2023-01-31`, { headers: { authorization: `Bearer ${token}` } });
    const host = (name: string) => `${rgPath(s)}/providers/Microsoft.Latchkey/hosts/${name}`;
    const pairs: [string, string][] = [
      [appId(s, 'exists-app'), appId(s, 'nosuch-app')],
      [uaiId(s, 'exists-uai'), uaiId(s, 'nosuch-uai')],
      [host('local'), host('nosuch-host')],
      [
        `/subscriptions/${s.info.subscriptionId}/resourcegroups/default`,
        `/subscriptions/${s.info.subscriptionId}/resourcegroups/nosuch-rg`,
      ],
    ];
    for (const [real, madeUp] of pairs) {
      const a = await get(real);
      const b = await get(madeUp);
      assert.equal(a.status, 403, `${real}: ${a.text}`);
      assert.equal(b.status, 403, `${madeUp}: ${b.text}`);
      assert.equal(a.json.error.code, b.json.error.code);
    }
    // With the read permission, a missing one is a 404 (as ARM).
    const admin = await arm(s, 'GET', appId(s, 'nosuch-app'));
    assert.equal(admin.status, 404, admin.text);
  });

  test('nor anywhere else in a group: credentials, role assignments and definitions, lists, and PUTs answer alike', async () => {
    await putIdentity(s, 'exists-uai2');
    const nobody = await vaultPrincipal(s, 'no-roles-2');
    const headers = { authorization: `Bearer ${await mgmtToken(nobody)}` };
    const sub = `/subscriptions/${s.info.subscriptionId}`;
    const authz = (scope: string, rest: string) => `${scope}/providers/Microsoft.Authorization/${rest}`;
    const assignment = {
      properties: {
        roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${findRole('Reader')!.id}`,
        principalId: nobody.id,
      },
    };
    const vaultBody = {
      location: 'local',
      properties: { tenantId: s.info.tenantId, sku: { family: 'A', name: 'standard' } },
    };
    /** One request against what exists and against what does not: [method, path of each, body]. */
    const cases: [string, (rg: string, uai: string) => string, unknown?][] = [
      ['GET', (_rg, uai) => `${uai}/federatedIdentityCredentials?api-version=2023-01-31`],
      [
        'PUT',
        (_rg, uai) => `${uai}/federatedIdentityCredentials/fic1?api-version=2023-01-31`,
        {
          properties: {
            issuer: 'https://issuer.example',
            subject: 's',
            audiences: ['api://AzureADTokenExchange'],
          },
        },
      ],
      ['GET', (rg) => `${authz(rg, 'roleAssignments')}?api-version=2022-04-01`],
      ['GET', (_rg, uai) => `${authz(uai, 'roleAssignments')}?api-version=2022-04-01`],
      [
        'PUT',
        (_rg, uai) => `${authz(uai, 'roleAssignments')}/${randomUUID()}?api-version=2022-04-01`,
        assignment,
      ],
      ['DELETE', (rg) => `${authz(rg, 'roleAssignments')}/${randomUUID()}?api-version=2022-04-01`],
      ['GET', (_rg, uai) => `${authz(uai, 'roleDefinitions')}?api-version=2022-04-01`],
      ['GET', (rg) => `${authz(rg, 'roleDefinitions')}/${findRole('Reader')!.id}?api-version=2022-04-01`],
      [
        'GET',
        (rg) => `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31`,
      ],
      ['GET', (rg) => `${rg}/providers/Microsoft.Latchkey/hosts?api-version=2023-01-31`],
      ['GET', (rg) => `${rg}/providers/Microsoft.Web/sites?api-version=2023-12-01`],
      ['GET', (rg) => `${rg}/resources?api-version=2021-04-01`],
      [
        'PUT',
        (rg) =>
          `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/new-uai?api-version=2023-01-31`,
        {},
      ],
      ['PUT', (rg) => `${rg}/providers/Microsoft.Web/sites/new-app?api-version=2023-12-01`, {}],
      ['PUT', (rg) => `${rg}/providers/Microsoft.Latchkey/hosts/new-host?api-version=2023-01-31`, {}],
      [
        'PUT',
        (rg) => `${rg}/providers/Microsoft.KeyVault/vaults/newvault77?api-version=2023-07-01`,
        vaultBody,
      ],
      ['DELETE', (rg) => `${rg}?api-version=2021-04-01`],
    ];
    const real = { rg: `${sub}/resourceGroups/default`, uai: uaiId(s, 'exists-uai2') };
    const madeUp = {
      rg: `${sub}/resourceGroups/nosuch-rg`,
      uai: `${sub}/resourceGroups/nosuch-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nosuch-uai`,
    };
    const differing: string[] = [];
    for (const [method, path, json] of cases) {
      const answer = async (at: { rg: string; uai: string }) => {
        const r = await s.request(method, path(at.rg, at.uai), {
          headers,
          ...(json === undefined ? {} : { json }),
        });
        return { status: r.status, code: r.json?.error?.code, value: r.status === 200 ? r.text : undefined };
      };
      const a = await answer(real);
      const b = await answer(madeUp);
      assert.ok(a.status < 500, `${method} ${path(real.rg, real.uai)}: ${a.status}`);
      if (JSON.stringify(a) !== JSON.stringify(b))
        differing.push(
          `${method} ${path('{rg}', '{uai}')}: ${a.status} ${a.code ?? ''} vs ${b.status} ${b.code ?? ''}`,
        );
    }
    // An app's settings, by a caller with no role; an app PUT into a group the caller may write,
    // naming a host (by name) and a user-assigned identity (by ARM id) it may not assign.
    await putApp(s, 'exists-app2');
    const sites = `${real.rg}/providers/Microsoft.Web/sites`;
    await arm(s, 'PUT', `${sub}/resourcegroups/own-rg`, { location: 'local' });
    const contributor = await vaultPrincipal(s, 'own-rg-contributor');
    await s.services.access.create(s.info.tenantId, {
      principalId: contributor.id,
      role: findRole('Contributor')!,
      scope: `${sub}/resourceGroups/own-rg`,
      createdBy: 'test',
    });
    const mine = { authorization: `Bearer ${await mgmtToken(contributor)}` };
    const ownHost = await arm(
      s,
      'PUT',
      `${sub}/resourceGroups/own-rg/providers/Microsoft.Latchkey/hosts/own-host`,
      {
        properties: { certificate: (await selfSignedRsaCert('own-host')).certPem },
      },
    );
    assert.equal(ownHost.status, 201, ownHost.text);
    const own = `${sub}/resourceGroups/own-rg/providers/Microsoft.Web/sites`;
    const uai = (name: string) =>
      `${real.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
    const pairs: [
      string,
      (exists: boolean) => Promise<{ status: number; json: { error?: { code?: string; message?: string } } }>,
    ][] = [
      [
        'settings list',
        (e) =>
          s.request(
            'POST',
            `${sites}/${e ? 'exists-app2' : 'nosuch-app2'}/config/appsettings/list?api-version=2023-12-01`,
            { headers },
          ),
      ],
      [
        'settings PUT',
        (e) =>
          s.request(
            'PUT',
            `${sites}/${e ? 'exists-app2' : 'nosuch-app2'}/config/appsettings?api-version=2023-12-01`,
            { headers, json: { properties: { A: 'b' } } },
          ),
      ],
      [
        'app on a host',
        (e) =>
          s.request('PUT', `${own}/on-host-${e}?api-version=2023-12-01`, {
            headers: mine,
            json: { location: 'local', properties: { hostId: e ? 'local' : 'nosuch-host' } },
          }),
      ],
      [
        'app with an identity',
        (e) =>
          s.request('PUT', `${own}/with-id-${e}?api-version=2023-12-01`, {
            headers: mine,
            json: {
              location: 'local',
              properties: { hostId: 'own-host' },
              identity: {
                type: 'UserAssigned',
                userAssignedIdentities: { [uai(e ? 'exists-uai2' : 'nosuch-uai2')]: {} },
              },
            },
          }),
      ],
    ];
    // The whole answer, message included, but for the name the caller asked for (its own input).
    const names =
      /exists-app2|nosuch-app2|nosuch-host|(?<=')local(?=')|exists-uai2|nosuch-uai2|-(true|false)\b/g;
    for (const [label, request] of pairs) {
      const a = await request(true);
      const b = await request(false);
      const shown = (r: typeof a) =>
        `${r.status} ${r.json?.error?.code ?? ''} ${(r.json?.error?.message ?? '').replace(names, '{name}')}`;
      if (shown(a) !== shown(b)) differing.push(`${label}: ${shown(a)} vs ${shown(b)}`);
    }
    assert.deepEqual(differing, [], 'the same answer for a made-up group');
    // Leave no host behind for the host tests that list them.
    const gone = await arm(
      s,
      'DELETE',
      `${sub}/resourceGroups/own-rg/providers/Microsoft.Latchkey/hosts/own-host`,
    );
    assert.equal(gone.status, 200, gone.text);
    // With the permission, a missing group is still a 404 (as ARM).
    const missing = await arm(
      s,
      'GET',
      `${madeUp.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`,
    );
    assert.equal(missing.status, 404, missing.text);
  });

  test('user-assigned identities: create, update, show, list, validation', async () => {
    const created = await arm(s, 'PUT', uaiId(s, 'mgmt-uai'), { location: 'local', tags: { team: 'a' } });
    assert.equal(created.status, 201, created.text);
    const u = created.json;
    assert.equal(u.type, 'Microsoft.ManagedIdentity/userAssignedIdentities');
    assert.equal(u.id, uaiId(s, 'mgmt-uai'));
    assert.equal(u.properties.tenantId, s.info.tenantId);
    const sp = await s.services.principals.get(s.info.tenantId, u.properties.principalId);
    assert.equal(sp?.kind, 'managedIdentity');
    assert.equal(sp?.appId, u.properties.clientId);
    assert.equal(sp?.resourceId, u.id);
    const again = await arm(s, 'PUT', uaiId(s, 'mgmt-uai'), { tags: { team: 'b' } });
    assert.equal(again.status, 200);
    assert.equal(again.json.properties.principalId, u.properties.principalId, 'an update keeps the identity');
    assert.deepEqual(again.json.tags, { team: 'b' });
    assert.equal((await arm(s, 'GET', uaiId(s, 'MGMT-UAI'))).json.name, 'mgmt-uai');
    const inGroup = await arm(
      s,
      'GET',
      `${rgPath(s)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`,
    );
    assert.ok(
      inGroup.json.value.some((x: { id: string }) => x.id === u.id),
      'inGroup.json.value.some((x: { id: string }) => x.id === u.id)',
    );
    const inSub = await arm(
      s,
      'GET',
      `/subscriptions/${s.info.subscriptionId}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`,
    );
    assert.ok(
      inSub.json.value.some((x: { id: string }) => x.id === u.id),
      'inSub.json.value.some((x: { id: string }) => x.id === u.id)',
    );

    const noVersion = await s.request('GET', uaiId(s, 'mgmt-uai'), {
      headers: { authorization: `Bearer ${await s.adminToken()}` },
    });
    assert.equal(noVersion.status, 400);
    assert.equal(noVersion.json.error.code, 'InvalidApiVersion');
    assert.equal((await arm(s, 'PUT', uaiId(s, 'x'), {})).status, 400, 'names are 3–128 characters');
    assert.equal((await arm(s, 'PUT', uaiId(s, 'ok-name', 'no-such-group'), {})).status, 404);
    assert.equal((await arm(s, 'GET', uaiId(s, 'missing-uai'))).json.error.code, 'ResourceNotFound');
    assert.equal((await arm(s, 'DELETE', uaiId(s, 'missing-uai'))).status, 204);
    // Listing in a resource group that does not exist is a 404, as in Azure (not an empty list).
    const noGroup = await arm(
      s,
      'GET',
      `${rgPath(s, 'no-such-group')}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`,
    );
    assert.equal(noGroup.status, 404, noGroup.text);
    assert.equal(noGroup.json.error.code, 'ResourceNotFound');
    assert.match(noGroup.json.error.message, /Resource group 'no-such-group' could not be found/);
  });

  test('a system-assigned identity lives and dies with its app, with its role assignments', async () => {
    const vault = await putVault(s, 'mgmtvault');
    const app = await putApp(s, 'mgmt-sys', { identity: { type: 'SystemAssigned' } });
    assert.equal(app.identity.type, 'SystemAssigned');
    assert.equal(app.identity.tenantId, s.info.tenantId);
    assert.equal(app.properties.hostName, 'local', 'apps default to the built-in local host');
    const pid = app.identity.principalId!;
    const sp = await s.services.principals.get(s.info.tenantId, pid);
    assert.equal(sp?.kind, 'managedIdentity');
    assert.equal(sp?.resourceId, app.id);
    await grant(s, pid, 'Key Vault Secrets User', vault.id);

    const off = await patchApp(s, 'mgmt-sys', { identity: { type: 'None' } });
    assert.equal(off.identity.type, 'None');
    assert.equal(await s.services.principals.getById(pid), undefined);
    assert.deepEqual(await s.services.access.list(s.info.tenantId, { principalId: pid }), []);
    const on = await patchApp(s, 'mgmt-sys', { identity: { type: 'SystemAssigned' } });
    assert.notEqual(on.identity.principalId, pid, 'a new identity, not the old one back');

    // A role assignment AT the app (its scope) goes with the app.
    const ra = await arm(
      s,
      'PUT',
      `${app.id}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`,
      { properties: { roleDefinitionId: findRole('Reader')!.id, principalId: on.identity.principalId } },
    );
    assert.equal(ra.status, 201, ra.text);
    assert.equal((await arm(s, 'DELETE', appId(s, 'mgmt-sys'))).status, 200);
    assert.equal((await arm(s, 'GET', appId(s, 'mgmt-sys'))).status, 404);
    assert.equal(await s.services.principals.getById(on.identity.principalId!), undefined);
    const left = await s.services.access.list(s.info.tenantId, { scope: app.id, atOrAbove: false });
    assert.deepEqual(left, []);
    assert.equal((await arm(s, 'DELETE', appId(s, 'mgmt-sys'))).status, 204);
  });

  test('user-assigned identities on apps: attach, add, detach; unknown ones refused', async () => {
    const a = await putIdentity(s, 'mgmt-uai-a');
    const b = await putIdentity(s, 'mgmt-uai-b');
    const bad = await arm(s, 'PUT', appId(s, 'mgmt-user'), {
      identity: { type: 'UserAssigned', userAssignedIdentities: { [uaiId(s, 'nope-nope')]: {} } },
    });
    assert.equal(bad.status, 400);
    assert.equal((await arm(s, 'GET', appId(s, 'mgmt-user'))).status, 404, 'nothing was created');
    const noSet = await arm(s, 'PUT', appId(s, 'mgmt-user'), { identity: { type: 'UserAssigned' } });
    assert.equal(noSet.status, 400);
    const weird = await arm(s, 'PUT', appId(s, 'mgmt-user'), { identity: { type: 'Everything' } });
    assert.equal(weird.status, 400);

    const app = await putApp(s, 'mgmt-user', {
      identity: { type: 'UserAssigned', userAssignedIdentities: { [a.id]: {} } },
    });
    assert.deepEqual(app.identity.userAssignedIdentities, {
      [a.id]: { principalId: a.properties.principalId, clientId: a.properties.clientId },
    });
    const both = await patchApp(s, 'mgmt-user', {
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [b.id]: {} } },
    });
    assert.equal(both.identity.type, 'SystemAssigned, UserAssigned');
    assert.deepEqual(Object.keys(both.identity.userAssignedIdentities!).sort(), [a.id, b.id].sort());
    const dropA = await patchApp(s, 'mgmt-user', {
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [a.id]: null } },
    });
    assert.deepEqual(Object.keys(dropA.identity.userAssignedIdentities!), [b.id]);
    // The identity itself is untouched by a detach.
    assert.equal((await arm(s, 'GET', a.id)).status, 200);
    const list = await arm(s, 'GET', `${rgPath(s)}/providers/Microsoft.Web/sites`);
    assert.ok(
      list.json.value.some((x: { name: string }) => x.name === 'mgmt-user'),
      "list.json.value.some((x: { name: string }) => x.name === 'mgmt-user')",
    );
    // App names are unique in a tenant (they name the workload on its host).
    await s.services.scopes.ensureResourceGroup(s.info.tenantId, s.info.subscriptionId, 'other-rg');
    const dup = await arm(s, 'PUT', appId(s, 'mgmt-user', 'other-rg'), {});
    assert.equal(dup.status, 409);
  });

  test('authorization: a Reader may look, not change; another tenant sees nothing', async () => {
    await putApp(s, 'mgmt-authz', { identity: { type: 'SystemAssigned' } });
    const reader = await vaultPrincipal(s, 'mgmt-reader');
    await grant(s, reader.id, 'Reader', '/');
    const rt = await mgmtToken(reader);
    assert.equal((await arm(s, 'GET', appId(s, 'mgmt-authz'), undefined, rt)).status, 200);
    const put = await arm(s, 'PUT', appId(s, 'mgmt-authz'), {}, rt);
    assert.equal(put.status, 403);
    assert.match(put.json.error.message, /Microsoft\.Web\/sites\/write/);
    const settings = await arm(s, 'POST', `${appId(s, 'mgmt-authz')}/config/appsettings/list`, undefined, rt);
    assert.equal(settings.status, 403);
    assert.match(settings.json.error.message, /config\/list\/action/);
    const uai = await arm(s, 'PUT', uaiId(s, 'mgmt-reader-uai'), {}, rt);
    assert.equal(uai.status, 403);

    // Managed Identity Operator may attach an identity, but not change apps.
    const u = await putIdentity(s, 'mgmt-op-uai');
    const operator = await vaultPrincipal(s, 'mgmt-operator');
    await grant(s, operator.id, 'Managed Identity Operator', u.id);
    const ot = await mgmtToken(operator);
    const attach = await arm(
      s,
      'PATCH',
      appId(s, 'mgmt-authz'),
      {
        identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u.id]: {} } },
      },
      ot,
    );
    assert.equal(attach.status, 403, 'sites/write is still needed');
    // What it does grant (Azure's `userAssignedIdentities/*/read` and `…/*/assign/action` match
    // `userAssignedIdentities/read` and `…/assign/action`: before, the role granted nothing).
    assert.equal((await arm(s, 'GET', u.id, undefined, ot)).status, 200, 'reads the identity');
    await grant(s, operator.id, 'Contributor', appId(s, 'mgmt-authz'));
    const attached = await arm(
      s,
      'PATCH',
      appId(s, 'mgmt-authz'),
      { identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u.id]: {} } } },
      await mgmtToken(operator),
    );
    assert.equal(attached.status, 200, `assigns it, with sites/write on the app: ${attached.text}`);

    const other = await s.services.tenants.create({ displayName: 'Other', domain: 'other.localhost' });
    const otherSp = await vaultPrincipal(s, 'other-owner', other.id);
    await grant(s, otherSp.id, 'Owner', '/', other.id);
    const ot2 = await mgmtToken(otherSp, other.id);
    const foreign = await arm(s, 'GET', appId(s, 'mgmt-authz'), undefined, ot2);
    assert.equal(foreign.status, 404);
  });

  test('app settings: sealed at rest, listed only to callers who may, validated', async () => {
    await putApp(s, 'mgmt-settings', {});
    await putSettings(s, 'mgmt-settings', {
      PLAIN: 'sentinel-value-7f3a9',
      REF: '@Microsoft.KeyVault(VaultName=kv1;SecretName=s)',
    });
    const raw = await s.services.db.all<{ settings_sealed: Buffer }>(
      "SELECT settings_sealed FROM apps WHERE name = 'mgmt-settings'",
    );
    assert.ok(raw[0]?.settings_sealed.length, 'raw[0]?.settings_sealed.length');
    assert.ok(
      !Buffer.from(raw[0]!.settings_sealed).includes('sentinel-value-7f3a9'),
      'no plaintext in the database',
    );
    const listed = await arm(s, 'POST', `${appId(s, 'mgmt-settings')}/config/appsettings/list`);
    assert.equal(listed.status, 200);
    assert.equal(listed.json.properties.PLAIN, 'sentinel-value-7f3a9');
    const events = await s.services.db.all<{ details: string | null }>(
      "SELECT details FROM audit_events WHERE operation LIKE 'AppSettings%'",
    );
    assert.ok(events.length >= 2, 'events.length >= 2');
    assert.ok(
      events.every((e) => !(e.details ?? '').includes('sentinel')),
      'audit keeps no values',
    );
    for (const bad of [
      { '1BAD': 'x' },
      { 'has space': 'x' },
      { A: 'x', a: 'y' },
      { BIG: 'x'.repeat(20_000) },
    ]) {
      const r = await arm(s, 'PUT', `${appId(s, 'mgmt-settings')}/config/appsettings`, { properties: bad });
      assert.equal(r.status, 400, JSON.stringify(Object.keys(bad)));
      assert.ok(!r.text.includes('x'.repeat(50)), "!r.text.includes('x'.repeat(50))");
    }
  });

  test('hosts: enrol with a certificate; the host API answers only the host itself', async () => {
    const cert = await selfSignedRsaCert('edge-host');
    const hostPath = `${rgPath(s)}/providers/Microsoft.Latchkey/hosts/edge-1?api-version=2024-01-01`;
    const noCert = await arm(s, 'PUT', hostPath, {});
    assert.equal(noCert.status, 400);
    const created = await arm(s, 'PUT', hostPath, { properties: { certificate: cert.certPem } });
    assert.equal(created.status, 201, created.text);
    const h = created.json.properties;
    assert.ok(h.credential.keyId, 'h.credential.keyId');
    const hostToken = async () => {
      const tokenUrl = `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/token`;
      const assertion = await signHostAssertion(
        { keyPem: cert.keyPem, certPem: cert.certPem, x5tS256: cert.x5tS256, notBefore: 0, notAfter: 0 },
        h.clientId,
        tokenUrl,
      );
      const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: h.clientId,
          scope: `${s.info.managementResource}/.default`,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
        },
      });
      assert.equal(r.status, 200, r.text);
      return r.json.access_token as string;
    };
    const ht = await hostToken();
    const call = (method: string, path: string, token: string, json?: unknown) =>
      s.request(method, `/api/hosts/${path}`, {
        headers: { authorization: `Bearer ${token}` },
        ...(json ? { json } : {}),
      });

    const app = await putApp(s, 'edge-app', {
      identity: { type: 'SystemAssigned' },
      properties: { hostId: 'edge-1' },
    });
    assert.equal(app.properties.hostName, 'edge-1');
    const manifest = await call('GET', `${h.hostId}/identities`, ht);
    assert.equal(manifest.status, 200, manifest.text);
    assert.deepEqual(
      manifest.json.apps.map((a: { name: string }) => a.name),
      ['edge-app'],
    );
    assert.equal(manifest.json.apps[0].identities[0].principalId, app.identity.principalId);

    const local = await s.services.hosts.ensureLocal(s.info.tenantId);
    assert.equal((await call('GET', `${local.id}/identities`, ht)).status, 403, 'another host’s API');
    assert.equal(
      (await call('GET', `${h.hostId}/identities`, await s.adminToken())).status,
      403,
      'even an Owner',
    );
    const localApp = await putApp(s, 'local-app', { identity: { type: 'SystemAssigned' } });
    const idCert = await selfSignedRsaCert('id');
    const foreignId = await call(
      'POST',
      `${h.hostId}/identities/${localApp.identity.principalId}/certificates`,
      ht,
      {
        certificate: idCert.certPem,
      },
    );
    assert.equal(foreignId.status, 404, 'only identities of apps on this host');
    const own = await call('POST', `${h.hostId}/identities/${app.identity.principalId}/certificates`, ht, {
      certificate: idCert.certPem,
    });
    assert.equal(own.status, 201, own.text);
    // A second certificate, removed again: only the one the host registered, once (then 404).
    const idCerts = `${h.hostId}/identities/${app.identity.principalId}/certificates`;
    const second = await call('POST', idCerts, ht, {
      certificate: (await selfSignedRsaCert('id-2')).certPem,
    });
    assert.equal(second.status, 201, second.text);
    assert.equal((await call('DELETE', `${idCerts}/${second.json.keyId}`, ht)).status, 204);
    assert.equal((await call('DELETE', `${idCerts}/${second.json.keyId}`, ht)).status, 404);
    const listed = await call('GET', idCerts, ht);
    assert.deepEqual(
      listed.json.value.map((c: { keyId: string }) => c.keyId),
      [own.json.keyId],
    );
    assert.equal((await call('GET', `${h.hostId}/apps/local-app/settings`, ht)).status, 404);

    // Moving the app off the host removes what the host registered for its identity.
    await patchApp(s, 'edge-app', { properties: { hostId: 'local' } });
    assert.deepEqual(await s.services.credentials.list(s.info.tenantId, app.identity.principalId!), []);
    assert.equal((await call('GET', `${h.hostId}/identities`, ht)).json.apps.length, 0);

    await patchApp(s, 'edge-app', { properties: { hostId: 'edge-1' } });
    const busy = await arm(s, 'DELETE', hostPath);
    assert.equal(busy.status, 409);
    assert.equal(
      (await arm(s, 'DELETE', `${rgPath(s)}/providers/Microsoft.Latchkey/hosts/local?api-version=2024-01-01`))
        .status,
      400,
    );
    const hosts = await arm(
      s,
      'GET',
      `/subscriptions/${s.info.subscriptionId}/providers/Microsoft.Latchkey/hosts?api-version=2024-01-01`,
    );
    assert.deepEqual(hosts.json.value.map((x: { name: string }) => x.name).sort(), ['edge-1', 'local']);
  });
});
