import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Caller } from '../src/access/caller.js';
import { findRole } from '../src/access/roles.js';
import { fakeClock } from '../src/lib/clock.js';
import { bootstrapDefaults } from '../src/server/bootstrap.js';
import { loadDevConfig } from '../src/server/dev.js';
import { createServices, type Services } from '../src/server/services.js';
import { selfSignedRsaCert } from './helpers/certs.js';
import { startTestApp, type TestServer } from './helpers/server.js';

const meta = { requestId: 'test', clientIp: '127.0.0.1' };
const ISSUER = 'https://token.actions.example';

describe('provisioning keys over HTTP', () => {
  let s: TestServer;
  let admin: Record<string, string>;
  before(async () => {
    s = await startTestApp();
    admin = { authorization: `Bearer ${await s.adminToken()}` };
  });
  after(() => s.stop());

  const create = async (body: Record<string, unknown>) => {
    const r = await s.request('POST', '/api/provisioning/keys', { headers: admin, json: body });
    assert.equal(r.status, 201, r.text);
    return r.json as { id: string; key: string; scopes: string[]; state: string };
  };
  const useKey = (key: string) =>
    s.request('GET', '/api/account', { headers: { authorization: `ProvisioningKey ${key}` } });

  test('the value is shown once, stored hashed, and never listed', async () => {
    const k = await create({ scopes: ['hosts:enroll'], expiresInSeconds: 3600, displayName: 'pipeline' });
    assert.match(k.key, /^lkp_[a-z0-9]{16}\.[A-Za-z0-9_-]{43}$/);
    assert.ok(k.key.startsWith(`${k.id}.`), 'the visible prefix is the id');
    const list = await s.request('GET', '/api/provisioning/keys', { headers: admin });
    const show = await s.request('GET', `/api/provisioning/keys/${k.id}`, { headers: admin });
    for (const r of [list, show]) {
      assert.equal(r.status, 200);
      assert.ok(!r.text.includes(k.key.split('.')[1]!), 'the secret part never appears again');
    }
    assert.equal(show.json.key, undefined);
    const row = await s.services.db.get<{ key_hash: Buffer }>(
      'SELECT key_hash FROM provisioning_keys WHERE id = $1',
      [k.id],
    );
    assert.equal(Buffer.from(row!.key_hash).length, 32);
    assert.ok(
      !Buffer.from(row!.key_hash).toString('latin1').includes(k.key),
      "!Buffer.from(row!.key_hash).toString('latin1').includes(k.key)",
    );
  });

  test('a valid key authenticates and its use is counted and audited', async () => {
    const k = await create({ scopes: ['vaults:write'], expiresInSeconds: 3600 });
    const r = await useKey(k.key);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.tenantId, s.info.tenantId);
    const shown = await s.request('GET', `/api/provisioning/keys/${k.id}`, { headers: admin });
    assert.equal(shown.json.uses, 1);
    assert.ok(shown.json.lastUsedOn, 'shown.json.lastUsedOn');
    await s.services.audit.drain();
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, provisioningKeyId: k.id });
    assert.ok(
      events.some((e) => e.operation === 'ProvisioningKeyCreate'),
      "events.some((e) => e.operation === 'ProvisioningKeyCreate')",
    );
  });

  test('malformed and unknown keys are refused with ProvisioningKeyInvalid', async () => {
    for (const bad of [
      'nope',
      'lkp_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      `lkp_${'a'.repeat(300)}`,
    ]) {
      const r = await useKey(bad);
      assert.equal(r.status, 401);
      assert.equal(r.json.error.code, 'ProvisioningKeyInvalid');
    }
    const k = await create({ scopes: ['hosts:enroll'], expiresInSeconds: 3600 });
    const tampered = `${k.key.slice(0, -2)}${k.key.endsWith('AA') ? 'BB' : 'AA'}`;
    assert.equal((await useKey(tampered)).json.error.code, 'ProvisioningKeyInvalid');
  });

  test('revoke takes effect on the next use, and is audited', async () => {
    const k = await create({ scopes: ['apps:write'], expiresInSeconds: 3600 });
    assert.equal((await useKey(k.key)).status, 200);
    const rv = await s.request('POST', `/api/provisioning/keys/${k.id}/revoke`, { headers: admin });
    assert.equal(rv.status, 200);
    assert.equal(rv.json.state, 'revoked');
    const r = await useKey(k.key);
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'ProvisioningKeyRevoked');
    await s.services.audit.drain();
    const ops = (await s.services.audit.list({ tenantId: s.info.tenantId, provisioningKeyId: k.id })).map(
      (e) => e.operation,
    );
    assert.ok(ops.includes('ProvisioningKeyRevoke'), "ops.includes('ProvisioningKeyRevoke')");
    assert.ok(ops.includes('ProvisioningKeyAuthenticate'), 'the refused use is audited');
  });

  test('rotation with grace 0 ends the old key at once; the successor works', async () => {
    const k = await create({ scopes: ['apps:write'], expiresInSeconds: 3600 });
    const r = await s.request('POST', `/api/provisioning/keys/${k.id}/rotate`, {
      headers: admin,
      json: { graceSeconds: 0 },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.predecessorId, k.id);
    assert.deepEqual(r.json.scopes, ['apps:write']);
    assert.equal((await useKey(r.json.key)).status, 200);
    const old = await useKey(k.key);
    assert.equal(old.json.error.code, 'ProvisioningKeyExpired');
    assert.match(old.json.error.message, /successor/);
    // Only an active key can be rotated.
    const again = await s.request('POST', `/api/provisioning/keys/${k.id}/rotate`, {
      headers: admin,
      json: { graceSeconds: 0 },
    });
    assert.equal(again.status, 409);
  });

  test('a hosts:enroll key creates new hosts only, in its resource group; it never re-keys an existing host', async () => {
    const sub = `/subscriptions/${s.info.subscriptionId}`;
    const hostPath = (rg: string, name: string) =>
      `${sub}/resourceGroups/${rg}/providers/Microsoft.Latchkey/hosts/${name}?api-version=2024-01-01`;
    await s.services.scopes.ensureResourceGroup(s.info.tenantId, s.info.subscriptionId, 'pipeline-rg');
    const local = await s.services.hosts.ensureLocal(s.info.tenantId);
    const certsOf = async (principalId: string) =>
      (await s.services.credentials.list(s.info.tenantId, principalId)).map((c) => c.keyId).sort();
    const before = await certsOf(local.principalId);
    const attacker = await selfSignedRsaCert('attacker');
    const put = (key: string, rg: string, name: string) =>
      s.request('PUT', hostPath(rg, name), {
        headers: { authorization: `ProvisioningKey ${key}` },
        json: { properties: { certificate: attacker.certPem } },
      });
    // A key bound to another resource group reaches nothing outside it, hosts included.
    const bound = await create({
      scopes: ['hosts:enroll'],
      expiresInSeconds: 3600,
      resourceGroup: `${sub}/resourceGroups/pipeline-rg`,
    });
    const outside = await put(bound.key, 'default', 'local');
    assert.equal(outside.status, 403, outside.text);
    assert.equal(outside.json.error.code, 'ProvisioningScopeMissing');
    assert.equal((await put(bound.key, 'default', 'fresh-outside')).status, 403);
    // An unbound key cannot re-key the built-in host either.
    const unbound = await create({ scopes: ['hosts:enroll'], expiresInSeconds: 3600 });
    const takeover = await put(unbound.key, 'default', 'local');
    assert.equal(takeover.status, 409, takeover.text);
    assert.deepEqual(await certsOf(local.principalId), before, 'no certificate was added to the local host');
    // It enrols a new host inside its group, once; a second PUT on that host is refused too.
    const enrolled = await put(bound.key, 'pipeline-rg', 'ci-runner-1');
    assert.equal(enrolled.status, 201, enrolled.text);
    const again = await put(bound.key, 'pipeline-rg', 'ci-runner-1');
    assert.equal(again.status, 409, again.text);
    assert.match(again.json.error.message, /already exists/);
    const runner = await s.services.hosts.byName(s.info.tenantId, 'ci-runner-1');
    assert.equal((await certsOf(runner!.principalId)).length, 1);
    // Nor may a key delete a host.
    const del = await s.request('DELETE', hostPath('pipeline-rg', 'ci-runner-1'), {
      headers: { authorization: `ProvisioningKey ${bound.key}` },
    });
    assert.equal(del.status, 403, del.text);
    // An administrator (hosts/write by RBAC) may add a certificate to an enrolled host, never to the built-in one.
    const byAdmin = await s.request('PUT', hostPath('pipeline-rg', 'ci-runner-1'), {
      headers: admin,
      json: { properties: { certificate: (await selfSignedRsaCert('renewed')).certPem } },
    });
    assert.equal(byAdmin.status, 200, byAdmin.text);
    assert.equal((await certsOf(runner!.principalId)).length, 2);
    const adminLocal = await s.request('PUT', hostPath('default', 'local'), {
      headers: admin,
      json: { properties: { certificate: attacker.certPem } },
    });
    assert.equal(adminLocal.status, 400, adminLocal.text);
    assert.match(adminLocal.json.error.message, /built-in/);
    assert.deepEqual(await certsOf(local.principalId), before);
  });

  test('maximum uses and allowed addresses are enforced', async () => {
    const k = await create({ scopes: ['hosts:enroll'], expiresInSeconds: 3600, maxUses: 2 });
    assert.equal((await useKey(k.key)).status, 200);
    assert.equal((await useKey(k.key)).status, 200);
    const third = await useKey(k.key);
    assert.equal(third.json.error.code, 'ProvisioningKeyExhausted');
    const far = await create({
      scopes: ['hosts:enroll'],
      expiresInSeconds: 3600,
      allowedCidrs: ['10.0.0.0/8'],
    });
    const r = await useKey(far.key);
    assert.equal(r.json.error.code, 'ProvisioningKeyAddressNotAllowed');
    const near = await create({
      scopes: ['hosts:enroll'],
      expiresInSeconds: 3600,
      allowedCidrs: ['127.0.0.0/8', '::1/128'],
    });
    assert.equal((await useKey(near.key)).status, 200);
  });

  test('bad input is refused and creates nothing', async () => {
    const before = (await s.request('GET', '/api/provisioning/keys', { headers: admin })).json.value.length;
    const bad = [
      { scopes: [], expiresInSeconds: 3600 },
      { scopes: ['everything'], expiresInSeconds: 3600 },
      { scopes: ['hosts:enroll'] },
      { scopes: ['hosts:enroll'], expiresInSeconds: 10 },
      { scopes: ['hosts:enroll'], expiresInSeconds: 400 * 86400 },
      { scopes: ['hosts:enroll'], expiresInSeconds: 3600, allowedCidrs: ['not-a-cidr'] },
      { scopes: ['hosts:enroll'], expiresInSeconds: 3600, allowedCidrs: ['10.0.0.0/33'] },
      { scopes: ['hosts:enroll'], expiresInSeconds: 3600, maxUses: 0 },
      { scopes: ['hosts:enroll'], expiresInSeconds: 3600, resourceGroup: 'rg' },
    ];
    for (const body of bad) {
      const r = await s.request('POST', '/api/provisioning/keys', { headers: admin, json: body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.code, 'BadParameter');
    }
    const after = (await s.request('GET', '/api/provisioning/keys', { headers: admin })).json.value.length;
    assert.equal(after, before);
  });

  test('a provisioning key cannot manage provisioning keys', async () => {
    const k = await create({ scopes: ['hosts:enroll', 'apps:write'], expiresInSeconds: 3600 });
    const r = await s.request('POST', '/api/provisioning/keys', {
      headers: { authorization: `ProvisioningKey ${k.key}` },
      json: { scopes: ['hosts:enroll'], expiresInSeconds: 3600 },
    });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'ProvisioningScopeMissing');
  });
});

describe('provisioning keys: scopes, expiry and grace (fake clock)', () => {
  let dir: string;
  let services: Services;
  let adminCaller: Caller;
  const clock = fakeClock(Date.UTC(2026, 10, 21, 12));
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-pk-'));
    const { config } = await loadDevConfig({
      dataDir: dir,
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      federation: { allowedIssuers: [ISSUER] },
    });
    services = await createServices(config, { clock });
    const boot = await bootstrapDefaults(services);
    const user = await services.principals.byUserName(boot.tenantId, boot.adminUserName);
    adminCaller = { tenantId: boot.tenantId, oid: user!.principal.id, appId: null, kind: 'user' };
  });
  after(async () => {
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a key expires at its expiry, and the expiry is audited once', async () => {
    const k = await services.provisioningKeys.create(adminCaller, meta, {
      scopes: ['hosts:enroll'],
      expiresInSeconds: 600,
    });
    await services.provisioningKeys.authenticate(k.key, meta);
    clock.advance(601_000);
    await assert.rejects(services.provisioningKeys.authenticate(k.key, meta), {
      code: 'ProvisioningKeyExpired',
    });
    assert.equal((await services.provisioningKeys.show(adminCaller, k.id)).state, 'expired');
    await services.provisioningKeys.auditExpired();
    await services.provisioningKeys.auditExpired();
    const expiries = (
      await services.audit.list({ tenantId: adminCaller.tenantId, provisioningKeyId: k.id })
    ).filter((e) => e.operation === 'ProvisioningKeyExpire');
    assert.equal(expiries.length, 1);
  });

  test('after a rotation the old key works until the grace ends, then fails', async () => {
    const k = await services.provisioningKeys.create(adminCaller, meta, {
      scopes: ['apps:write'],
      expiresInSeconds: 3600,
    });
    const next = await services.provisioningKeys.rotate(adminCaller, meta, k.id, { graceSeconds: 300 });
    clock.advance(299_000);
    await services.provisioningKeys.authenticate(k.key, meta);
    await services.provisioningKeys.authenticate(next.key, meta);
    clock.advance(2_000);
    await assert.rejects(services.provisioningKeys.authenticate(k.key, meta), {
      code: 'ProvisioningKeyExpired',
    });
    await services.provisioningKeys.authenticate(next.key, meta);
  });

  test('a key is never more than its scopes, and stays in its resource group', async () => {
    const sub = await services.scopes.defaultSubscription(adminCaller.tenantId);
    const rg = `/subscriptions/${sub.subscriptionId}/resourceGroups/default`;
    const k = await services.provisioningKeys.create(adminCaller, meta, {
      scopes: ['vaults:write'],
      expiresInSeconds: 3600,
      resourceGroup: rg,
    });
    const caller = await services.provisioningKeys.authenticate(k.key, meta);
    await services.access.require(
      caller,
      'Microsoft.KeyVault/vaults/write',
      `${rg}/providers/Microsoft.KeyVault/vaults/v1`,
    );
    await assert.rejects(
      services.access.require(
        caller,
        'Microsoft.KeyVault/vaults/write',
        `/subscriptions/${sub.subscriptionId}/resourceGroups/other/providers/Microsoft.KeyVault/vaults/v1`,
      ),
      { code: 'ProvisioningScopeMissing', message: /limited to resource group/ },
    );
    await assert.rejects(
      services.access.require(caller, 'Microsoft.Web/sites/write', `${rg}/providers/Microsoft.Web/sites/a`),
      { code: 'ProvisioningScopeMissing', message: /needs the scope 'apps:write'/ },
    );
    // vaults:write is the control plane only: no secret data.
    await assert.rejects(
      services.access.require(
        caller,
        'Microsoft.KeyVault/vaults/secrets/setSecret/action',
        `${rg}/providers/Microsoft.KeyVault/vaults/v1`,
        true,
      ),
      { code: 'ProvisioningScopeMissing', message: /secrets:write/ },
    );
  });

  test('identities:write cannot act as an identity (federated credential, attach to an app): that is identities:assign', async () => {
    const sub = await services.scopes.defaultSubscription(adminCaller.tenantId);
    const at = { subscriptionId: sub.subscriptionId, resourceGroup: 'default' };
    // An identity the admin made and gave Owner at "/": acting as it is being Owner.
    const { identity: strong } = await services.userIdentities.createOrUpdate(adminCaller, meta, {
      ...at,
      name: 'release-owner',
    });
    await services.access.create(adminCaller.tenantId, {
      principalId: strong.principalId,
      role: findRole('Owner')!,
      scope: '/',
      createdBy: adminCaller.oid,
    });
    const fic = (name: string) => ({
      sub: at.subscriptionId,
      rg: 'default',
      identity: 'release-owner',
      name,
    });
    const attacker = {
      issuer: ISSUER,
      subject: 'repo:attacker/evil:ref:refs/heads/main',
      audiences: ['api://AzureADTokenExchange'],
    };
    const userAssigned = { type: 'UserAssigned', userAssignedIdentities: { [strong.armId]: {} } };
    // Every write scope but identities:assign (the scopes a pipeline key had before it existed).
    const k = await services.provisioningKeys.create(adminCaller, meta, {
      scopes: ['identities:write', 'apps:write', 'hosts:enroll', 'vaults:write', 'secrets:write'],
      expiresInSeconds: 3600,
    });
    const key = await services.provisioningKeys.authenticate(k.key, meta);
    await assert.rejects(services.federatedCredentials.createOrUpdate(key, meta, fic('planted'), attacker), {
      code: 'ProvisioningScopeMissing',
      message: /needs the scope 'identities:assign'/,
    });
    await assert.rejects(
      services.apps.createOrUpdate(key, meta, { ...at, name: 'borrower', identity: userAssigned }),
      { code: 'ProvisioningScopeMissing', message: /identities:assign/ },
    );
    assert.equal(await services.apps.byName(adminCaller.tenantId, 'borrower'), undefined, 'no app made');
    const none = await services.federatedCredentials.list(adminCaller, {
      sub: at.subscriptionId,
      rg: 'default',
      identity: 'release-owner',
    });
    assert.deepEqual(none, [], 'no credential planted');
    // What identities:write still does: its own identities, and reading and deleting credentials.
    await services.userIdentities.createOrUpdate(key, meta, { ...at, name: 'made-by-key' });
    await services.federatedCredentials.createOrUpdate(adminCaller, meta, fic('by-admin'), {
      ...attacker,
      subject: 'repo:org/shop:ref:refs/heads/main',
    });
    assert.equal(
      (
        await services.federatedCredentials.list(key, {
          sub: at.subscriptionId,
          rg: 'default',
          identity: 'release-owner',
        })
      ).length,
      1,
    );
    await services.federatedCredentials.delete(key, meta, fic('by-admin'));
    // With identities:assign, both are allowed (and documented as acting as the identity).
    const k2 = await services.provisioningKeys.create(adminCaller, meta, {
      scopes: ['identities:assign', 'apps:write', 'hosts:enroll'],
      expiresInSeconds: 3600,
    });
    const assigner = await services.provisioningKeys.authenticate(k2.key, meta);
    await services.federatedCredentials.createOrUpdate(assigner, meta, fic('allowed'), attacker);
    const made = await services.apps.createOrUpdate(assigner, meta, {
      ...at,
      name: 'borrower',
      identity: userAssigned,
    });
    assert.equal(made.created, true);
  });

  test('apps:write + hosts:enroll cannot move an app onto a host of its own (the host would read its settings)', async () => {
    const sub = await services.scopes.defaultSubscription(adminCaller.tenantId);
    const at = { subscriptionId: sub.subscriptionId, resourceGroup: 'default' };
    await services.apps.createOrUpdate(adminCaller, meta, { ...at, name: 'payroll' });
    await services.apps.replaceSettings(adminCaller, meta, at.subscriptionId, at.resourceGroup, 'payroll', {
      DB_PASSWORD: 'hunter2-prod',
    });
    const k = await services.provisioningKeys.create(adminCaller, meta, {
      scopes: ['apps:write', 'hosts:enroll'],
      expiresInSeconds: 3600,
    });
    const caller = await services.provisioningKeys.authenticate(k.key, meta);
    const { host } = await services.hosts.createOrUpdate(caller, meta, {
      ...at,
      name: 'edge-of-the-key',
      certificate: (await selfSignedRsaCert('edge-of-the-key')).certPem,
    });
    const before = (await services.apps.byName(adminCaller.tenantId, 'payroll'))!.hostId;
    // Before, this PATCH succeeded and the key's host read DB_PASSWORD from the host API.
    await assert.rejects(
      services.apps.createOrUpdate(caller, meta, { ...at, name: 'payroll', host: host.armId }, 'patch'),
      { code: 'ProvisioningScopeMissing' },
    );
    assert.equal((await services.apps.byName(adminCaller.tenantId, 'payroll'))!.hostId, before, 'not moved');
    // A new app placed on that host at creation has no settings to hand over: allowed.
    const placed = await services.apps.createOrUpdate(caller, meta, {
      ...at,
      name: 'fresh',
      host: host.armId,
    });
    assert.equal(placed.app.hostId, host.id);
    // An Owner (who may read the settings) may move it.
    await services.apps.createOrUpdate(
      adminCaller,
      meta,
      { ...at, name: 'payroll', host: host.armId },
      'patch',
    );
    assert.equal((await services.apps.byName(adminCaller.tenantId, 'payroll'))!.hostId, host.id);
  });

  test('a write scope never reads a sealed value: secrets:write has no getSecret/backup, apps:write no settings list', async () => {
    const sub = await services.scopes.defaultSubscription(adminCaller.tenantId);
    const rg = `/subscriptions/${sub.subscriptionId}/resourceGroups/default`;
    const k = await services.provisioningKeys.create(adminCaller, meta, {
      scopes: [
        'hosts:enroll',
        'identities:write',
        'apps:write',
        'vaults:write',
        'roleAssignments:write',
        'secrets:write',
      ],
      expiresInSeconds: 3600,
    });
    const caller = await services.provisioningKeys.authenticate(k.key, meta);
    const secret = `${rg}/providers/Microsoft.KeyVault/vaults/v1/secrets/s1`;
    const app = `${rg}/providers/Microsoft.Web/sites/a1`;
    const S = 'Microsoft.KeyVault/vaults/secrets';
    for (const [action, scope, data] of [
      [`${S}/getSecret/action`, secret, true],
      [`${S}/backup/action`, secret, true],
      ['Microsoft.Web/sites/config/list/action', app, false],
    ] as const)
      assert.equal(await services.access.allows(caller, action, scope, data), false, action);
    for (const [action, scope, data] of [
      [`${S}/setSecret/action`, secret, true],
      [`${S}/readMetadata/action`, secret, true],
      [`${S}/delete`, secret, true],
      ['Microsoft.Web/sites/config/write', app, false],
      ['Microsoft.Web/sites/read', app, false],
    ] as const)
      assert.equal(await services.access.allows(caller, action, scope, data), true, action);
  });
});
