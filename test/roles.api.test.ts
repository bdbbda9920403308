import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { assignRole, createVault, ROLE_IDS, servicePrincipal, vaultArmPath } from './helpers/access.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import { grant, vaultPrincipal } from './helpers/vault.js';

const API = 'api-version=2022-04-01';
const authz = (scope: string, rest = 'roleAssignments') =>
  `${scope === '/' ? '' : scope}/providers/Microsoft.Authorization/${rest}`;

describe('role assignments and definitions (ARM API)', () => {
  let s: TestServer;
  let admin: Record<string, string>;
  let sub: string;
  let rg: string;
  let vault: { id: string };
  let target: { id: string; appId: string };

  before(async () => {
    s = await startTestApp();
    admin = { authorization: `Bearer ${await s.adminToken()}` };
    sub = `/subscriptions/${s.info.subscriptionId}`;
    rg = `${sub}/resourceGroups/default`;
    vault = await createVault(s, 'rolesvault');
    target = await servicePrincipal(s, 'roles-target');
  });
  after(async () => {
    await s?.stop();
  });

  const put = (scope: string, body: unknown, name: string = randomUUID(), headers = admin) =>
    s.request('PUT', `${authz(scope)}/${name}?${API}`, { headers, json: body });
  const body = (role: string, principalId = target.id) => ({
    properties: {
      roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${role}`,
      principalId,
    },
  });

  test('create at every scope kind: 201 with the ARM shape; the same PUT again is 200', async () => {
    const scopes = ['/', sub, rg, vault.id, `${vault.id}/secrets/db-password`, `${vault.id}/keys/signing`];
    for (const scope of scopes) {
      const name = randomUUID();
      const r = await put(scope, body(ROLE_IDS['Key Vault Reader']), name);
      assert.equal(r.status, 201, `${scope}: ${r.text}`);
      assert.equal(r.json.id, `${authz(scope)}/${name}`);
      assert.equal(r.json.name, name);
      assert.equal(r.json.type, 'Microsoft.Authorization/roleAssignments');
      assert.equal(r.json.properties.principalId, target.id);
      assert.equal(r.json.properties.principalType, 'ServicePrincipal');
      assert.equal(r.json.properties.scope, scope);
      assert.match(
        r.json.properties.roleDefinitionId,
        new RegExp(`/roleDefinitions/${ROLE_IDS['Key Vault Reader']}$`),
      );
      assert.match(r.json.properties.createdOn, /^\d{4}-\d\d-\d\dT/);
      const again = await put(scope, body(ROLE_IDS['Key Vault Reader']), name);
      assert.equal(again.status, 200, again.text);
      const got = await s.request('GET', `${authz(scope)}/${name}?${API}`, { headers: admin });
      assert.equal(got.status, 200);
      assert.deepEqual(got.json, r.json);
      const del = await s.request('DELETE', `${authz(scope)}/${name}?${API}`, { headers: admin });
      assert.equal(del.status, 200);
      assert.equal(del.json.id, r.json.id);
      const gone = await s.request('DELETE', `${authz(scope)}/${name}?${API}`, { headers: admin });
      assert.equal(gone.status, 204);
    }
    // A bare role GUID and a subscription-qualified id both work; scopes are canonicalised.
    const r = await put(rg.toLowerCase(), {
      properties: {
        roleDefinitionId: ROLE_IDS['Key Vault Secrets User'],
        principalId: target.id.toUpperCase(),
      },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.properties.scope, rg);
    const dup = await put(rg, {
      properties: {
        roleDefinitionId: `${sub}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS['Key Vault Secrets User']}`,
        principalId: target.id,
      },
    });
    assert.equal(dup.status, 409, 'same principal, role and scope under another name');
    const clash = await put(rg, body(ROLE_IDS.Reader), r.json.name);
    assert.equal(clash.status, 409, 'an existing name with other properties');
  });

  test('validation: bad names, roles, principals and scopes are 4xx and change nothing', async () => {
    const before = (await s.services.access.list(s.info.tenantId)).length;
    const cases: [
      string,
      Promise<{ status: number; json: { error: { code: string; message: string } } }>,
      number,
      string,
    ][] = [
      ['name not a GUID', put(rg, body(ROLE_IDS.Reader), 'not-a-guid'), 400, 'BadParameter'],
      ['unknown role', put(rg, body(randomUUID())), 400, 'BadParameter'],
      [
        'role by name',
        put(rg, { properties: { roleDefinitionId: 'Reader', principalId: target.id } }),
        400,
        'BadParameter',
      ],
      ['unknown principal', put(rg, body(ROLE_IDS.Reader, randomUUID())), 404, 'PrincipalNotFound'],
      ['principal not a GUID', put(rg, body(ROLE_IDS.Reader, 'bob')), 404, 'PrincipalNotFound'],
      [
        'missing body',
        s.request('PUT', `${authz(rg)}/${randomUUID()}?${API}`, { headers: admin }),
        400,
        'BadParameter',
      ],
      ['oversized principalId', put(rg, body(ROLE_IDS.Reader, 'x'.repeat(5000))), 400, 'BadParameter'],
      [
        'conditions',
        put(rg, { properties: { ...body(ROLE_IDS.Reader).properties, condition: 'true' } }),
        400,
        'BadParameter',
      ],
      [
        'unknown subscription',
        put(`/subscriptions/${randomUUID()}`, body(ROLE_IDS.Reader)),
        404,
        'ResourceNotFound',
      ],
      [
        'unknown resource group',
        put(`${sub}/resourceGroups/nope`, body(ROLE_IDS.Reader)),
        404,
        'ResourceNotFound',
      ],
      ['unknown vault', put(vaultArmPath(s, 'novault'), body(ROLE_IDS.Reader)), 404, 'ResourceNotFound'],
      [
        'unknown resource type',
        put(`${rg}/providers/Microsoft.Foo/bars/x`, body(ROLE_IDS.Reader)),
        404,
        'ResourceNotFound',
      ],
      ['bad child of a vault', put(`${vault.id}/certificates/c`, body(ROLE_IDS.Reader)), 400, 'BadParameter'],
      ['bad secret name', put(`${vault.id}/secrets/a_b`, body(ROLE_IDS.Reader)), 400, 'BadParameter'],
      [
        'missing api-version',
        s.request('PUT', `${authz(rg)}/${randomUUID()}`, { headers: admin, json: body(ROLE_IDS.Reader) }),
        400,
        'InvalidApiVersion',
      ],
      [
        'unsupported method',
        s.request('POST', `${authz(rg)}?${API}`, { headers: admin, json: {} }),
        405,
        'MethodNotAllowed',
      ],
      [
        'bad filter',
        s.request('GET', `${authz(rg)}?${API}&$filter=foo`, { headers: admin }),
        400,
        'BadParameter',
      ],
    ];
    for (const [what, p, status, code] of cases) {
      const r = await p;
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, code, what);
    }
    assert.equal((await s.services.access.list(s.info.tenantId)).length, before);
    const anon = await s.request('GET', `${authz(rg)}?${API}`);
    assert.equal(anon.status, 401);
  });

  test("another tenant's principals and scopes are 404", async () => {
    const other = await s.services.tenants.create({ displayName: 'Other', domain: 'roles-other.example' });
    const foreign = await s.services.principals.createServicePrincipal(other.id, { displayName: 'foreign' });
    const r = await put(rg, body(ROLE_IDS.Reader, foreign.id));
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'PrincipalNotFound');
    const otherSub = await s.services.scopes.defaultSubscription(other.id);
    const r2 = await put(`/subscriptions/${otherSub.subscriptionId}`, body(ROLE_IDS.Reader));
    assert.equal(r2.status, 404);
    assert.equal(r2.json.error.code, 'ResourceNotFound');

    // An assignment's name is unique in its tenant: another tenant may use it (before migration
    // 0023 that PUT was 409, telling the other tenant the name was taken here).
    const mine = await put(rg, body(ROLE_IDS.Reader));
    assert.equal(mine.status, 201, mine.text);
    const name = mine.json.name as string;
    const owner = await vaultPrincipal(s, 'roles-other-owner', other.id);
    await grant(s, owner.id, 'Owner', '/', other.id);
    const token = await s.request('POST', `/${other.id}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: owner.appId,
        client_secret: owner.secret,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    const theirs = { authorization: `Bearer ${token.json.access_token}` };
    const otherScope = `/subscriptions/${otherSub.subscriptionId}`;
    const same = await put(otherScope, body(ROLE_IDS.Reader, foreign.id), name, theirs);
    assert.equal(same.status, 201, same.text);
    const del = await s.request('DELETE', `${authz(otherScope)}/${name}?${API}`, { headers: theirs });
    assert.equal(del.status, 200, del.text);
    const still = await s.request('GET', `${authz(rg)}/${name}?${API}`, { headers: admin });
    assert.equal(still.status, 200, 'ours is untouched by theirs');
    assert.equal(still.json.properties.principalId, target.id);
  });

  test('a soft-deleted vault is no longer a scope', async () => {
    const v = await createVault(s, 'rolesgone');
    const del = await s.request('DELETE', `${vaultArmPath(s, 'rolesgone')}?api-version=2023-07-01`, {
      headers: admin,
    });
    assert.equal(del.status, 200, del.text);
    const r = await put(v.id, body(ROLE_IDS.Reader));
    assert.equal(r.status, 404, r.text);
  });

  test('list: at, above and below by default; atScope(); principalId and assignedTo filters', async () => {
    const p = await servicePrincipal(s, 'roles-list');
    const atRoot = await assignRole(s, p.id, 'Reader', '/');
    const atRg = await assignRole(s, p.id, 'Key Vault Secrets User', rg);
    const atVault = await assignRole(s, p.id, 'Key Vault Secrets Officer', vault.id);
    const ids = async (scope: string, filter?: string) => {
      const r = await s.request(
        'GET',
        `${authz(scope)}?${API}${filter ? `&$filter=${encodeURIComponent(filter)}` : ''}`,
        { headers: admin },
      );
      assert.equal(r.status, 200, r.text);
      return (r.json.value as { id: string; properties: { principalId: string } }[])
        .filter((a) => a.properties.principalId === p.id)
        .map((a) => a.id)
        .sort();
    };
    assert.deepEqual(await ids(rg), [atRoot, atRg, atVault].sort());
    assert.deepEqual(await ids(rg, 'atScope()'), [atRoot, atRg].sort());
    assert.deepEqual(await ids(vault.id, `principalId eq '${p.id}'`), [atRoot, atRg, atVault].sort());
    assert.deepEqual(await ids(sub, `atScope() and assignedTo('${p.id}')`), [atRoot]);
    const onlyP = await s.request(
      'GET',
      `${authz('/')}?${API}&$filter=${encodeURIComponent(`principalId eq '${p.id}'`)}`,
      {
        headers: admin,
      },
    );
    assert.ok(
      onlyP.json.value.every(
        (a: { properties: { principalId: string } }) => a.properties.principalId === p.id,
      ),
      'onlyP.json.value.every( (a: { properties: { principalId: string } }) => a.properties.pr...',
    );
    // GET by name only at its own scope.
    const name = atRg.split('/').pop();
    assert.equal((await s.request('GET', `${authz(sub)}/${name}?${API}`, { headers: admin })).status, 404);
  });

  test('authorization: Owner writes, Contributor and Reader only read, a group Owner only below its group', async () => {
    const contributor = await servicePrincipal(s, 'roles-contributor');
    await assignRole(s, contributor.id, 'Contributor', '/');
    const ch = { authorization: `Bearer ${await contributor.token(s.info.managementResource)}` };
    const denied = await put(vault.id, body(ROLE_IDS['Key Vault Secrets User']), randomUUID(), ch);
    assert.equal(denied.status, 403);
    assert.match(denied.json.error.message, /Microsoft\.Authorization\/roleAssignments\/write/);
    assert.equal((await s.request('GET', `${authz(vault.id)}?${API}`, { headers: ch })).status, 200);

    const nobody = await servicePrincipal(s, 'roles-nobody');
    const nh = { authorization: `Bearer ${await nobody.token(s.info.managementResource)}` };
    const r = await s.request('GET', `${authz(rg)}?${API}`, { headers: nh });
    assert.equal(r.status, 403);
    assert.match(r.json.error.message, /roleAssignments\/read/);

    const rgOwner = await servicePrincipal(s, 'roles-rg-owner');
    await assignRole(s, rgOwner.id, 'Owner', rg);
    const oh = { authorization: `Bearer ${await rgOwner.token(s.info.managementResource)}` };
    const below = await put(vault.id, body(ROLE_IDS['Key Vault Secrets User']), randomUUID(), oh);
    assert.equal(below.status, 201, below.text);
    const del = await s.request('DELETE', `${below.json.id}?${API}`, { headers: ch });
    assert.equal(del.status, 403, 'Contributor cannot delete');
    assert.equal(
      (await put(sub, body(ROLE_IDS.Reader), randomUUID(), oh)).status,
      403,
      'not above its group',
    );
    assert.equal((await s.request('DELETE', `${below.json.id}?${API}`, { headers: oh })).status, 200);
  });

  test('changes and refusals are audited', async () => {
    const name = randomUUID();
    const created = await put(vault.id, body(ROLE_IDS['Key Vault Secrets User']), name);
    assert.equal(created.status, 201);
    await s.request('DELETE', `${created.json.id}?${API}`, { headers: admin });
    const nobody = await servicePrincipal(s, 'roles-audit-nobody');
    const nh = { authorization: `Bearer ${await nobody.token(s.info.managementResource)}` };
    assert.equal((await put(vault.id, body(ROLE_IDS.Reader), randomUUID(), nh)).status, 403);
    await s.services.audit.drain();
    const events = await s.services.audit.list({
      tenantId: s.info.tenantId,
      vault: 'rolesvault',
      limit: 1000,
    });
    const mine = events.filter((e) => e.target === created.json.id);
    assert.deepEqual(mine.map((e) => e.operation).sort(), ['RoleAssignmentCreate', 'RoleAssignmentDelete']);
    assert.equal(mine.find((e) => e.operation === 'RoleAssignmentCreate')!.details?.principalId, target.id);
    const refusal = events.find((e) => e.operation === 'RoleAssignmentCreate' && e.callerOid === nobody.id);
    assert.equal(refusal?.status, 403);
  });

  test('role definitions: list, filter by name, get by id, 404 for unknown', async () => {
    const all = await s.request('GET', `${authz('/', 'roleDefinitions')}?${API}`, { headers: admin });
    assert.equal(all.status, 200);
    const names = all.json.value.map((d: { properties: { roleName: string } }) => d.properties.roleName);
    for (const n of Object.keys(ROLE_IDS)) assert.ok(names.includes(n), n);
    const one = await s.request(
      'GET',
      `${authz(sub, 'roleDefinitions')}?${API}&$filter=${encodeURIComponent("roleName eq 'Key Vault Secrets User'")}`,
      { headers: admin },
    );
    assert.equal(one.json.value.length, 1);
    const d = one.json.value[0];
    assert.equal(
      d.id,
      `${sub}/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS['Key Vault Secrets User']}`,
    );
    assert.equal(d.properties.type, 'BuiltInRole');
    assert.deepEqual(d.properties.permissions[0].dataActions, [
      'Microsoft.KeyVault/vaults/secrets/getSecret/action',
      'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
    ]);
    const byId = await s.request('GET', `${authz('/', 'roleDefinitions')}/${ROLE_IDS.Owner}?${API}`, {
      headers: admin,
    });
    assert.equal(byId.json.properties.roleName, 'Owner');
    const nope = await s.request('GET', `${authz('/', 'roleDefinitions')}/${randomUUID()}?${API}`, {
      headers: admin,
    });
    assert.equal(nope.status, 404);
  });

  test('the wildcard routes coexist with the parametric ARM routes', async () => {
    const v = await s.request('GET', `${vaultArmPath(s, 'rolesvault')}?api-version=2023-07-01`, {
      headers: admin,
    });
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.name, 'rolesvault');
    const l = await s.request('GET', `${sub}/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01`, {
      headers: admin,
    });
    assert.equal(l.status, 200, l.text);
    const miss = await s.request('GET', `${sub}/resourceGroups/default/nothing/here?${API}`, {
      headers: admin,
    });
    assert.equal(miss.status, 404);
    assert.equal(miss.json.error.code, 'NotFound');
  });

  test('--assignee lookup: object id, app id or user name; needs directory read', async () => {
    for (const key of [target.id, target.appId]) {
      const r = await s.request('GET', `/api/access/principals/${key}`, { headers: admin });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.id, target.id);
      assert.equal(r.json.type, 'ServicePrincipal');
    }
    const u = await s.request('GET', `/api/access/principals/${encodeURIComponent(s.admin.userName)}`, {
      headers: admin,
    });
    assert.equal(u.json.type, 'User');
    assert.equal((await s.request('GET', '/api/access/principals/nobody@x', { headers: admin })).status, 404);
    const nobody = await servicePrincipal(s, 'roles-lookup-nobody');
    const nh = { authorization: `Bearer ${await nobody.token(s.info.managementResource)}` };
    assert.equal(
      (await s.request('GET', `/api/access/principals/${target.id}`, { headers: nh })).status,
      403,
    );
  });
});
