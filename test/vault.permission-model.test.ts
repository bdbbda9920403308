// Who decides who reads a vault: changing the permission model or access policies needs
// Microsoft.Authorization/roleAssignments/write (issue 14.3); a recover stays in the deleted vault's
// resource group (14.8); a compound access policy needs both its user and its application (14.10);
// the ARM default of enableRbacAuthorization follows the api-version (15.3).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { cliUser } from './helpers/cli.js';
import { consoleSignIn } from './helpers/console.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, vaultPath, vaultPrincipal, vaultToken } from './helpers/vault.js';

const OLD = '2022-07-01'; // what az 2.45 sends
const NEW = '2026-02-01';
const CLI_CLIENT = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const GRANT_ACTION = /'Microsoft\.Authorization\/roleAssignments\/write' over scope '[^']*\/vaults\//;

describe('vault permission model and access policies: who may change them, defaults, compound policies', () => {
  let s: TestServer;
  let admin: string;
  let sub: string;
  type Who = string | { key: string };
  const auth = (who: Who) => (typeof who === 'string' ? `Bearer ${who}` : `ProvisioningKey ${who.key}`);
  const arm = (method: string, path: string, json?: unknown, who: Who = admin, version = OLD) =>
    s.request(method, `${path}${path.includes('?') ? '&' : '?'}api-version=${version}`, {
      headers: { authorization: auth(who) },
      ...(json !== undefined ? { json } : {}),
    });
  const mgmtToken = async (p: { appId: string; secret: string }) => {
    const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
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
  const data = (vault: string, token: string, method: string, path: string, json?: unknown) =>
    s.request(method, `${s.vaultUrl(vault)}${path}?api-version=7.5`, {
      headers: { authorization: `Bearer ${token}` },
      ...(json !== undefined ? { json } : {}),
    });
  const policy = (objectId: string, secrets = ['all'], applicationId?: string) => ({
    tenantId: s.info.tenantId,
    objectId,
    ...(applicationId ? { applicationId } : {}),
    permissions: { secrets },
  });
  const newKey = async (scopes: string[]) => {
    const r = await s.request('POST', '/api/provisioning/keys', {
      headers: { authorization: `Bearer ${admin}` },
      json: { scopes, expiresInSeconds: 3600 },
    });
    assert.equal(r.status, 201, r.text);
    return { key: r.json.key as string };
  };
  const rgScope = (rg = 'default') => `/subscriptions/${s.info.subscriptionId}/resourceGroups/${rg}`;

  before(async () => {
    s = await startTestServer();
    admin = await s.adminToken();
    sub = `/subscriptions/${s.info.subscriptionId}`;
  });
  after(async () => {
    await s?.stop();
  });

  test('15.3: an ARM create without enableRbacAuthorization uses access policies before api-version 2026-02-01, RBAC from it', async () => {
    const app = await vaultPrincipal(s, 'default-app');
    const appToken = await vaultToken(s, app);
    // As az 2.45 and older templates: an access policy for the creator, no enableRbacAuthorization.
    const old = await arm('PUT', vaultPath(s, 'dflt-old'), {
      location: 'local',
      properties: {
        sku: { family: 'A', name: 'standard' },
        accessPolicies: [policy(app.id, ['get', 'set'])],
      },
    });
    assert.equal(old.status, 201, old.text);
    assert.equal(old.json.properties.enableRbacAuthorization, false);
    assert.equal((await data('dflt-old', appToken, 'PUT', '/secrets/s', { value: 'x' })).status, 200);
    assert.equal((await data('dflt-old', appToken, 'GET', '/secrets/s')).json.value, 'x');

    const fresh = await arm(
      'PUT',
      vaultPath(s, 'dflt-new'),
      { location: 'local', properties: { accessPolicies: [policy(app.id, ['get', 'set'])] } },
      admin,
      NEW,
    );
    assert.equal(fresh.status, 201, fresh.text);
    assert.equal(fresh.json.properties.enableRbacAuthorization, true);
    assert.equal((await data('dflt-new', appToken, 'PUT', '/secrets/s', { value: 'x' })).status, 403);

    for (const [version, rbac] of [
      ['2019-09-01', false],
      ['2025-05-01-preview', false],
      ['2026-02-01-preview', true],
      ['2027-01-01', true],
    ] as const) {
      const name = `dflt-${version.replace(/[^0-9]/g, '').slice(0, 8)}${version.includes('preview') ? 'p' : ''}`;
      const r = await arm('PUT', vaultPath(s, name), { location: 'local' }, admin, version);
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.properties.enableRbacAuthorization, rbac, version);
    }
    // An update that does not name the property keeps the vault's model, whatever its api-version.
    const updated = await arm('PUT', vaultPath(s, 'dflt-new'), { location: 'local', tags: { a: 'b' } });
    assert.equal(updated.status, 200);
    assert.equal(updated.json.properties.enableRbacAuthorization, true);
    const patched = await arm('PATCH', vaultPath(s, 'dflt-old'), { tags: { a: 'b' } }, admin, NEW);
    assert.equal(patched.json.properties.enableRbacAuthorization, false);
  });

  test('14.3: Contributor and Key Vault Contributor cannot flip the model or write access policies', async () => {
    const created = await arm(
      'PUT',
      vaultPath(s, 'guarded'),
      { location: 'local', properties: { enableRbacAuthorization: true } },
      admin,
      NEW,
    );
    assert.equal(created.status, 201);
    const writer = await vaultPrincipal(s, 'guarded-writer');
    await grant(s, writer.id, 'Key Vault Secrets Officer', created.json.id);
    assert.equal(
      (await data('guarded', await vaultToken(s, writer), 'PUT', '/secrets/db', { value: 'hunter2' })).status,
      200,
    );
    const polVault = await arm('PUT', vaultPath(s, 'guarded-pol'), {
      location: 'local',
      properties: { enableRbacAuthorization: false, accessPolicies: [policy(writer.id)] },
    });
    assert.equal(polVault.status, 201, polVault.text);

    for (const role of ['Contributor', 'Key Vault Contributor']) {
      const sp = await vaultPrincipal(s, `guarded-${role}`);
      await grant(s, sp.id, role, rgScope());
      const t = await mgmtToken(sp);
      const self = policy(sp.id);
      const refusals: [string, string, unknown][] = [
        [
          'PATCH',
          vaultPath(s, 'guarded'),
          { properties: { enableRbacAuthorization: false, accessPolicies: [self] } },
        ],
        ['PATCH', vaultPath(s, 'guarded'), { properties: { enableRbacAuthorization: false } }],
        [
          'PUT',
          vaultPath(s, 'guarded'),
          { location: 'local', properties: { enableRbacAuthorization: false } },
        ],
        ['PUT', vaultPath(s, 'guarded'), { location: 'local', properties: { accessPolicies: [self] } }],
        ['PUT', vaultPath(s, 'guarded-pol'), { location: 'local', properties: { accessPolicies: [self] } }],
        ['PATCH', vaultPath(s, 'guarded-pol'), { properties: { accessPolicies: [policy(writer.id), self] } }],
        ['PATCH', vaultPath(s, 'guarded-pol'), { properties: { enableRbacAuthorization: true } }],
        [
          'PUT',
          `${vaultPath(s, 'guarded-pol')}/accessPolicies/add`,
          { properties: { accessPolicies: [self] } },
        ],
        [
          'PUT',
          `${vaultPath(s, 'guarded-pol')}/accessPolicies/replace`,
          { properties: { accessPolicies: [self] } },
        ],
        [
          'PUT',
          `${vaultPath(s, 'guarded-pol')}/accessPolicies/remove`,
          { properties: { accessPolicies: [policy(writer.id)] } },
        ],
      ];
      for (const [method, path, body] of refusals) {
        const r = await arm(method, path, body, t);
        const what = `${role}: ${method} ${path.split('/vaults/')[1]} ${JSON.stringify(body).slice(0, 80)}`;
        assert.equal(r.status, 403, `${what}: ${r.text}`);
        assert.equal(r.json.error.code, 'Forbidden', what);
        assert.match(r.json.error.message, GRANT_ACTION, what);
      }
      // A new vault that grants data access through access policies: refused, nothing created.
      const mine = await arm(
        'PUT',
        vaultPath(s, `own-${role === 'Contributor' ? 'c' : 'kvc'}`),
        { location: 'local', properties: { accessPolicies: [self] } },
        t,
      );
      assert.equal(mine.status, 403, mine.text);
      assert.match(mine.json.error.message, GRANT_ACTION);
      assert.equal(
        (await arm('GET', vaultPath(s, `own-${role === 'Contributor' ? 'c' : 'kvc'}`))).status,
        404,
      );

      // Nothing changed, and the caller reads no secret.
      const g = (await arm('GET', vaultPath(s, 'guarded'))).json.properties;
      assert.equal(g.enableRbacAuthorization, true);
      assert.deepEqual(g.accessPolicies, []);
      const p = (await arm('GET', vaultPath(s, 'guarded-pol'))).json.properties;
      assert.equal(p.enableRbacAuthorization, false);
      assert.deepEqual(
        p.accessPolicies.map((x: { objectId: string }) => x.objectId),
        [writer.id],
      );
      const vt = await vaultToken(s, sp);
      assert.equal((await data('guarded', vt, 'GET', '/secrets/db')).status, 403);
      assert.equal((await data('guarded-pol', vt, 'GET', '/secrets')).status, 403);

      // What does not change data access stays theirs: tags, purge protection, and a PUT of the
      // vault as GET returned it (az keyvault update sends the whole vault back).
      assert.equal((await arm('PATCH', vaultPath(s, 'guarded'), { tags: { by: role } }, t)).status, 200);
      for (const name of ['guarded', 'guarded-pol']) {
        const shown = (await arm('GET', vaultPath(s, name), undefined, t)).json;
        const back = await arm(
          'PUT',
          vaultPath(s, name),
          { location: shown.location, tags: shown.tags, properties: shown.properties },
          t,
        );
        assert.equal(back.status, 200, `${role} PUT ${name} back: ${back.text}`);
      }
      // A new vault without access policies grants nothing: allowed (an empty access-policy vault here).
      const empty = await arm(
        'PUT',
        vaultPath(s, `empty-${role === 'Contributor' ? 'c' : 'kvc'}`),
        { location: 'local' },
        t,
      );
      assert.equal(empty.status, 201, empty.text);
      assert.deepEqual(empty.json.properties.accessPolicies, []);
    }

    // An Owner (roleAssignments/write at the vault) may: the same PATCH succeeds.
    const owner = await arm('PATCH', vaultPath(s, 'guarded'), {
      properties: { enableRbacAuthorization: false, accessPolicies: [policy(writer.id, ['get'])] },
    });
    assert.equal(owner.status, 200, owner.text);
    assert.equal(owner.json.properties.enableRbacAuthorization, false);
  });

  test('14.3: a provisioning key needs roleAssignments:write besides vaults:write to change access', async () => {
    await arm('PUT', vaultPath(s, 'keyed'), {
      location: 'local',
      properties: { enableRbacAuthorization: true },
    });
    const vw = await newKey(['vaults:write']);
    const sp = await vaultPrincipal(s, 'keyed-sp');
    for (const [method, path, body] of [
      ['PATCH', vaultPath(s, 'keyed'), { properties: { enableRbacAuthorization: false } }],
      [
        'PUT',
        `${vaultPath(s, 'keyed')}/accessPolicies/add`,
        { properties: { accessPolicies: [policy(sp.id)] } },
      ],
      [
        'PUT',
        vaultPath(s, 'keyed-new'),
        { location: 'local', properties: { accessPolicies: [policy(sp.id)] } },
      ],
    ] as const) {
      const r = await arm(method, path, body, vw);
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
      assert.equal(r.json.error.code, 'ProvisioningScopeMissing');
      assert.match(r.json.error.message, /roleAssignments\/write.*needs the scope 'roleAssignments:write'/);
    }
    assert.equal((await arm('PATCH', vaultPath(s, 'keyed'), { tags: { ci: '1' } }, vw)).status, 200);
    const both = await newKey(['vaults:write', 'roleAssignments:write']);
    const ok = await arm(
      'PATCH',
      vaultPath(s, 'keyed'),
      { properties: { enableRbacAuthorization: false } },
      both,
    );
    assert.equal(ok.status, 200, ok.text);
    const added = await arm(
      'PUT',
      `${vaultPath(s, 'keyed')}/accessPolicies/add`,
      { properties: { accessPolicies: [policy(sp.id)] } },
      both,
    );
    assert.equal(added.status, 200, added.text);
  });

  test('14.3: a manifest that sets access policies or flips the model needs roleAssignments:write, dry run included', async () => {
    const apply = (key: { key: string }, body: unknown, dryRun: boolean) =>
      s.request('POST', `/api/provisioning/apply?dryRun=${dryRun}`, {
        headers: { authorization: `ProvisioningKey ${key.key}` },
        json: body,
      });
    const sp = await vaultPrincipal(s, 'manifest-reader');
    const manifest = (vault: Record<string, unknown>) => ({
      apiVersion: 'latchkey/v1',
      tenant: s.info.tenantId,
      vaults: [vault],
    });
    const withPolicies = manifest({
      name: 'man-kv',
      enableRbacAuthorization: false,
      accessPolicies: [{ principal: { servicePrincipal: sp.appId }, permissions: { secrets: ['get'] } }],
    });
    const vw = await newKey(['vaults:write']);
    for (const dryRun of [true, false]) {
      const r = await apply(vw, withPolicies, dryRun);
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json.error.code, 'ProvisioningScopeMissing');
      assert.match(r.json.error.message, /roleAssignments:write/);
    }
    assert.equal(await s.services.vaults.byName('man-kv'), undefined);
    // Without policies the vault is created; flipping its model later is refused the same way.
    const plain = await apply(vw, manifest({ name: 'man-kv' }), false);
    assert.equal(plain.status, 200, plain.text);
    const flip = await apply(vw, manifest({ name: 'man-kv', enableRbacAuthorization: false }), true);
    assert.equal(flip.status, 403, flip.text);
    assert.match(flip.json.error.message, /roleAssignments:write/);
    const both = await newKey(['vaults:write', 'roleAssignments:write']);
    const ok = await apply(both, withPolicies, false);
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await s.services.vaults.byName('man-kv'))?.enableRbacAuthorization, false);
    // The same policy, but compound (only through one application), is not what the manifest
    // declares: the plan must not call it unchanged and leave the plain grant unapplied.
    const compound = '0b1d2c3e-4f50-4a6b-9c7d-8e9fa0b1c2d3';
    for (const [op, p] of [
      ['add', policy(sp.id, ['get'], compound)],
      ['remove', policy(sp.id, ['get'])],
    ] as const) {
      const r = await arm('PUT', `${vaultPath(s, 'man-kv')}/accessPolicies/${op}`, {
        properties: { accessPolicies: [p] },
      });
      assert.equal(r.status, 200, r.text);
    }
    assert.deepEqual(
      (await s.services.vaults.byName('man-kv'))?.accessPolicies.map((p) => p.applicationId),
      [compound],
    );
    const plan = await apply(both, withPolicies, true);
    assert.equal(plan.status, 200, plan.text);
    assert.equal(
      plan.json.plan.find((x: { kind: string }) => x.kind === 'vault').action,
      'update',
      JSON.stringify(plan.json.plan),
    );
  });

  test('14.8: a soft-deleted vault is recovered only in its own resource group', async () => {
    assert.equal(
      (await arm('PUT', `${sub}/resourcegroups/team-b`, { location: 'local' }, admin, '2022-09-01')).status,
      201,
    );
    const created = await arm('PUT', vaultPath(s, 'rec-kv'), {
      location: 'local',
      properties: { enableRbacAuthorization: true },
    });
    assert.equal(created.status, 201);
    assert.equal((await arm('DELETE', vaultPath(s, 'rec-kv'))).status, 200);
    const sp = await vaultPrincipal(s, 'team-b-contributor');
    await grant(s, sp.id, 'Contributor', rgScope('team-b'));
    const t = await mgmtToken(sp);
    const recover = { location: 'local', properties: { createMode: 'recover' } };
    for (const who of [t, admin]) {
      const r = await arm('PUT', vaultPath(s, 'rec-kv', 'team-b'), recover, who);
      assert.equal(r.status, 404, r.text);
      assert.equal(r.json.error.code, 'ResourceNotFound');
    }
    assert.equal((await arm('GET', vaultPath(s, 'rec-kv', 'team-b'))).status, 404);
    assert.equal((await arm('GET', vaultPath(s, 'rec-kv'))).status, 404, 'still deleted');
    const deleted = await arm(
      'GET',
      `${sub}/providers/Microsoft.KeyVault/locations/local/deletedVaults/rec-kv`,
    );
    assert.equal(deleted.status, 200);
    assert.equal(deleted.json.properties.vaultId, created.json.id);
    // The team-b Contributor cannot see, purge or recover it where it lives either.
    assert.equal(
      (
        await arm(
          'GET',
          `${sub}/providers/Microsoft.KeyVault/locations/local/deletedVaults/rec-kv`,
          undefined,
          t,
        )
      ).status,
      403,
    );
    assert.equal(
      (
        await arm(
          'POST',
          `${sub}/providers/Microsoft.KeyVault/locations/local/deletedVaults/rec-kv/purge`,
          undefined,
          t,
        )
      ).status,
      403,
    );
    assert.equal((await arm('PUT', vaultPath(s, 'rec-kv'), recover, t)).status, 403);
    const ok = await arm('PUT', vaultPath(s, 'rec-kv'), recover);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.id, created.json.id);
  });

  test('14.10: a compound policy (objectId + applicationId) grants only that application acting for that user', async () => {
    const app = await s.services.principals.createServicePrincipal(s.info.tenantId, {
      displayName: 'compound-client',
      publicClient: true,
    });
    const userToken = async (clientId: string) => {
      const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'password',
          client_id: clientId,
          username: s.admin.userName,
          password: s.admin.password,
          scope: `${s.info.vaultResource}/.default`,
        },
      });
      assert.equal(r.status, 200, r.text);
      return r.json.access_token as string;
    };
    const viaApp = await userToken(app.appId!);
    const viaCli = await userToken(CLI_CLIENT);
    const oid = String(decodeJwt(viaApp).oid);
    assert.equal(decodeJwt(viaApp).appid, app.appId);

    // Its own resource group, so the export below sees only this vault.
    const rg = await arm(
      'PUT',
      `${sub}/resourcegroups/compound-rg`,
      { location: 'local' },
      admin,
      '2022-09-01',
    );
    assert.equal(rg.status, 201);
    const v = await arm('PUT', vaultPath(s, 'compound', 'compound-rg'), {
      location: 'local',
      properties: {
        enableRbacAuthorization: false,
        accessPolicies: [policy(oid.toUpperCase(), ['get', 'set'], app.appId!.toUpperCase())],
      },
    });
    assert.equal(v.status, 201, v.text);
    assert.deepEqual(v.json.properties.accessPolicies, [
      {
        tenantId: s.info.tenantId,
        objectId: oid,
        applicationId: app.appId,
        permissions: { secrets: ['get', 'set'] },
      },
    ]);
    assert.equal((await data('compound', viaApp, 'PUT', '/secrets/c', { value: 'x' })).status, 200);
    assert.equal((await data('compound', viaApp, 'GET', '/secrets/c')).json.value, 'x');
    const other = await data('compound', viaCli, 'GET', '/secrets/c');
    assert.equal(other.status, 403, 'the same user through another application');
    assert.match(other.json.error.message, /secrets get permission/);

    // A service principal whose own policy names another application: refused; naming its own: allowed.
    const sp = await vaultPrincipal(s, 'compound-sp');
    const spToken = await vaultToken(s, sp);
    const change = (kind: string, p: unknown) =>
      arm('PUT', `${vaultPath(s, 'compound', 'compound-rg')}/accessPolicies/${kind}`, {
        properties: { accessPolicies: [p] },
      });
    assert.equal((await change('add', policy(sp.id, ['get'], app.appId!))).status, 200);
    assert.equal((await data('compound', spToken, 'GET', '/secrets/c')).status, 403);
    assert.equal((await change('add', policy(sp.id, ['get'], sp.appId))).status, 200);
    assert.equal((await data('compound', spToken, 'GET', '/secrets/c')).status, 200);

    // A plain policy for the user grants through any application.
    assert.equal((await change('add', policy(oid, ['get']))).status, 200);
    assert.equal((await data('compound', viaCli, 'GET', '/secrets/c')).status, 200);
    // ... and removing it takes away only the plain entry; the compound one stays.
    const removed = await change('remove', policy(oid, ['get']));
    assert.equal(removed.status, 200);
    assert.equal((await data('compound', viaCli, 'GET', '/secrets/c')).status, 403);
    assert.equal((await data('compound', viaApp, 'GET', '/secrets/c')).status, 200);

    // An export leaves the compound entry out (a manifest cannot say "only through application X"),
    // rather than widen it to the user through every application.
    assert.equal((await change('add', policy(sp.id, ['list']))).status, 200);
    assert.equal((await change('add', policy(oid, ['list']))).status, 200); // the export lists secrets
    const exported = await s.request('GET', '/api/provisioning/export?resourceGroup=compound-rg', {
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(exported.status, 200, exported.text);
    const ev = exported.json.vaults.find((x: { name: string }) => x.name === 'compound');
    assert.deepEqual(
      ev.accessPolicies.map((p: { principal: unknown }) => p.principal),
      [{ servicePrincipal: sp.appId }, { user: s.admin.userName }],
      'only the two plain policies',
    );

    // applicationId must be a GUID.
    for (const bad of ['not-a-guid', '12345']) {
      const put = await arm('PUT', vaultPath(s, 'compound', 'compound-rg'), {
        location: 'local',
        properties: { accessPolicies: [policy(oid, ['get'], bad)] },
      });
      assert.equal(put.status, 400, bad);
      assert.match(put.json.error.message, /applicationId must be a GUID/);
      assert.equal((await change('add', policy(oid, ['get'], bad))).status, 400);
    }
  });

  test('console: a Contributor cannot switch the model or edit policies; compound policies are shown and removed as such', async () => {
    const created = await arm('PUT', vaultPath(s, 'con-kv'), {
      location: 'local',
      properties: { enableRbacAuthorization: true },
    });
    assert.equal(created.status, 201);
    const password = 'contributor-Pa55word!';
    const user = await s.services.principals.createUser(s.info.tenantId, {
      userName: 'contrib@latchkey.localhost',
      displayName: 'Contributor',
      password,
    });
    await grant(s, user.id, 'Contributor', rgScope());
    const c = await consoleSignIn(s, { userName: 'contrib@latchkey.localhost', password });
    const base = '/console/vaults/default/con-kv';
    const post = async (page: string, action: string, form: Record<string, string | string[]>) => {
      const p = await c.get(page);
      assert.equal(p.status, 200, p.text.slice(0, 300));
      const token = c.csrf(p.text, action);
      assert.ok(token, `no form for ${action}`);
      return c.post(action, { ...form, _csrf: token! });
    };
    const model = await post(base, `${base}/properties`, { model: 'policies' });
    assert.equal(model.status, 403);
    assert.match(model.text, /Microsoft\.Authorization\/roleAssignments\/write/);
    const pol = await post(`${base}/access-policies`, `${base}/access-policies`, {
      principal: user.id,
      secrets: ['get', 'list'],
    });
    assert.equal(pol.status, 403);
    assert.match(pol.text, /Microsoft\.Authorization\/roleAssignments\/write/);
    const v = (await arm('GET', vaultPath(s, 'con-kv'))).json.properties;
    assert.equal(v.enableRbacAuthorization, true);
    assert.deepEqual(v.accessPolicies, []);

    // The admin's console: a compound policy names its application; Remove takes exactly the entry shown.
    const appId = '0b1d2c3e-4f50-4a6b-9c7d-8e9fa0b1c2d3';
    await arm('PUT', `${vaultPath(s, 'con-kv')}/accessPolicies/add`, {
      properties: { accessPolicies: [policy(user.id, ['get'], appId), policy(user.id, ['list'])] },
    });
    const a = await consoleSignIn(s);
    const page = await a.get(`${base}/access-policies`);
    assert.match(page.text, new RegExp(`only through application</span> <[^>]+>${appId}<`));
    const token = a.csrf(page.text, `${base}/access-policies/remove`);
    const removed = await a.post(`${base}/access-policies/remove`, {
      objectId: user.id,
      applicationId: '',
      _csrf: token!,
    });
    assert.equal(removed.status, 303, removed.text.slice(0, 300));
    assert.deepEqual(
      (await arm('GET', vaultPath(s, 'con-kv'))).json.properties.accessPolicies,
      [policy(user.id, ['get'], appId)],
      'the plain entry went; the compound one stays',
    );
  });

  test('CLI: a Contributor’s keyvault update / set-policy / create with a self policy are refused, naming the action', async () => {
    await arm('PUT', vaultPath(s, 'cli-kv'), {
      location: 'local',
      properties: { enableRbacAuthorization: false },
    });
    const sp = await vaultPrincipal(s, 'cli-contributor');
    await grant(s, sp.id, 'Contributor', rgScope());
    const u = cliUser();
    try {
      const g = ['--server', s.info.authority, '--ca-file', s.info.caCertPath];
      const run = (...args: string[]) => u.run(...g, ...args);
      const login = await run(
        'login',
        '--service-principal',
        '-u',
        sp.appId,
        '-p',
        sp.secret,
        '-t',
        s.info.tenantId,
        '-o',
        'none',
      );
      assert.equal(login.code, 0, login.stderr);
      for (const args of [
        ['keyvault', 'update', '-n', 'cli-kv', '--enable-rbac-authorization', 'true'],
        ['keyvault', 'set-policy', '-n', 'cli-kv', '--object-id', sp.id, '--secret-permissions', 'get'],
        ['keyvault', 'create', '-n', 'cli-own', '--enable-rbac-authorization', 'false'],
      ]) {
        const r = await run(...args);
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
        assert.match(r.stderr, /^ERROR: .*Microsoft\.Authorization\/roleAssignments\/write/, args.join(' '));
      }
      assert.equal((await arm('GET', vaultPath(s, 'cli-own'))).status, 404);
      // Without the self policy the vault grants nothing, so it may be created.
      const own = await run(
        'keyvault',
        'create',
        '-n',
        'cli-own',
        '--enable-rbac-authorization',
        'false',
        '--no-self-perms',
      );
      assert.equal(own.code, 0, own.stderr);
      assert.deepEqual((await arm('GET', vaultPath(s, 'cli-kv'))).json.properties.accessPolicies, []);
    } finally {
      u.cleanup();
    }
  });
});

// The check runs inside the vault transaction: on PostgreSQL its role lookup uses that transaction's
// connection, and a refusal rolls back.
describe('vault access changes on PostgreSQL', () => {
  let s: TestServer;
  let schema: TestSchema;
  before(async () => {
    schema = await createTestSchema();
    s = await startTestServer({ storageUrl: schema.url });
  });
  after(async () => {
    await s?.stop();
    await schema?.drop();
  });

  test('a Contributor is refused (nothing created or changed); an Owner may', async () => {
    const admin = await s.adminToken();
    const arm = (method: string, path: string, json: unknown, token: string) =>
      s.request(method, `${path}?api-version=${OLD}`, {
        headers: { authorization: `Bearer ${token}` },
        json,
      });
    const sp = await vaultPrincipal(s, 'pg-contributor');
    await grant(s, sp.id, 'Contributor', `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`);
    const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: sp.appId,
        client_secret: sp.secret,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    const t = r.json.access_token as string;
    const self = { tenantId: s.info.tenantId, objectId: sp.id, permissions: { secrets: ['all'] } };
    const created = await arm(
      'PUT',
      vaultPath(s, 'pg-kv'),
      { location: 'local', properties: { enableRbacAuthorization: true } },
      admin,
    );
    assert.equal(created.status, 201, created.text);
    const flip = await arm(
      'PATCH',
      vaultPath(s, 'pg-kv'),
      { properties: { enableRbacAuthorization: false, accessPolicies: [self] } },
      t,
    );
    assert.equal(flip.status, 403, flip.text);
    assert.match(flip.json.error.message, GRANT_ACTION);
    const mine = await arm(
      'PUT',
      vaultPath(s, 'pg-own'),
      { location: 'local', properties: { accessPolicies: [self] } },
      t,
    );
    assert.equal(mine.status, 403, mine.text);
    assert.equal(await s.services.vaults.byName('pg-own'), undefined);
    assert.equal((await s.services.vaults.byName('pg-kv'))?.enableRbacAuthorization, true);
    const owner = await arm(
      'PATCH',
      vaultPath(s, 'pg-kv'),
      { properties: { enableRbacAuthorization: false } },
      admin,
    );
    assert.equal(owner.status, 200, owner.text);
  });
});
