import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findRole } from '../src/access/roles.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import { grant, vaultPath, vaultPrincipal, vaultToken } from './helpers/vault.js';

// From 2026-02-01 a new vault is RBAC unless the body says otherwise (older versions: vault.permission-model.test.ts).
const V = 'api-version=2026-02-01';

describe('vault management (ARM Microsoft.KeyVault/vaults)', () => {
  let s: TestServer;
  let admin: string;
  const arm = async (method: string, path: string, json?: unknown, token = admin) =>
    s.request(method, path.includes('api-version') ? path : `${path}${path.includes('?') ? '&' : '?'}${V}`, {
      headers: { authorization: `Bearer ${token}` },
      ...(json !== undefined ? { json } : {}),
    });
  const sub = () => `/subscriptions/${s.info.subscriptionId}`;

  before(async () => {
    s = await startTestApp();
    admin = await s.adminToken();
  });
  after(async () => {
    await s?.stop();
  });

  test('subscriptions and resource groups', async () => {
    const subs = await arm('GET', '/subscriptions?api-version=2022-12-01');
    assert.equal(subs.status, 200);
    assert.deepEqual(
      subs.json.value.map((x: { subscriptionId: string }) => x.subscriptionId),
      [s.info.subscriptionId],
    );
    assert.equal(subs.json.value[0].id, `/subscriptions/${s.info.subscriptionId}`);
    assert.equal(subs.json.value[0].tenantId, s.info.tenantId);
    assert.equal(subs.json.value[0].state, 'Enabled');
    const created = await arm('PUT', `${sub()}/resourcegroups/team-a`, { location: 'West Europe' });
    assert.equal(created.status, 201);
    assert.equal(created.json.location, 'westeurope');
    assert.equal(
      (await arm('PUT', `${sub()}/resourceGroups/team-a`, { location: 'westeurope' })).status,
      200,
    );
    const rgs = await arm('GET', `${sub()}/resourcegroups`);
    assert.deepEqual(rgs.json.value.map((g: { name: string }) => g.name).sort(), ['default', 'team-a']);
    assert.equal((await arm('GET', `${sub()}/resourcegroups/nope`)).status, 404);
    // an SP with no role sees no subscription
    const sp = await vaultPrincipal(s, 'nobody');
    const t = await spMgmtToken(s, sp);
    assert.deepEqual(
      (await arm('GET', '/subscriptions?api-version=2022-12-01', undefined, t)).json.value,
      [],
    );
  });

  test('create (201), update (200), patch, get, list; the shape Azure returns', async () => {
    const r = await arm('PUT', vaultPath(s, 'mgmt-one'), {
      location: 'local',
      tags: { env: 'dev' },
      properties: { tenantId: s.info.tenantId, sku: { family: 'A', name: 'standard' } },
    });
    assert.equal(r.status, 201);
    const port = new URL(s.info.authority).port;
    assert.equal(
      r.json.id,
      `/subscriptions/${s.info.subscriptionId}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/mgmt-one`,
    );
    assert.equal(r.json.name, 'mgmt-one');
    assert.equal(r.json.type, 'Microsoft.KeyVault/vaults');
    assert.equal(r.json.location, 'local');
    assert.deepEqual(r.json.tags, { env: 'dev' });
    const p = r.json.properties;
    assert.equal(p.tenantId, s.info.tenantId);
    assert.equal(p.vaultUri, `https://mgmt-one.vault.localhost:${port}/`);
    assert.equal(p.enableRbacAuthorization, true);
    assert.equal(p.enableSoftDelete, true);
    assert.equal(p.softDeleteRetentionInDays, 90);
    assert.equal(p.enablePurgeProtection, undefined);
    assert.deepEqual(p.sku, { family: 'A', name: 'standard' });
    assert.equal(p.provisioningState, 'Succeeded');
    assert.deepEqual(p.accessPolicies, []);
    // vaultUri is really reachable: the data plane answers there with its challenge
    const ch = await s.request('GET', `${p.vaultUri}secrets?api-version=7.5`);
    assert.equal(ch.status, 401);

    const again = await arm('PUT', vaultPath(s, 'mgmt-one'), { location: 'local', tags: { env: 'prod' } });
    assert.equal(again.status, 200);
    assert.deepEqual(again.json.tags, { env: 'prod' });
    const patched = await arm('PATCH', vaultPath(s, 'mgmt-one'), {
      properties: { enableRbacAuthorization: false },
    });
    assert.equal(patched.status, 200);
    assert.equal(patched.json.properties.enableRbacAuthorization, false);
    assert.deepEqual(patched.json.tags, { env: 'prod' }, 'PATCH keeps what it does not name');
    const got = await arm('GET', vaultPath(s, 'MGMT-ONE'));
    assert.equal(got.status, 200);
    assert.equal(got.json.properties.enableRbacAuthorization, false);

    await arm('PUT', vaultPath(s, 'mgmt-two', 'team-b').replace('team-b', 'default'), { location: 'local' });
    const all = await arm('GET', `${sub()}/providers/Microsoft.KeyVault/vaults`);
    assert.ok(
      ['mgmt-one', 'mgmt-two'].every((n) => all.json.value.some((v: { name: string }) => v.name === n)),
      "['mgmt-one', 'mgmt-two'].every((n) => all.json.value.some((v: { name: string }) => v.na...",
    );
    const inRg = await arm('GET', `${sub()}/resourceGroups/default/providers/Microsoft.KeyVault/vaults`);
    assert.ok(inRg.json.value.length >= 2, 'inRg.json.value.length >= 2');
    assert.equal((await arm('GET', vaultPath(s, 'absent'))).status, 404);
    assert.equal((await arm('GET', vaultPath(s, 'mgmt-one', 'nope'))).status, 404);
  });

  test('api-version is required (any dated version)', async () => {
    const r = await s.request('GET', vaultPath(s, 'mgmt-one'), {
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'InvalidApiVersion');
    assert.equal((await arm('GET', `${vaultPath(s, 'mgmt-one')}?api-version=2019-09-01`)).status, 200);
    assert.equal(
      (await arm('GET', `${vaultPath(s, 'mgmt-one')}?api-version=2024-12-01-preview`)).status,
      200,
    );
    assert.equal((await arm('GET', `${vaultPath(s, 'mgmt-one')}?api-version=latest`)).status, 400);
  });

  test('validation: names, retention, purge protection, soft delete, bodies', async () => {
    for (const bad of ['ab', '1abc', 'a--b', 'abc-', `a${'b'.repeat(24)}`, 'a_b'])
      assert.equal((await arm('PUT', vaultPath(s, bad), { location: 'local' })).status, 400, bad);
    for (const days of [6, 91, 7.5])
      assert.equal(
        (await arm('PUT', vaultPath(s, 'retention'), { properties: { softDeleteRetentionInDays: days } }))
          .status,
        400,
        `retention ${days}`,
      );
    const ok = await arm('PUT', vaultPath(s, 'retention'), { properties: { softDeleteRetentionInDays: 7 } });
    assert.equal(ok.status, 201);
    assert.equal(ok.json.properties.softDeleteRetentionInDays, 7);
    assert.equal(
      (await arm('PATCH', vaultPath(s, 'retention'), { properties: { softDeleteRetentionInDays: 30 } }))
        .status,
      400,
    );
    assert.equal(
      (await arm('PUT', vaultPath(s, 'nosoft'), { properties: { enableSoftDelete: false } })).status,
      400,
    );
    assert.equal(
      (await arm('PUT', vaultPath(s, 'nopp'), { properties: { enablePurgeProtection: false } })).status,
      400,
    );
    assert.equal(
      (await arm('PUT', vaultPath(s, 'badbody'), { properties: { enableRbacAuthorization: 'yes' } })).status,
      400,
    );
    assert.equal(
      (await arm('PUT', vaultPath(s, 'badbody'), { properties: { sku: { name: 'gold' } } })).status,
      400,
    );
    assert.equal(
      (
        await arm('PUT', vaultPath(s, 'badbody'), {
          properties: { tenantId: '00000000-0000-0000-0000-000000000000' },
        })
      ).status,
      400,
    );
    assert.equal((await arm('GET', vaultPath(s, 'badbody'))).status, 404, 'refused PUTs created nothing');
  });

  test('soft delete, recover, purge; the name is held until purged; assignments go at purge', async () => {
    const created = await arm('PUT', vaultPath(s, 'lifecycle'), {
      location: 'local',
      properties: { softDeleteRetentionInDays: 10 },
    });
    const sp = await vaultPrincipal(s, 'lifecycle-user');
    await grant(s, sp.id, 'Key Vault Secrets Officer', created.json.id);
    await grant(s, sp.id, 'Key Vault Secrets User', `${created.json.id}/secrets/one`);
    const vtok = await vaultToken(s, sp);
    const base = s.vaultUrl('lifecycle');
    const data = (m: string, p: string, json?: unknown) =>
      s.request(m, `${base}${p}?api-version=7.5`, {
        headers: { authorization: `Bearer ${vtok}` },
        ...(json ? { json } : {}),
      });
    assert.equal((await data('PUT', '/secrets/one', { value: 'v1' })).status, 200);

    const del = await arm('DELETE', vaultPath(s, 'lifecycle'));
    assert.equal(del.status, 200);
    assert.equal((await arm('DELETE', vaultPath(s, 'lifecycle'))).status, 204);
    assert.equal((await arm('GET', vaultPath(s, 'lifecycle'))).status, 404);
    assert.equal((await data('GET', '/secrets/one')).json.error.code, 'VaultNotFound');
    const deleted = await arm('GET', `${sub()}/providers/Microsoft.KeyVault/deletedVaults`);
    const entry = deleted.json.value.find((v: { name: string }) => v.name === 'lifecycle');
    assert.equal(entry.type, 'Microsoft.KeyVault/deletedVaults');
    assert.equal(entry.id, `${sub()}/providers/Microsoft.KeyVault/locations/local/deletedVaults/lifecycle`);
    assert.equal(entry.properties.vaultId, created.json.id);
    assert.equal(entry.properties.purgeProtectionEnabled, false);
    assert.equal(
      Date.parse(entry.properties.scheduledPurgeDate) - Date.parse(entry.properties.deletionDate),
      10 * 86_400_000,
    );
    const one = await arm(
      'GET',
      `${sub()}/providers/Microsoft.KeyVault/locations/local/deletedVaults/lifecycle`,
    );
    assert.equal(one.status, 200);
    assert.equal(
      (await arm('GET', `${sub()}/providers/Microsoft.KeyVault/locations/elsewhere/deletedVaults/lifecycle`))
        .status,
      404,
    );

    const taken = await arm('PUT', vaultPath(s, 'lifecycle'), { location: 'local' });
    assert.equal(taken.status, 409);
    assert.match(taken.json.error.message, /recover|purge/i);
    assert.equal(
      (await s.services.access.list(s.info.tenantId, { principalId: sp.id })).length,
      2,
      'assignments kept',
    );

    const rec = await arm('PUT', vaultPath(s, 'lifecycle'), {
      location: 'local',
      properties: { createMode: 'recover' },
    });
    assert.equal(rec.status, 200);
    assert.equal((await data('GET', '/secrets/one')).json.value, 'v1', 'data and access survive a recover');

    const lifecycleId = (await s.services.vaults.byName('lifecycle'))!.id;
    const versionsOf = async () =>
      Number(
        (await s.services.db.get<{ n: number }>(
          'SELECT COUNT(*) AS n FROM secret_versions WHERE vault_id = $1',
          [lifecycleId],
        ))!.n,
      );
    assert.ok((await versionsOf()) > 0, 'the vault has secret versions before the purge');
    await arm('DELETE', vaultPath(s, 'lifecycle'));
    const purged = await arm(
      'POST',
      `${sub()}/providers/Microsoft.KeyVault/locations/local/deletedVaults/lifecycle/purge`,
    );
    assert.equal(purged.status, 200);
    assert.equal(
      (await s.services.access.list(s.info.tenantId, { principalId: sp.id })).length,
      0,
      'assignments purged',
    );
    // Purge removes the vault's secrets and every version (by the purged vault's own id: a join on
    // its name would find nothing once the vault row is gone, whatever was left behind).
    assert.equal(await versionsOf(), 0, 'secret versions purged');
    assert.equal(
      await s.services.db.get('SELECT 1 FROM secrets WHERE vault_id = $1', [lifecycleId]),
      undefined,
      'secrets purged',
    );
    const fresh = await arm('PUT', vaultPath(s, 'lifecycle'), { location: 'local' });
    assert.equal(fresh.status, 201, 'the name is free after purge');
    assert.equal(
      (await arm('PUT', vaultPath(s, 'nothing'), { properties: { createMode: 'recover' } })).status,
      404,
    );
  });

  test('purge protection: cannot be turned off; blocks purge of vaults and secrets before the date', async () => {
    const v = await arm('PUT', vaultPath(s, 'protected'), {
      properties: { enablePurgeProtection: true, softDeleteRetentionInDays: 7 },
    });
    assert.equal(v.json.properties.enablePurgeProtection, true);
    const off = await arm('PATCH', vaultPath(s, 'protected'), {
      properties: { enablePurgeProtection: false },
    });
    assert.equal(off.status, 400);
    assert.match(off.json.error.message, /enablePurgeProtection/);
    const sp = await vaultPrincipal(s, 'protected-user');
    await grant(s, sp.id, 'Key Vault Administrator', v.json.id);
    const vtok = await vaultToken(s, sp);
    const data = (m: string, p: string, json?: unknown) =>
      s.request(m, `${s.vaultUrl('protected')}${p}?api-version=7.5`, {
        headers: { authorization: `Bearer ${vtok}` },
        ...(json ? { json } : {}),
      });
    await data('PUT', '/secrets/kept', { value: 'x' });
    const del = await data('DELETE', '/secrets/kept');
    assert.equal(del.json.attributes.recoveryLevel, 'CustomizedRecoverable');
    assert.equal(del.json.attributes.recoverableDays, 7);
    const p = await data('DELETE', '/deletedsecrets/kept');
    assert.equal(p.status, 403);
    assert.match(p.json.error.message, /purge protection/);
    assert.equal((await data('GET', '/deletedsecrets/kept')).status, 200, 'still there');

    await arm('DELETE', vaultPath(s, 'protected'));
    const entry = await arm(
      'GET',
      `${sub()}/providers/Microsoft.KeyVault/locations/local/deletedVaults/protected`,
    );
    assert.equal(entry.json.properties.purgeProtectionEnabled, true);
    const purge = await arm(
      'POST',
      `${sub()}/providers/Microsoft.KeyVault/locations/local/deletedVaults/protected/purge`,
    );
    assert.equal(purge.status, 409);
    assert.equal(
      (await arm('GET', `${sub()}/providers/Microsoft.KeyVault/locations/local/deletedVaults/protected`))
        .status,
      200,
    );
  });

  test('access policies: add, replace, remove decide data access when RBAC is off', async () => {
    const v = await arm('PUT', vaultPath(s, 'policies'), { properties: { enableRbacAuthorization: false } });
    assert.equal(v.status, 201);
    const sp = await vaultPrincipal(s, 'policy-user');
    const vtok = await vaultToken(s, sp);
    const data = (m: string, p: string, json?: unknown) =>
      s.request(m, `${s.vaultUrl('policies')}${p}?api-version=7.5`, {
        headers: { authorization: `Bearer ${vtok}` },
        ...(json ? { json } : {}),
      });
    const policy = (secrets: string[]) => ({
      tenantId: s.info.tenantId,
      objectId: sp.id.toUpperCase(),
      permissions: { secrets },
    });
    const change = (kind: string, secrets: string[]) =>
      arm('PUT', `${vaultPath(s, 'policies')}/accessPolicies/${kind}`, {
        properties: { accessPolicies: [policy(secrets)] },
      });

    assert.equal((await data('PUT', '/secrets/p', { value: 'x' })).status, 403);
    const added = await change('add', ['Get', 'set']);
    assert.equal(added.status, 200);
    assert.deepEqual(added.json.properties.accessPolicies, [
      { tenantId: s.info.tenantId, objectId: sp.id, permissions: { secrets: ['get', 'set'] } },
    ]);
    assert.equal((await data('PUT', '/secrets/p', { value: 'x' })).status, 200);
    assert.equal((await data('GET', '/secrets/p')).json.value, 'x');
    const list403 = await data('GET', '/secrets');
    assert.equal(list403.status, 403);
    assert.match(list403.json.error.message, /secrets list permission/);
    await change('add', ['list']);
    assert.equal((await data('GET', '/secrets')).status, 200);
    const replaced = await change('replace', ['list']);
    assert.deepEqual(replaced.json.properties.accessPolicies[0].permissions.secrets, ['list']);
    assert.equal((await data('GET', '/secrets/p')).status, 403);
    const removed = await change('remove', ['list']);
    assert.deepEqual(removed.json.properties.accessPolicies, []);
    assert.equal((await data('GET', '/secrets')).status, 403);
    assert.equal((await change('add', ['fly'])).status, 400);
    assert.equal((await change('merge', ['get'])).status, 400);
    const viaPut = await arm('PUT', vaultPath(s, 'policies'), {
      properties: { accessPolicies: [policy(['all'])] },
    });
    assert.equal(viaPut.status, 200);
    assert.equal((await data('DELETE', '/secrets/p')).status, 200);
    // RBAC assignments do not count on an access-policy vault, and vice versa
    await grant(s, sp.id, 'Key Vault Secrets Officer', v.json.id);
    await arm('PUT', vaultPath(s, 'policies'), { properties: { accessPolicies: [] } });
    assert.equal((await data('GET', '/secrets')).status, 403);
  });

  test('authorization: control-plane actions need a role', async () => {
    const sp = await vaultPrincipal(s, 'ctl');
    const t = await spMgmtToken(s, sp);
    const put = await arm('PUT', vaultPath(s, 'ctl-vault'), { location: 'local' }, t);
    assert.equal(put.status, 403);
    assert.match(put.json.error.message, /Microsoft\.KeyVault\/vaults\/write/);
    await s.services.access.create(s.info.tenantId, {
      principalId: sp.id,
      role: findRole('Key Vault Contributor')!,
      scope: `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`,
    });
    assert.equal((await arm('PUT', vaultPath(s, 'ctl-vault'), { location: 'local' }, t)).status, 201);
    await s.services.access.create(s.info.tenantId, {
      principalId: sp.id,
      role: findRole('Reader')!,
      scope: vaultPath(s, 'mgmt-one'),
    });
    const list = await arm('GET', `${sub()}/providers/Microsoft.KeyVault/vaults`, undefined, t);
    assert.ok(
      list.json.value.some((v: { name: string }) => v.name === 'ctl-vault'),
      "list.json.value.some((v: { name: string }) => v.name === 'ctl-vault')",
    );
    const readerOnly = await vaultPrincipal(s, 'reader-only');
    await s.services.access.create(s.info.tenantId, {
      principalId: readerOnly.id,
      role: findRole('Reader')!,
      scope: vaultPath(s, 'mgmt-one'),
    });
    const rt = await spMgmtToken(s, readerOnly);
    const visible = await arm('GET', `${sub()}/providers/Microsoft.KeyVault/vaults`, undefined, rt);
    assert.deepEqual(
      visible.json.value.map((v: { name: string }) => v.name),
      ['mgmt-one'],
    );
    assert.equal((await arm('DELETE', vaultPath(s, 'mgmt-one'), undefined, rt)).status, 403);
  });

  test("another tenant's vaults are invisible (404), and vault names are unique across tenants", async () => {
    const t2 = await s.services.tenants.create({ displayName: 'Other', domain: 'other.localhost' });
    const sub2 = await s.services.scopes.defaultSubscription(t2.id);
    const owner2 = await vaultPrincipal(s, 'owner2', t2.id);
    await s.services.access.create(t2.id, { principalId: owner2.id, role: findRole('Owner')!, scope: '/' });
    const t2mgmt = await spMgmtToken(s, owner2, t2.id);
    const path2 = `/subscriptions/${sub2.subscriptionId}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/othervault`;
    const mine = await arm('PUT', path2, { location: 'local' }, t2mgmt);
    assert.equal(mine.status, 201);
    assert.equal(mine.json.properties.tenantId, t2.id);
    // the first tenant's admin cannot see or touch it
    assert.equal((await arm('GET', path2)).status, 404);
    assert.equal((await arm('DELETE', path2)).status, 404);
    assert.equal(
      (await arm('GET', `/subscriptions/${sub2.subscriptionId}/providers/Microsoft.KeyVault/vaults`)).status,
      404,
    );
    // its name is taken for everyone
    const clash = await arm('PUT', vaultPath(s, 'othervault'), { location: 'local' });
    assert.equal(clash.status, 409);
    assert.doesNotMatch(clash.json.error.message, new RegExp(t2.id));
    // data plane: tenant 1's principal gets 404; the challenge names tenant 2
    const sp1 = await vaultPrincipal(s, 'tenant1-user');
    await grant(s, sp1.id, 'Key Vault Administrator', '/');
    const r = await s.request('GET', `${s.vaultUrl('othervault')}/secrets?api-version=7.5`, {
      headers: { authorization: `Bearer ${await vaultToken(s, sp1)}` },
    });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'VaultNotFound');
    const ch = await s.request('GET', `${s.vaultUrl('othervault')}/secrets?api-version=7.5`);
    assert.match(String(ch.headers['www-authenticate']), new RegExp(`/${t2.id}"`));
    // and tenant 2's principal cannot reach tenant 1's vaults
    await grant(s, owner2.id, 'Key Vault Administrator', '/', t2.id);
    const back = await s.request('GET', `${s.vaultUrl('mgmt-one')}/secrets?api-version=7.5`, {
      headers: { authorization: `Bearer ${await vaultToken(s, owner2, t2.id)}` },
    });
    assert.equal(back.status, 404);
  });

  test('checkNameAvailability: names held in any tenant, active or soft-deleted; invalid names; HSM names all free', async () => {
    const check = (name: unknown, token = admin, subId = s.info.subscriptionId) =>
      arm(
        'POST',
        `/subscriptions/${subId}/providers/Microsoft.KeyVault/checkNameAvailability`,
        { name, type: 'Microsoft.KeyVault/vaults' },
        token,
      );
    assert.equal((await arm('PUT', vaultPath(s, 'name-held'), { location: 'local' })).status, 201);
    for (const n of ['name-held', 'NAME-HELD']) {
      const r = await check(n);
      assert.equal(r.status, 200);
      assert.equal(r.json.nameAvailable, false);
      assert.equal(r.json.reason, 'AlreadyExists');
      assert.match(r.json.message, /already in use/);
    }
    assert.deepEqual((await check('name-free-1')).json, { nameAvailable: true });
    // Held by another tenant: taken here too (names are unique per installation); its tenant is not named.
    const t2 = await s.services.tenants.create({ displayName: 'Names', domain: 'names.localhost' });
    const sub2 = await s.services.scopes.defaultSubscription(t2.id);
    const owner2 = await vaultPrincipal(s, 'names-owner', t2.id);
    await s.services.access.create(t2.id, { principalId: owner2.id, role: findRole('Owner')!, scope: '/' });
    const t2mgmt = await spMgmtToken(s, owner2, t2.id);
    const path2 = `/subscriptions/${sub2.subscriptionId}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/held-elsewhere`;
    assert.equal((await arm('PUT', path2, { location: 'local' }, t2mgmt)).status, 201);
    const other = await check('held-elsewhere');
    assert.equal(other.json.reason, 'AlreadyExists');
    assert.doesNotMatch(other.json.message, new RegExp(t2.id));
    // Soft-deleted: still held until purged.
    assert.equal((await arm('DELETE', vaultPath(s, 'name-held'))).status, 200);
    assert.equal((await check('name-held')).json.reason, 'AlreadyExists');
    for (const n of ['ab', 'a--b', '1abc', 'abc-', 'a'.repeat(25), 'bad_name']) {
      const r = await check(n);
      assert.equal(r.status, 200, n);
      assert.equal(r.json.nameAvailable, false, n);
      assert.equal(r.json.reason, 'AccountNameInvalid', n);
    }
    // Bad requests: wrong type, no api-version, no token, a subscription of another tenant.
    const wrongType = await arm('POST', `${sub()}/providers/Microsoft.KeyVault/checkNameAvailability`, {
      name: 'abc',
      type: 'Microsoft.Storage/storageAccounts',
    });
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.json.error.code, 'BadParameter');
    const noVersion = await s.request('POST', `${sub()}/providers/Microsoft.KeyVault/checkNameAvailability`, {
      headers: { authorization: `Bearer ${admin}` },
      json: { name: 'abc', type: 'Microsoft.KeyVault/vaults' },
    });
    assert.equal(noVersion.status, 400);
    const anon = await s.request('POST', `${sub()}/providers/Microsoft.KeyVault/checkNameAvailability?${V}`, {
      json: { name: 'abc', type: 'Microsoft.KeyVault/vaults' },
    });
    assert.equal(anon.status, 401);
    assert.equal((await check('abc', admin, sub2.subscriptionId)).status, 404);
    // Any authenticated caller of the tenant may ask (no role needed), as az does before create.
    const nobody = await spMgmtToken(s, await vaultPrincipal(s, 'name-asker'));
    assert.deepEqual((await check('name-free-2', nobody)).json, { nameAvailable: true });
    // Managed HSM: Latchkey has none, so every well-formed name is free.
    const mhsm = (name: string) =>
      arm('POST', `${sub()}/providers/Microsoft.KeyVault/checkMhsmNameAvailability`, { name });
    assert.deepEqual((await mhsm('name-held')).json, { nameAvailable: true });
    const badHsm = await mhsm('x');
    assert.equal(badHsm.status, 200);
    assert.equal(badHsm.json.reason, 'AccountNameInvalid');
  });
});

async function spMgmtToken(s: TestServer, p: { appId: string; secret: string }, tenantId = s.info.tenantId) {
  const r = await s.request('POST', `/${tenantId}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'client_credentials',
      client_id: p.appId,
      client_secret: p.secret,
      scope: `${s.info.managementResource}/.default`,
    },
  });
  if (r.status !== 200) throw new Error(`token: ${r.status} ${r.text}`);
  return r.json.access_token as string;
}
