import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { findRole } from '../src/access/roles.js';
import {
  assignRole,
  createVault,
  type RoleName,
  servicePrincipal,
  type TestPrincipal,
  unassignRole,
  vaultArmPath,
} from './helpers/access.js';
import { credentialOptions, secretTokenRequest } from './helpers/authority.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The authorization matrix: built-in roles at every kind of scope, and access
 * policies, against the real data plane. Each secret operation either
 * succeeds (2xx) or is refused with 403 Forbidden naming what is missing.
 */

const OPS = ['get', 'list', 'set', 'delete', 'recover', 'purge', 'backup', 'restore'] as const;
type Op = (typeof OPS)[number];
const ALL: readonly Op[] = OPS;

/** Azure's built-in roles and the secret operations each grants at vault scope. */
const MATRIX: Record<RoleName, readonly Op[]> = {
  Owner: [],
  Contributor: [],
  Reader: [],
  'Key Vault Administrator': ALL,
  'Key Vault Secrets Officer': ALL,
  'Key Vault Secrets User': ['get', 'list'],
  'Key Vault Reader': ['list'],
  'Key Vault Crypto Officer': [],
  'Key Vault Crypto User': [],
};

/** The data action Azure names in a refusal, per operation. */
const ACTION: Record<Op, string> = {
  get: 'Microsoft.KeyVault/vaults/secrets/getSecret/action',
  list: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
  set: 'Microsoft.KeyVault/vaults/secrets/setSecret/action',
  delete: 'Microsoft.KeyVault/vaults/secrets/delete',
  recover: 'Microsoft.KeyVault/vaults/secrets/recover/action',
  purge: 'Microsoft.KeyVault/vaults/secrets/purge/action',
  backup: 'Microsoft.KeyVault/vaults/secrets/backup/action',
  restore: 'Microsoft.KeyVault/vaults/secrets/restore/action',
};

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies, narrowed by assertions
  json: any;
  text: string;
}

describe('authorization matrix (RBAC and access policies) on the secrets data plane', () => {
  let s: TestServer;
  let setup: TestPrincipal;
  let setupToken: string;
  let rbacVault: { id: string; vaultUri: string };
  let policyVault: { id: string; vaultUri: string };
  let fixtureBackup: string;
  let counter = 0;

  const dp = async (
    vault: string,
    token: string,
    method: string,
    path: string,
    json?: unknown,
  ): Promise<Res> => {
    const sep = path.includes('?') ? '&' : '?';
    return s.request(method, `${s.vaultUrl(vault)}${path}${sep}api-version=7.5`, {
      headers: { authorization: `Bearer ${token}` },
      ...(json !== undefined ? { json } : {}),
    });
  };
  const must = async (p: Promise<Res>, status: number, what: string) => {
    const r = await p;
    assert.equal(r.status, status, `${what}: ${r.text.slice(0, 300)}`);
    return r;
  };

  /** Objects each operation needs, made by the setup principal, so an allowed call really succeeds. */
  const prepare = async (vault: string) => {
    const n = ++counter;
    const names = { set: `w-${n}`, del: `d-${n}`, rec: `r-${n}`, pur: `p-${n}`, rst: `x-${n}` };
    for (const name of [names.del, names.rec, names.pur, names.rst])
      await must(
        dp(vault, setupToken, 'PUT', `/secrets/${name}`, { value: `v-${name}` }),
        200,
        `prepare ${name}`,
      );
    const blob = (
      await must(dp(vault, setupToken, 'POST', `/secrets/${names.rst}/backup`), 200, 'prepare backup')
    ).json.value as string;
    for (const name of [names.rec, names.pur, names.rst]) {
      await must(dp(vault, setupToken, 'DELETE', `/secrets/${name}`), 200, `prepare delete ${name}`);
    }
    await must(dp(vault, setupToken, 'DELETE', `/deletedsecrets/${names.rst}`), 204, 'prepare purge');
    return { names, blob };
  };

  /** Runs every operation as `token` and returns the status of each. */
  const runAll = async (vault: string, token: string): Promise<Record<Op, Res>> => {
    const { names, blob } = await prepare(vault);
    return {
      get: await dp(vault, token, 'GET', '/secrets/fixture'),
      list: await dp(vault, token, 'GET', '/secrets?maxresults=5'),
      set: await dp(vault, token, 'PUT', `/secrets/${names.set}`, { value: 'new' }),
      delete: await dp(vault, token, 'DELETE', `/secrets/${names.del}`),
      recover: await dp(vault, token, 'POST', `/deletedsecrets/${names.rec}/recover`),
      purge: await dp(vault, token, 'DELETE', `/deletedsecrets/${names.pur}`),
      backup: await dp(vault, token, 'POST', '/secrets/fixture/backup'),
      restore: await dp(vault, token, 'POST', '/secrets/restore', { value: blob }),
    };
  };

  const assertRow = (who: string, results: Record<Op, Res>, allowed: readonly Op[], policy = false) => {
    for (const op of OPS) {
      const r = results[op];
      if (allowed.includes(op)) {
        assert.ok(
          r.status >= 200 && r.status < 300,
          `${who}: ${op} should be allowed, got ${r.status} ${r.text}`,
        );
      } else {
        assert.equal(r.status, 403, `${who}: ${op} should be refused, got ${r.status} ${r.text}`);
        assert.equal(r.json.error.code, 'Forbidden');
        if (!policy)
          assert.ok(
            r.json.error.message.includes(ACTION[op]),
            `${who}: ${op} message: ${r.json.error.message}`,
          );
        else assert.match(r.json.error.message, /permission/i);
      }
    }
    if (allowed.includes('get')) assert.equal(results.get.json.value, 'fixture-value');
  };

  before(async () => {
    s = await startTestServer();
    rbacVault = await createVault(s, 'matrixvault');
    policyVault = await createVault(s, 'policyvault', { enableRbacAuthorization: false });
    setup = await servicePrincipal(s, 'matrix-setup');
    await assignRole(s, setup.id, 'Key Vault Administrator', rbacVault.id);
    await policies('add', [{ objectId: setup.id, permissions: { secrets: ['all'] } }]);
    setupToken = await setup.token();
    await must(
      dp('matrixvault', setupToken, 'PUT', '/secrets/fixture', { value: 'fixture-value' }),
      200,
      'fixture',
    );
    await must(
      dp('matrixvault', setupToken, 'PUT', '/secrets/other', { value: 'other-value' }),
      200,
      'other',
    );
    await must(
      dp('policyvault', setupToken, 'PUT', '/secrets/fixture', { value: 'fixture-value' }),
      200,
      'fixture',
    );
    fixtureBackup = (await must(dp('matrixvault', setupToken, 'POST', '/secrets/fixture/backup'), 200, 'b'))
      .json.value;
  });
  after(async () => {
    await s?.stop();
  });

  const policies = async (
    kind: 'add' | 'replace' | 'remove',
    list: { objectId: string; permissions: { secrets?: string[]; keys?: string[] } }[],
  ) => {
    const r = await s.request(
      'PUT',
      `${vaultArmPath(s, 'policyvault')}/accessPolicies/${kind}?api-version=2023-07-01`,
      {
        headers: { authorization: `Bearer ${await s.adminToken()}` },
        json: { properties: { accessPolicies: list.map((p) => ({ tenantId: s.info.tenantId, ...p })) } },
      },
    );
    assert.equal(r.status, 200, r.text);
  };

  for (const [role, allowed] of Object.entries(MATRIX) as [RoleName, readonly Op[]][]) {
    test(`${role} at vault scope: allows ${allowed.length ? allowed.join(', ') : 'nothing'}`, async () => {
      const p = await servicePrincipal(s, `matrix-${role}`);
      await assignRole(s, p.id, role, rbacVault.id);
      assertRow(role, await runAll('matrixvault', await p.token()), allowed);
    });
  }

  test('scopes: subscription, resource group and tenant root grant below them', async () => {
    const sub = await servicePrincipal(s, 'matrix-sub');
    await assignRole(s, sub.id, 'Key Vault Secrets Officer', `/subscriptions/${s.info.subscriptionId}`);
    assertRow('Secrets Officer at subscription', await runAll('matrixvault', await sub.token()), ALL);

    const rg = await servicePrincipal(s, 'matrix-rg');
    await assignRole(
      s,
      rg.id,
      'Key Vault Secrets User',
      `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`,
    );
    assertRow('Secrets User at resource group', await runAll('matrixvault', await rg.token()), [
      'get',
      'list',
    ]);

    const root = await servicePrincipal(s, 'matrix-root');
    await assignRole(s, root.id, 'Key Vault Administrator', '/');
    assertRow('Administrator at tenant root', await runAll('matrixvault', await root.token()), ALL);
  });

  test('single-secret scope: only that secret, and no listing', async () => {
    const p = await servicePrincipal(s, 'matrix-one');
    await assignRole(s, p.id, 'Key Vault Secrets User', `${rbacVault.id}/secrets/fixture`);
    const t = await p.token();
    const ok = await dp('matrixvault', t, 'GET', '/secrets/fixture');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.value, 'fixture-value');
    assert.equal(
      (await dp('matrixvault', t, 'GET', '/secrets/FIXTURE')).status,
      200,
      'names are case-insensitive',
    );
    const other = await dp('matrixvault', t, 'GET', '/secrets/other');
    assert.equal(other.status, 403);
    assert.ok(other.json.error.message.includes(ACTION.get), 'other.json.error.message.includes(ACTION.get)');
    assert.equal((await dp('matrixvault', t, 'GET', '/secrets')).status, 403);
    assert.equal((await dp('matrixvault', t, 'PUT', '/secrets/fixture', { value: 'x' })).status, 403);
  });

  test('an assignment on another vault grants nothing here', async () => {
    const elsewhere = await createVault(s, 'matrixother');
    const p = await servicePrincipal(s, 'matrix-elsewhere');
    await assignRole(s, p.id, 'Key Vault Administrator', elsewhere.id);
    assertRow('Administrator on another vault', await runAll('matrixvault', await p.token()), []);
  });

  test('no assignment: 403 naming the action; through the official SecretClient too', async () => {
    const p = await servicePrincipal(s, 'matrix-none');
    const r = await dp('matrixvault', await p.token(), 'GET', '/secrets/fixture');
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'Forbidden');
    assert.ok(r.json.error.message.includes(ACTION.get), r.json.error.message);
    assert.ok(r.json.error.message.includes(p.id), 'names the caller');

    const cred = new ClientSecretCredential(s.info.tenantId, p.appId, p.secret, credentialOptions(s));
    const client = new SecretClient(s.vaultUrl('matrixvault'), cred, { agent: s.agent } as never);
    await assert.rejects(client.getSecret('fixture'), (e: { statusCode?: number; code?: string }) => {
      assert.equal(e.statusCode, 403);
      assert.equal(e.code, 'Forbidden');
      return true;
    });
    await assignRole(s, p.id, 'Key Vault Secrets User', rbacVault.id);
    assert.equal((await client.getSecret('fixture')).value, 'fixture-value');
    await assert.rejects(
      client.setSecret('fixture', 'nope'),
      (e: { statusCode?: number }) => e.statusCode === 403,
    );
  });

  test('a removed assignment is refused on the very next request', async () => {
    const p = await servicePrincipal(s, 'matrix-removed');
    const id = await assignRole(s, p.id, 'Key Vault Secrets User', rbacVault.id);
    const t = await p.token();
    assert.equal((await dp('matrixvault', t, 'GET', '/secrets/fixture')).status, 200);
    assert.equal((await dp('matrixvault', t, 'GET', '/secrets/fixture')).status, 200, 'now cached');
    await unassignRole(s, id);
    const r = await dp('matrixvault', t, 'GET', '/secrets/fixture');
    assert.equal(r.status, 403, r.text);
  });

  test("a deleted principal's still-valid token is refused with 401", async () => {
    const p = await servicePrincipal(s, 'matrix-deleted');
    await assignRole(s, p.id, 'Key Vault Secrets User', rbacVault.id);
    const t = await p.token();
    assert.equal((await dp('matrixvault', t, 'GET', '/secrets/fixture')).status, 200);
    const del = await s.request('DELETE', `/api/directory/servicePrincipals/${p.id}`, {
      headers: { authorization: `Bearer ${await s.adminToken()}` },
    });
    assert.equal(del.status, 204, del.text);
    const r = await dp('matrixvault', t, 'GET', '/secrets/fixture');
    assert.equal(r.status, 401, r.text);
    assert.match(String(r.headers['www-authenticate'] ?? ''), /^Bearer /);
  });

  test("another tenant's principal gets 404 for this tenant's vault", async () => {
    const other = await s.services.tenants.create({
      displayName: 'Elsewhere',
      domain: 'matrix-other.example',
    });
    const sp = await s.services.principals.createServicePrincipal(other.id, { displayName: 'foreign' });
    const cred = await s.services.credentials.addSecret(other.id, sp.id, {});
    // Even an Administrator at its own tenant's root.
    await s.services.access.create(other.id, {
      principalId: sp.id,
      role: findRole('Key Vault Administrator')!,
      scope: '/',
    });
    const tok = await secretTokenRequest(
      s,
      { appId: sp.appId!, secret: cred.secretText! },
      `${s.info.vaultResource}/.default`,
      other.id,
    );
    assert.equal(tok.status, 200, tok.text);
    const r = await dp('matrixvault', tok.json.access_token, 'GET', '/secrets/fixture');
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.error.code, 'VaultNotFound');
    // And its role-assignment API sees no such scope.
    const mt = await secretTokenRequest(
      s,
      { appId: sp.appId!, secret: cred.secretText! },
      `${s.info.managementResource}/.default`,
      other.id,
    );
    const ra = await s.request(
      'GET',
      `${rbacVault.id}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01`,
      { headers: { authorization: `Bearer ${mt.json.access_token}` } },
    );
    assert.equal(ra.status, 404, ra.text);
  });

  describe('access-policy vault (enableRbacAuthorization: false)', () => {
    for (const perm of OPS) {
      test(`a policy with only '${perm}' allows exactly ${perm}`, async () => {
        const p = await servicePrincipal(s, `policy-${perm}`);
        await policies('add', [{ objectId: p.id, permissions: { secrets: [perm] } }]);
        assertRow(`policy ${perm}`, await runAll('policyvault', await p.token()), [perm], true);
      });
    }

    test('RBAC roles do not open a vault that uses access policies; removing a policy takes effect at once', async () => {
      const p = await servicePrincipal(s, 'policy-rbac');
      await assignRole(s, p.id, 'Key Vault Administrator', policyVault.id);
      const t = await p.token();
      const r = await dp('policyvault', t, 'GET', '/secrets/fixture');
      assert.equal(r.status, 403);
      assert.match(r.json.error.message, /does not have secrets get permission/);

      await policies('add', [{ objectId: p.id, permissions: { secrets: ['get', 'list'] } }]);
      assert.equal((await dp('policyvault', t, 'GET', '/secrets/fixture')).status, 200);
      await policies('remove', [{ objectId: p.id, permissions: { secrets: ['get'] } }]);
      assert.equal((await dp('policyvault', t, 'GET', '/secrets/fixture')).status, 403);
      assert.equal((await dp('policyvault', t, 'GET', '/secrets')).status, 200);
      await policies('replace', [{ objectId: p.id, permissions: { secrets: ['all'] } }]);
      assert.equal((await dp('policyvault', t, 'GET', '/secrets/fixture')).status, 200);
    });

    test('the official SecretClient with a get-only policy', async () => {
      const p = await servicePrincipal(s, 'policy-sdk');
      await policies('add', [{ objectId: p.id, permissions: { secrets: ['get'] } }]);
      const cred = new ClientSecretCredential(s.info.tenantId, p.appId, p.secret, credentialOptions(s));
      const client = new SecretClient(s.vaultUrl('policyvault'), cred, { agent: s.agent } as never);
      assert.equal((await client.getSecret('fixture')).value, 'fixture-value');
      await assert.rejects(client.setSecret('x', 'y'), (e: { statusCode?: number }) => e.statusCode === 403);
    });
  });

  test('restoring a backup is refused without restore permission even with the blob', async () => {
    const p = await servicePrincipal(s, 'matrix-restore');
    await assignRole(s, p.id, 'Key Vault Secrets User', rbacVault.id);
    const r = await dp('matrixvault', await p.token(), 'POST', '/secrets/restore', { value: fixtureBackup });
    assert.equal(r.status, 403);
    assert.ok(r.json.error.message.includes(ACTION.restore), 'r.json.error.message.includes(ACTION.restore)');
  });
});
