import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Caller } from '../src/access/caller.js';
import { assignRole, createVault, servicePrincipal, type TestPrincipal } from './helpers/access.js';
import { selfSignedRsaCert } from './helpers/certs.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * `DELETE /subscriptions/{sub}/resourcegroups/{name}` (az group delete): the group and everything in
 * it go (vaults soft-deleted), only for a caller who may delete the group; a Reader changes nothing.
 */
describe('ARM resource group delete', () => {
  let s: TestServer;
  let reader: TestPrincipal;
  let contributor: TestPrincipal;
  const meta = { clientIp: '127.0.0.1', requestId: 'rg-delete' };
  const rgPath = (rg: string, sub = s.info.subscriptionId) =>
    `/subscriptions/${sub}/resourcegroups/${rg}?api-version=2021-04-01`;
  const del = async (who: TestPrincipal | 'admin', rg: string, sub?: string) =>
    s.request('DELETE', rgPath(rg, sub), {
      headers: {
        authorization: `Bearer ${who === 'admin' ? await s.adminToken() : await who.token(s.info.managementResource)}`,
      },
    });
  const adminCaller = async (): Promise<Caller> => {
    const me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal;
    return { tenantId: s.info.tenantId, oid: me.id, appId: null, kind: 'user' };
  };

  /** A group with a vault, a user-assigned identity, an app with its own identity, and a role assignment. */
  async function filledGroup(rg: string) {
    const c = await adminCaller();
    await s.services.scopes.ensureResourceGroup(s.info.tenantId, s.info.subscriptionId, rg);
    const sub = s.info.subscriptionId;
    const r = await s.request(
      'PUT',
      `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.KeyVault/vaults/${rg}kv?api-version=2023-07-01`,
      {
        headers: { authorization: `Bearer ${await s.adminToken()}` },
        json: {
          location: 'local',
          properties: { sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true },
        },
      },
    );
    assert.equal(r.status, 201, r.text);
    const { identity } = await s.services.userIdentities.createOrUpdate(c, meta, {
      subscriptionId: sub,
      resourceGroup: rg,
      name: `${rg}-id`,
    });
    const { app } = await s.services.apps.createOrUpdate(c, meta, {
      subscriptionId: sub,
      resourceGroup: rg,
      name: `${rg}-app`,
      identity: { type: 'SystemAssigned' },
    });
    await assignRole(s, identity.principalId, 'Reader', `/subscriptions/${sub}/resourceGroups/${rg}`);
    return { identity, app };
  }

  before(async () => {
    s = await startTestServer();
    reader = await servicePrincipal(s, 'rg-reader');
    contributor = await servicePrincipal(s, 'rg-contributor');
    await assignRole(s, reader.id, 'Reader', `/subscriptions/${s.info.subscriptionId}`);
    await createVault(s, 'rgdelkeep');
  });
  after(async () => {
    await s?.stop();
  });

  test('a Reader gets 403 and nothing is deleted', async () => {
    const { identity, app } = await filledGroup('rgreadonly');
    const r = await del(reader, 'rgreadonly');
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /resourceGroups\/delete/);
    const c = await adminCaller();
    const sub = s.info.subscriptionId;
    assert.ok(
      await s.services.scopes.resourceGroup(s.info.tenantId, sub, 'rgreadonly'),
      "await s.services.scopes.resourceGroup(s.info.tenantId, sub, 'rgreadonly')",
    );
    assert.deepEqual(
      (await s.services.vaults.list(c, sub, 'rgreadonly')).map((v) => v.name),
      ['rgreadonlykv'],
    );
    assert.equal((await s.services.apps.list(c, sub, 'rgreadonly'))[0]?.name, app.name);
    assert.equal((await s.services.userIdentities.list(c, sub, 'rgreadonly'))[0]?.name, identity.name);
    assert.equal(
      (await s.services.access.list(s.info.tenantId, { principalId: identity.principalId })).length,
      1,
    );
  });

  test('a Contributor at the group deletes it and everything in it; vaults are soft-deleted', async () => {
    const { identity, app } = await filledGroup('rggone');
    const sub = s.info.subscriptionId;
    await assignRole(s, contributor.id, 'Contributor', `/subscriptions/${sub}/resourceGroups/rggone`);
    const r = await del(contributor, 'rggone');
    assert.equal(r.status, 200, r.text);
    const c = await adminCaller();
    await assert.rejects(
      s.services.scopes.resourceGroup(s.info.tenantId, sub, 'rggone'),
      /could not be found/,
    );
    const deleted = await s.services.vaults.listDeleted(c, sub);
    assert.ok(
      deleted.some((v) => v.name === 'rggonekv' && v.scheduledPurgeAt !== null),
      'soft-deleted',
    );
    assert.equal(await s.services.principals.get(s.info.tenantId, identity.principalId), undefined);
    assert.equal(await s.services.principals.get(s.info.tenantId, app.systemPrincipalId!), undefined);
    assert.deepEqual(
      (await s.services.access.list(s.info.tenantId, { principalId: contributor.id })).map((a) => a.scope),
      [],
      'assignments at the group are gone',
    );
    // Other groups keep their resources.
    assert.ok(
      (await s.services.vaults.list(c, sub, 'default')).some((v) => v.name === 'rgdelkeep'),
      "(await s.services.vaults.list(c, sub, 'default')).some((v) => v.name === 'rgdelkeep')",
    );
    // The events are audited under the caller.
    const ops = (
      await s.services.db.all<{ operation: string }>(
        'SELECT operation FROM audit_events WHERE caller_oid = $1 ORDER BY seq',
        [contributor.id],
      )
    ).map((e) => e.operation);
    assert.ok(ops.includes('VaultDelete') && ops.at(-1) === 'ResourceGroupDelete', ops.join(','));
  });

  test("a missing group is a 404; another tenant's subscription a 404; the built-in host's group a 409", async () => {
    const missing = await del('admin', 'rgnever');
    assert.equal(missing.status, 404, missing.text);
    const other = await s.services.tenants.create({ displayName: 'Other', domain: 'other-rgdel.example' });
    const otherSub = (await s.services.scopes.defaultSubscription(other.id)).subscriptionId;
    assert.equal((await del('admin', 'default', otherSub)).status, 404);
    // A host of the group running an app of another group: 409, nothing removed.
    const c = await adminCaller();
    const sub = s.info.subscriptionId;
    await s.services.scopes.ensureResourceGroup(s.info.tenantId, sub, 'rghosts');
    const { host } = await s.services.hosts.createOrUpdate(c, meta, {
      subscriptionId: sub,
      resourceGroup: 'rghosts',
      name: 'rghost1',
      certificate: (await selfSignedRsaCert('rghost1')).certPem,
    });
    await s.services.apps.createOrUpdate(c, meta, {
      subscriptionId: sub,
      resourceGroup: 'default',
      name: 'placed-elsewhere',
      host: host.armId,
    });
    const placed = await del('admin', 'rghosts');
    assert.equal(placed.status, 409, placed.text);
    assert.match(placed.text, /placed-elsewhere/);
    assert.equal((await s.services.hosts.list(c, sub, 'rghosts')).length, 1);
    const builtIn = await del('admin', 'default');
    assert.equal(builtIn.status, 409, builtIn.text);
    assert.match(builtIn.text, /built-in local host/);
    assert.ok(
      await s.services.scopes.resourceGroup(s.info.tenantId, s.info.subscriptionId, 'default'),
      "await s.services.scopes.resourceGroup(s.info.tenantId, s.info.subscriptionId, 'default')",
    );
  });
});
