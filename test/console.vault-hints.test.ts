import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sealSettings } from '../src/management/app-settings.js';
import { assignRole, createVault, unassignRole, vaultArmPath } from './helpers/access.js';
import { type ConsoleClient, consoleSignIn } from './helpers/console.js';
import { startTestApp, type TestServer } from './helpers/server.js';

/**
 * The console tells what a refusal or a reference needs: Key Vault references on an app's settings
 * page show what App Service would (resolved, vault or secret missing, access denied, no identity),
 * decided as the app's identity and only for a user who may list the settings; a 403 on a vault's
 * secrets or keys tab offers "Grant yourself …" to a user who may assign roles there.
 */
describe('web console: Key Vault reference status and "grant yourself"', () => {
  let s: TestServer;
  let admin: ConsoleClient;
  let reader: ConsoleClient;

  async function act(c: ConsoleClient, page: string, action: string, form: Record<string, string> = {}) {
    const p = await c.get(page);
    assert.equal(p.status, 200, `${page}: ${p.text.slice(0, 300)}`);
    const token = c.csrf(p.text, action);
    assert.ok(token, `no form for ${action} on ${page}`);
    const r = await c.post(action, { ...form, _csrf: token! });
    const error = /<div class="alert alert-error"[^>]*>([\s\S]*?)<\/div>/.exec(r.text)?.[1];
    assert.equal(r.status, 303, `${action}: ${error ?? r.text.slice(0, 300)}`);
    return r;
  }
  const statuses = (page: string) =>
    Object.fromEntries(
      [...page.matchAll(/<span class="mono">([A-Z_]+)<\/span>[\s\S]*?data-reference-status>([^<]+)</g)].map(
        (m) => [m[1]!, m[2]!],
      ),
    );

  before(async () => {
    s = await startTestApp();
    admin = await consoleSignIn(s);
    const user = { userName: 'hint-reader@latchkey.localhost', password: 'hint reader password 123' };
    const p = await s.services.principals.createUser(s.info.tenantId, {
      userName: user.userName,
      displayName: 'Hint Reader',
      password: user.password,
    });
    await assignRole(s, p.id, 'Reader', `/subscriptions/${s.info.subscriptionId}`);
    reader = await consoleSignIn(s, user);
  });
  after(async () => {
    await s?.stop();
  });

  test('each reference shows its status as the app identity resolves it; no status without config/list', async () => {
    await createVault(s, 'refsok');
    const denied = await createVault(s, 'refsdeny');
    const me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal.id;
    await assignRole(s, me, 'Key Vault Secrets Officer', vaultArmPath(s, 'refsok'));
    await assignRole(s, me, 'Key Vault Secrets Officer', vaultArmPath(s, 'refsdeny'));
    const ok = '/console/vaults/default/refsok';
    await act(admin, `${ok}/secrets`, `${ok}/secrets`, {
      name: 'db',
      value: 'the-db-value-1',
      enabled: 'on',
    });
    await act(admin, `${ok}/secrets`, `${ok}/secrets`, { name: 'off', value: 'the-off-value-2' });
    const dn = '/console/vaults/default/refsdeny';
    await act(admin, `${dn}/secrets`, `${dn}/secrets`, {
      name: 'db',
      value: 'the-db-value-3',
      enabled: 'on',
    });

    await act(admin, '/console/apps', '/console/apps', {
      name: 'refapp',
      resourceGroup: 'default',
      systemAssigned: 'on',
    });
    const a = (await s.services.apps.byName(s.info.tenantId, 'refapp'))!;
    await assignRole(s, a.systemPrincipalId!, 'Key Vault Secrets User', vaultArmPath(s, 'refsok'));
    const app = '/console/apps/default/refapp';
    const refs: Record<string, string> = {
      A_RESOLVED: '@Microsoft.KeyVault(VaultName=refsok;SecretName=db)',
      B_NO_VAULT: '@Microsoft.KeyVault(VaultName=refsnone;SecretName=db)',
      C_NO_SECRET: '@Microsoft.KeyVault(VaultName=refsok;SecretName=missing)',
      D_DENIED: `@Microsoft.KeyVault(SecretUri=${denied.vaultUri.replace(/\/$/, '')}/secrets/db)`,
      E_DISABLED: '@Microsoft.KeyVault(VaultName=refsok;SecretName=off)',
    };
    for (const [name, value] of Object.entries(refs))
      await act(admin, `${app}/settings`, `${app}/settings`, { name, value });
    await act(admin, '/console/apps', '/console/apps', { name: 'bareapp', resourceGroup: 'default' });
    const bare = '/console/apps/default/bareapp';
    await act(admin, `${bare}/settings`, `${bare}/settings`, {
      name: 'F_NO_IDENTITY',
      value: refs.A_RESOLVED!,
    });

    const reads = async () =>
      Number(
        (await s.services.db.get<{ n: number }>(
          "SELECT COUNT(*) AS n FROM audit_events WHERE operation IN ('SecretGet', 'SecretGetProperties')",
        ))!.n,
      );
    const readsBefore = await reads();
    const page = (await admin.get(`${app}/settings`)).text;
    assert.deepEqual(statuses(page), {
      A_RESOLVED: 'Resolved',
      B_NO_VAULT: 'Vault not found',
      C_NO_SECRET: 'Secret not found',
      D_DENIED: 'Access denied (the identity lacks getSecret: grant Key Vault Secrets User)',
      E_DISABLED: 'Secret disabled',
    });
    assert.deepEqual(statuses((await admin.get(`${bare}/settings`)).text), { F_NO_IDENTITY: 'No identity' });
    for (const v of ['the-db-value-1', 'the-off-value-2', 'the-db-value-3'])
      assert.ok(!page.includes(v), 'no secret value on the page');
    assert.equal(await reads(), readsBefore, 'a status check is not audited as a secret read');

    // A reference stored before the installation's vault origin changed (here: written to the row
    // directly, as writes refuse it) is an invalid reference, not a lookup elsewhere.
    const bareApp = (await s.services.apps.byName(s.info.tenantId, 'bareapp'))!;
    await s.services.db.run('UPDATE apps SET settings_sealed = $1 WHERE id = $2', [
      sealSettings(s.services.sealer, bareApp.tenantId, bareApp.rowId, {
        G_INVALID: '@Microsoft.KeyVault(SecretUri=https://refsok.elsewhere.example/secrets/db)',
      }),
      bareApp.rowId,
    ]);
    assert.deepEqual(statuses((await admin.get(`${bare}/settings`)).text), {
      G_INVALID: 'Invalid reference',
    });

    // A Reader may see the app but not list its settings: no status (and no reference) is shown.
    const r = await reader.get(`${app}/settings`);
    assert.match(r.text, /config\/list\/action/);
    assert.doesNotMatch(
      r.text,
      /data-reference-status|Resolved|Secret not found|Access denied \(the identity/,
    );
    assert.ok(!r.text.includes('refsok'), "!r.text.includes('refsok')");
  });

  test('a 403 on secrets or keys: an Owner gets "Grant yourself …" that works; a Reader is told what to ask for', async () => {
    await createVault(s, 'refsgrant');
    const v = '/console/vaults/default/refsgrant';
    const secrets = await admin.get(`${v}/secrets`);
    assert.match(secrets.text, /\(403 Forbidden\)/);
    assert.match(secrets.text, /Grant yourself Key Vault Secrets Officer on this vault/);
    assert.match(
      (await admin.get(`${v}/keys`)).text,
      /Grant yourself Key Vault Crypto Officer on this vault/,
    );

    const forReader = await reader.get(`${v}/secrets`);
    assert.match(forReader.text, /\(403 Forbidden\)/);
    assert.doesNotMatch(forReader.text, /grant-yourself/);
    assert.match(forReader.text, /Ask an Owner of refsgrant for Key Vault Secrets Officer on this vault\./);
    assert.match(
      (await reader.get(`${v}/keys`)).text,
      /Ask an Owner of refsgrant for Key Vault Crypto Officer/,
    );

    const r = await act(admin, `${v}/secrets`, `${v}/iam`, {
      role: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
      assignee: (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal.id,
      back: 'secrets',
    });
    assert.equal(r.headers.location, `${v}/secrets`);
    const after = await admin.get(`${v}/secrets`);
    assert.match(after.text, /Key Vault Secrets Officer granted to/);
    assert.doesNotMatch(after.text, /\(403 Forbidden\)|grant-yourself/);
    assert.match(after.text, /No secrets in this vault yet/);
  });

  test('a 403 on a secret\'s or a key\'s page (its versions): "Grant yourself …" that returns there', async () => {
    await createVault(s, 'refsdetail');
    const v = '/console/vaults/default/refsdetail';
    const me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal.id;
    // A secret and a key made while the admin held a data role, which is then removed.
    const temp = await assignRole(s, me, 'Key Vault Administrator', vaultArmPath(s, 'refsdetail'));
    await act(admin, `${v}/secrets`, `${v}/secrets`, { name: 'db', value: 'detail-value-1', enabled: 'on' });
    await act(admin, `${v}/keys`, `${v}/keys`, { name: 'sig', type: 'EC:P-256' });
    await unassignRole(s, temp);

    for (const [path, role] of [
      [`${v}/secrets/db`, 'Key Vault Secrets Officer'],
      [`${v}/keys/sig`, 'Key Vault Crypto Officer'],
    ] as const) {
      const page = await admin.get(path);
      assert.equal(page.status, 200, path);
      assert.match(page.text, /\(403 Forbidden\)/, path);
      assert.match(page.text, new RegExp(`Grant yourself ${role} on this vault`), path);
      assert.ok(page.text.includes(`name="back" value="${path.slice(v.length + 1)}"`), path);
      const forReader = await reader.get(path);
      assert.doesNotMatch(forReader.text, /grant-yourself/, path);
      assert.match(
        forReader.text,
        new RegExp(`Ask an Owner of refsdetail for ${role} on this vault\\.`),
        path,
      );
    }
    await assignRole(s, me, 'Key Vault Secrets Officer', vaultArmPath(s, 'refsdetail'));
    assert.match((await admin.get(`${v}/secrets/db`)).text, /id="versions"/);

    const r = await act(admin, `${v}/keys/sig`, `${v}/iam`, {
      role: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
      assignee: me,
      back: 'keys/sig',
    });
    assert.equal(r.headers.location, `${v}/keys/sig`);
    const after = await admin.get(`${v}/keys/sig`);
    assert.match(after.text, /Key Vault Crypto Officer granted to/);
    assert.doesNotMatch(after.text, /\(403 Forbidden\)|grant-yourself/);
    assert.match(after.text, /id="key-versions"/);
    // "back" leads only to a secrets or keys page of this vault; anything else goes to its IAM page.
    for (const [back, role] of [
      ['//evil.example', '21090545-7ca7-4776-b22c-e363652d74d2'],
      ['secrets/../../x', '12338af0-0e69-4776-bea7-57ae8d297424'],
      ['iam?x=1', 'e147488a-f6f5-4113-8e2d-b22465e65bf6'],
      ['keys/a b', 'f25e0fa2-a7c8-4377-a976-54943a77a395'],
    ] as const) {
      const x = await act(admin, `${v}/iam`, `${v}/iam`, { role, assignee: me, back });
      assert.equal(x.headers.location, `${v}/iam`, back);
    }
  });
  test('a button action refused with 403 (Show value to a Key Vault Reader): the page offers "Grant yourself …"', async () => {
    await createVault(s, 'refsaction');
    const v = '/console/vaults/default/refsaction';
    const me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal.id;
    const temp = await assignRole(s, me, 'Key Vault Administrator', vaultArmPath(s, 'refsaction'));
    await act(admin, `${v}/secrets`, `${v}/secrets`, { name: 'db', value: 'action-value-1', enabled: 'on' });
    await unassignRole(s, temp);
    // Key Vault Reader lists the versions but may not read a value.
    await assignRole(s, me, 'Key Vault Reader', vaultArmPath(s, 'refsaction'));
    const page = await admin.get(`${v}/secrets/db`);
    assert.match(page.text, /id="versions"/);
    assert.doesNotMatch(page.text, /grant-yourself/, 'nothing refused yet: no offer');
    const version = /name="version" value="([0-9a-f]{32})"/.exec(page.text)?.[1];
    assert.ok(version, 'a Show value form with its version');
    const token = admin.csrf(page.text, `${v}/secrets/db/reveal`);
    const refused = await admin.post(`${v}/secrets/db/reveal`, { version: version!, _csrf: token! });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /Key Vault Secrets Officer/);
    assert.doesNotMatch(refused.text, /action-value-1/);
    assert.match(refused.text, /Grant yourself Key Vault Secrets Officer on this vault/);
    assert.ok(
      refused.text.includes('name="back" value="secrets/db"'),
      'refused.text.includes(\'name="back" value="secrets/db"\')',
    );
  });
});
