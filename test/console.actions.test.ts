import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ConsoleClient, consoleSignIn } from './helpers/console.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Every console action over plain HTTP, checked against the domain: the page
 * shows the form, posting it (with the page's CSRF token) changes what it says.
 * On SQLite and on PostgreSQL (sign-in codes, sessions and flash messages live in the database).
 */
for (const backend of ['sqlite', 'postgres'] as const)
  describe(`web console actions (${backend})`, () => {
    let s: TestServer;
    let schema: TestSchema | undefined;
    let c: ConsoleClient;
    const V = '/console/vaults/default/actvault';

    /** Opens `page`, posts its form for `action`; expects a redirect (303) unless `status` says otherwise. */
    async function act(
      page: string,
      action: string,
      form: Record<string, string | string[]> = {},
      status = 303,
    ) {
      const p = await c.get(page);
      assert.equal(p.status, 200, `${page}: ${p.text.slice(0, 300)}`);
      const token = c.csrf(p.text, action);
      assert.ok(token, `no form for ${action} on ${page}`);
      const r = await c.post(action, { ...form, _csrf: token! });
      const error = /<div class="alert alert-error"[^>]*>([\s\S]*?)<\/div>/.exec(r.text)?.[1];
      assert.equal(r.status, status, `${action}: ${error ?? r.text.slice(0, 300)}`);
      return r;
    }
    const sub = () => s.info.subscriptionId;
    /** The signed-in admin as a caller of the domain services (to check what the console did). */
    const caller = () => ({ tenantId: s.info.tenantId, oid: adminId, appId: null, kind: 'user' as const });
    let adminId = '';

    before(async () => {
      schema = backend === 'postgres' ? await createTestSchema() : undefined;
      s = await startTestServer(schema ? { storageUrl: schema.url } : {});
      c = await consoleSignIn(s);
      const me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal.id;
      adminId = me;
      await act('/console/vaults', '/console/vaults', {
        name: 'actvault',
        resourceGroup: 'default',
        model: 'rbac',
        retention: '7',
      });
      await act(`${V}/iam`, `${V}/iam`, { role: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7', assignee: me });
      await act(`${V}/iam`, `${V}/iam`, {
        role: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
        assignee: s.admin.userName,
      });
    });
    after(async () => {
      await s?.stop();
      await schema?.drop();
    });

    test('user-assigned identities: create, attach to an app, detach, delete', async () => {
      await act('/console/identities', '/console/identities', {
        name: 'shared-id',
        resourceGroup: 'default',
      });
      const page = await c.get('/console/identities');
      const u = (await s.services.userIdentities.find(s.info.tenantId, sub(), 'default', 'shared-id'))!;
      for (const id of [u.clientId, u.principalId, u.armId]) assert.ok(page.text.includes(id), id);

      await act('/console/apps', '/console/apps', { name: 'web', resourceGroup: 'default' });
      const app = '/console/apps/default/web';
      await act(`${app}/identity`, `${app}/identity/user`, { identity: u.armId });
      let a = (await s.services.apps.byName(s.info.tenantId, 'web'))!;
      assert.deepEqual(
        a.userIdentities.map((x) => x.name),
        ['shared-id'],
      );
      assert.equal(a.systemPrincipalId, null);
      await act(`${app}/identity`, `${app}/identity/system`);
      a = (await s.services.apps.byName(s.info.tenantId, 'web'))!;
      assert.ok(a.systemPrincipalId, 'system-assigned on, user-assigned kept');
      assert.equal(a.userIdentities.length, 1);
      await act(`${app}/identity`, `${app}/identity/user/detach`, { identity: u.armId });
      a = (await s.services.apps.byName(s.info.tenantId, 'web'))!;
      assert.equal(a.userIdentities.length, 0);
      assert.ok(a.systemPrincipalId, 'a.systemPrincipalId');

      // Turning the system-assigned identity off: a confirmation page that explains, then a confirmed POST.
      const confirm = await c.get(`${app}/identity/system-off`);
      assert.match(confirm.text, /every role assignment granted to it is removed/);
      await act(`${app}/identity/system-off`, `${app}/identity/system-off`, {}, 400); // box not ticked
      assert.ok(
        (await s.services.apps.byName(s.info.tenantId, 'web'))!.systemPrincipalId,
        'not without the box',
      );
      const old = a.systemPrincipalId!;
      await act(`${app}/identity/system-off`, `${app}/identity/system-off`, { confirm: 'yes' });
      assert.equal((await s.services.apps.byName(s.info.tenantId, 'web'))!.systemPrincipalId, null);
      assert.equal(await s.services.principals.get(s.info.tenantId, old), undefined, 'its principal is gone');

      await act('/console/identities', '/console/identities/default/shared-id/delete', { confirm: 'yes' });
      assert.equal(
        await s.services.userIdentities.find(s.info.tenantId, sub(), 'default', 'shared-id'),
        undefined,
      );
    });

    test('app settings: add, reveal values, delete; app delete needs the confirmation', async () => {
      const app = '/console/apps/default/web';
      await act(`${app}/settings`, `${app}/settings`, { name: 'PLAIN', value: 'plain-value-123' });
      await act(`${app}/settings`, `${app}/settings`, {
        name: 'REF',
        value: '@Microsoft.KeyVault(VaultName=actvault;SecretName=x)',
      });
      const page = await c.get(`${app}/settings`);
      assert.ok(
        page.text.includes('@Microsoft.KeyVault(VaultName=actvault;SecretName=x)'),
        "page.text.includes('@Microsoft.KeyVault(VaultName=actvault;SecretName=x)')",
      );
      assert.ok(!page.text.includes('plain-value-123'), 'plain values hidden until asked');
      const shown = await act(`${app}/settings`, `${app}/settings/reveal`, {}, 200);
      assert.ok(shown.text.includes('plain-value-123'), "shown.text.includes('plain-value-123')");
      await act(`${app}/settings`, `${app}/settings/delete`, { name: 'PLAIN' });
      const { settings } = await s.services.apps
        .readSettings((await s.services.apps.byName(s.info.tenantId, 'web'))!)
        .then((x) => ({ settings: x }));
      assert.deepEqual(Object.keys(settings), ['REF']);
      await act(app, `${app}/delete`, {}, 400);
      await act(app, `${app}/delete`, { confirm: 'yes' });
      assert.equal(await s.services.apps.byName(s.info.tenantId, 'web'), undefined);
    });

    test('secrets: versions, disable and enable, expiry, delete, recover, purge', async () => {
      await act(`${V}/secrets`, `${V}/secrets`, { name: 'db', value: 'one', enabled: 'on' });
      await act(`${V}/secrets/db`, `${V}/secrets`, {
        name: 'db',
        value: 'two',
        enabled: 'on',
        contentType: 'text/plain',
      });
      const page = await c.get(`${V}/secrets/db`);
      const versions = [...page.text.matchAll(/name="version" value="([0-9a-f]{32})"/g)].map((m) => m[1]!);
      assert.equal(versions.length, 2);
      const v1 = versions[0]!;
      await act(`${V}/secrets/db`, `${V}/secrets/db/versions/${v1}/enabled`, { enabled: 'off' });
      const disabled = await c.get(`${V}/secrets/db`);
      assert.equal(
        [...disabled.text.matchAll(/name="version" value=/g)].length,
        1,
        'no reveal for a disabled version',
      );
      await act(`${V}/secrets/db`, `${V}/secrets/db/versions/${v1}/enabled`, { enabled: 'on' });
      await act(`${V}/secrets/db`, `${V}/secrets/db/versions/${v1}/expiry`, { expires: '2099-01-02T03:04' });
      const row = await s.services.db.get<{ exp: number; enabled: number }>(
        'SELECT exp, enabled FROM secret_versions WHERE version = $1',
        [v1],
      );
      assert.equal(Number(row!.exp), Date.parse('2099-01-02T03:04Z'));
      assert.equal(Number(row!.enabled), 1);
      // A bad date is a clear 400 on the same page, nothing changed.
      await act(`${V}/secrets/db`, `${V}/secrets/db/versions/${v1}/expiry`, { expires: 'tomorrow' }, 400);

      await act(`${V}/secrets/db`, `${V}/secrets/db/delete`);
      const list = await c.get(`${V}/secrets`);
      assert.match(list.text, /id="deleted-secrets"[\s\S]*>db</);
      await act(`${V}/secrets`, `${V}/deleted-secrets/db/recover`);
      assert.ok(
        (await c.get(`${V}/secrets`)).text.includes('href="/console/vaults/default/actvault/secrets/db"'),
        "(await c.get('{V}/secrets')).text.includes('href=\"/console/vaults/default/actvault/secr...",
      );
      await act(`${V}/secrets/db`, `${V}/secrets/db/delete`);
      await act(`${V}/secrets`, `${V}/deleted-secrets/db/purge`, {}, 400);
      await act(`${V}/secrets`, `${V}/deleted-secrets/db/purge`, { confirm: 'yes' });
      const gone = await s.services.db.get<{ n: number }>(
        "SELECT COUNT(*) AS n FROM secrets WHERE name_lower = 'db'",
      );
      assert.equal(Number(gone!.n), 0);
    });

    test('keys: create RSA and EC, versions, rotate', async () => {
      await act(`${V}/keys`, `${V}/keys`, { name: 'signing', type: 'EC:P-256' });
      await act(`${V}/keys`, `${V}/keys`, { name: 'wrapping', type: 'RSA:2048' });
      const list = await c.get(`${V}/keys`);
      assert.match(list.text, /EC P-256/);
      assert.match(list.text, /RSA 2048/);
      await act(`${V}/keys/wrapping`, `${V}/keys/wrapping/rotate`);
      const page = await c.get(`${V}/keys/wrapping`);
      assert.equal([...page.text.matchAll(/<td data-label="Version">/g)].length, 2);
    });

    test('keys: delete, recover, delete again, purge (with its confirmation)', async () => {
      await act(`${V}/keys`, `${V}/keys`, { name: 'shortlived', type: 'EC:P-256' });
      await act(`${V}/keys/shortlived`, `${V}/keys/shortlived/delete`);
      const list = await c.get(`${V}/keys`);
      assert.match(list.text, /id="deleted-keys"[\s\S]*>shortlived</);
      assert.doesNotMatch(
        list.text,
        /id="keys"[\s\S]*href="[^"]*\/keys\/shortlived"[\s\S]*id="deleted-keys"/,
      );
      await act(`${V}/keys`, `${V}/deleted-keys/shortlived/recover`);
      assert.equal((await c.get(`${V}/keys/shortlived`)).status, 200);
      await act(`${V}/keys/shortlived`, `${V}/keys/shortlived/delete`);
      await act(`${V}/keys`, `${V}/deleted-keys/shortlived/purge`, {}, 400);
      await act(`${V}/keys`, `${V}/deleted-keys/shortlived/purge`, { confirm: 'yes' });
      assert.doesNotMatch((await c.get(`${V}/keys`)).text, />shortlived</);
      const ops = (await s.services.audit.list({ tenantId: s.info.tenantId, operation: 'KeyPurge' })).map(
        (e) => e.target,
      );
      assert.ok(
        ops.some((t) => t?.endsWith('/keys/shortlived')),
        "ops.some((t) => t?.endsWith('/keys/shortlived'))",
      );
    });

    test('creating an RBAC vault gives its creator Key Vault Administrator (the box is ticked by default)', async () => {
      const form = await c.get('/console/vaults');
      assert.match(form.text, /id="vault-self-admin" name="selfAdmin"[^>]* checked/);
      await act('/console/vaults', '/console/vaults', {
        name: 'selfvault',
        resourceGroup: 'default',
        model: 'rbac',
        retention: '7',
        selfAdmin: 'on',
      });
      const page = await c.get('/console/vaults/default/selfvault');
      assert.match(page.text, /Vault selfvault created\. You have the Key Vault Administrator role on it\./);
      const mine = await s.services.access.list(s.info.tenantId, { principalId: adminId });
      assert.deepEqual(
        mine.filter((a) => a.scope.endsWith('/vaults/selfvault')).map((a) => a.roleDefinitionName),
        ['Key Vault Administrator'],
      );
      // Unticked: no role.
      await act('/console/vaults', '/console/vaults', {
        name: 'noselfvault',
        resourceGroup: 'default',
        model: 'rbac',
        retention: '7',
      });
      const none = await s.services.access.list(s.info.tenantId, { principalId: adminId });
      assert.equal(none.filter((a) => a.scope.endsWith('/vaults/noselfvault')).length, 0);
    });

    test('access policies: add, edit, remove; IAM: remove an assignment at the vault', async () => {
      const pv = '/console/vaults/default/polvault';
      await act('/console/vaults', '/console/vaults', {
        name: 'polvault',
        resourceGroup: 'default',
        model: 'policies',
        retention: '7',
      });
      await act(`${pv}/access-policies`, `${pv}/access-policies`, {
        principal: s.admin.userName,
        secrets: ['get', 'list'],
      });
      let v = (await s.services.vaults.byName('polvault'))!;
      assert.deepEqual(v.accessPolicies[0]!.permissions.secrets, ['get', 'list']);
      const me = v.accessPolicies[0]!.objectId;
      const edit = await c.get(`${pv}/access-policies?edit=${me}`);
      assert.match(edit.text, /id="perm-secrets-get" name="secrets" value="get" checked/);
      await act(`${pv}/access-policies`, `${pv}/access-policies`, {
        principal: me,
        secrets: ['set'],
        keys: ['get'],
      });
      v = (await s.services.vaults.byName('polvault'))!;
      assert.deepEqual(v.accessPolicies[0]!.permissions, { secrets: ['set'], keys: ['get'] });
      await act(`${pv}/access-policies`, `${pv}/access-policies/remove`, { objectId: me });
      assert.deepEqual((await s.services.vaults.byName('polvault'))!.accessPolicies, []);

      const iam = await c.get(`${V}/iam`);
      const ids = [...iam.text.matchAll(/name="id" value="([0-9a-f-]{36})"/g)].map((m) => m[1]!);
      assert.equal(ids.length, 2, 'two assignments at the vault can be removed; the inherited Owner cannot');
      await act(`${V}/iam`, `${V}/iam/remove`, { id: ids[1]! });
      assert.equal([...(await c.get(`${V}/iam`)).text.matchAll(/name="id" value=/g)].length, 1);
    });

    test('vaults: change the permission model, delete, recover, purge', async () => {
      await act('/console/vaults/default/polvault', '/console/vaults/default/polvault/properties', {
        model: 'rbac',
      });
      assert.equal((await s.services.vaults.byName('polvault'))!.enableRbacAuthorization, true);
      await act('/console/vaults', '/console/vaults/default/polvault/delete');
      const list = await c.get('/console/vaults');
      assert.match(list.text, /id="deleted-vaults"[\s\S]*polvault/);
      await act('/console/vaults', '/console/deleted-vaults/local/polvault/recover');
      assert.equal((await s.services.vaults.byName('polvault'))!.deletedAt, null);
      await act('/console/vaults', '/console/vaults/default/polvault/delete');
      await act('/console/vaults', '/console/deleted-vaults/local/polvault/purge', { confirm: 'yes' });
      assert.equal(await s.services.vaults.byName('polvault'), undefined);
      // A taken name is a clear conflict, not an update of the other vault.
      await act(
        '/console/vaults',
        '/console/vaults',
        { name: 'actvault', resourceGroup: 'default', model: 'policies', retention: '90' },
        409,
      );
      assert.equal((await s.services.vaults.byName('actvault'))!.softDeleteRetentionInDays, 7);
    });

    test('provisioning keys: create (shown once), rotate (new value once), revoke, usage', async () => {
      const created = await act(
        '/console/provisioning-keys',
        '/console/provisioning-keys',
        {
          scopes: ['secrets:write', 'audit:read'],
          expiresIn: '3600',
          maxUses: '5',
          displayName: 'deploy',
        },
        200,
      );
      const key = /id="provisioning-key-value">([^<]+)</.exec(created.text)![1]!;
      const id = key.split('.')[0]!;
      // Use it once against the management API: the key page shows the use.
      const use = await s.request('GET', '/api/audit?top=1', {
        headers: { authorization: `ProvisioningKey ${key}` },
      });
      assert.equal(use.status, 200);
      const page = await c.get(`/console/provisioning-keys/${id}`);
      assert.match(page.text, /1 of 5/);
      assert.match(page.text, /id="key-usage"[\s\S]*AuditList/);
      const rotated = await act(
        `/console/provisioning-keys/${id}`,
        `/console/provisioning-keys/${id}/rotate`,
        { grace: '0' },
        200,
      );
      const next = /id="provisioning-key-value">([^<]+)</.exec(rotated.text)![1]!;
      assert.notEqual(next, key);
      const nextId = next.split('.')[0]!;
      await act(`/console/provisioning-keys/${nextId}`, `/console/provisioning-keys/${nextId}/revoke`, {
        confirm: 'yes',
      });
      const revoked = await s.request('GET', '/api/audit?top=1', {
        headers: { authorization: `ProvisioningKey ${next}` },
      });
      assert.equal(revoked.status, 401);
    });

    test('app registrations: register (secret shown once), sign in, add and remove secrets, disable, delete', async () => {
      const L = '/console/app-registrations';
      const created = await act(L, L, { displayName: 'ci-pipeline', secret: '90d' }, 200);
      const secret = /id="client-secret-value">([^<]+)</.exec(created.text)![1]!;
      const sp = (await s.services.directory.list(caller())).find((p) => p.displayName === 'ci-pipeline')!;
      assert.ok(created.text.includes(sp.appId), 'the page names the client id');
      const signIn = (clientSecret: string) =>
        s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
          form: {
            grant_type: 'client_credentials',
            client_id: sp.appId,
            client_secret: clientSecret,
            scope: `${s.info.managementResource}/.default`,
          },
        });
      assert.equal((await signIn(secret)).status, 200);
      // The list and the page never show a secret again (only its first characters).
      const page = await c.get(`${L}/${sp.id}`);
      assert.ok(!page.text.includes(secret), '!page.text.includes(secret)');
      assert.match(page.text, new RegExp(`${secret.slice(0, 3)}[^<]*…`));

      const added = await act(
        `${L}/${sp.id}`,
        `${L}/${sp.id}/credentials`,
        { description: 'rollover', expiry: '1y' },
        200,
      );
      const second = /id="client-secret-value">([^<]+)</.exec(added.text)![1]!;
      assert.notEqual(second, secret);
      const creds = await s.services.directory.listCredentials(caller(), sp.id);
      assert.equal(creds.length, 2);
      const first = creds.find((x) => x.displayName === 'console')!;
      await act(`${L}/${sp.id}`, `${L}/${sp.id}/credentials/${first.keyId}/delete`);
      assert.equal((await signIn(secret)).status, 401, 'the removed secret no longer signs in');
      assert.equal((await signIn(second)).status, 200);

      await act(`${L}/${sp.id}`, `${L}/${sp.id}/disable`);
      assert.equal((await s.services.directory.show(caller(), sp.id)).accountEnabled, false);
      assert.notEqual((await signIn(second)).status, 200, 'a disabled application cannot sign in');
      await act(`${L}/${sp.id}`, `${L}/${sp.id}/enable`);
      assert.equal((await signIn(second)).status, 200);

      // Delete needs the confirmation; then it is gone.
      await act(`${L}/${sp.id}`, `${L}/${sp.id}/delete`, {}, 400);
      await act(`${L}/${sp.id}`, `${L}/${sp.id}/delete`, { confirm: 'yes' });
      assert.equal((await c.get(`${L}/${sp.id}`)).status, 404);
      const audit = await s.services.audit.list({ tenantId: s.info.tenantId, target: sp.id });
      assert.deepEqual(audit.map((e) => e.operation).reverse(), [
        'ServicePrincipalCreate',
        'ServicePrincipalCredentialReset',
        'ServicePrincipalCredentialDelete',
        'ServicePrincipalDisable',
        'ServicePrincipalEnable',
        'ServicePrincipalDelete',
      ]);
    });

    test('users: create (generated password once), sign-in, reset, disable, delete; not oneself', async () => {
      const L = '/console/users';
      const created = await act(L, L, { userName: 'gina@console.example', displayName: 'Gina' }, 200);
      const password = /id="user-password-value">([^<]+)</.exec(created.text)![1]!;
      const gina = await s.services.directory.users.show(caller(), 'gina@console.example');
      const signIn = (pw: string) =>
        s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
          form: {
            grant_type: 'password',
            client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
            username: 'gina@console.example',
            password: pw,
            scope: `${s.info.managementResource}/.default`,
          },
        });
      assert.equal((await signIn(password)).status, 200);
      assert.ok(!(await c.get(`${L}/${gina.id}`)).text.includes(password), 'shown once');

      const reset = await act(`${L}/${gina.id}`, `${L}/${gina.id}/reset-password`, {}, 200);
      const next = /id="user-password-value">([^<]+)</.exec(reset.text)![1]!;
      assert.notEqual((await signIn(password)).status, 200);
      assert.equal((await signIn(next)).status, 200);

      await act(`${L}/${gina.id}`, `${L}/${gina.id}/disable`);
      assert.equal((await s.services.directory.users.show(caller(), gina.id)).accountEnabled, false);
      assert.notEqual((await signIn(next)).status, 200);
      await act(`${L}/${gina.id}`, `${L}/${gina.id}/enable`);
      assert.equal((await signIn(next)).status, 200);

      // A password given in the form is used and not shown.
      const given = await act(L, L, {
        userName: 'hugo@console.example',
        displayName: 'Hugo',
        password: 'a-chosen-password-123',
      });
      assert.match(String(given.headers.location), /\/console\/users\//);

      // One's own page offers no disable or delete (the service refuses both: test/users.test.ts).
      const mine = await c.get(`${L}/${adminId}`);
      assert.equal(mine.status, 200);
      assert.ok(!c.csrf(mine.text, `${L}/${adminId}/delete`), 'no delete form on one’s own page');
      assert.ok(
        !c.csrf(mine.text, `${L}/${adminId}/disable`),
        'no disable form either (the API refuses both)',
      );

      await act(`${L}/${gina.id}`, `${L}/${gina.id}/delete`, { confirm: 'yes' });
      assert.equal((await c.get(`${L}/${gina.id}`)).status, 404);
    });

    test('smaller: a refused vault name is kept, messages name things, versions newest first, one date format', async () => {
      const bad = await act(
        '/console/vaults',
        '/console/vaults',
        { name: 'no_such!name', resourceGroup: 'default', model: 'policies', retention: '30' },
        400,
      );
      assert.match(bad.text, /id="vault-name" name="name" value="no_such!name"/);
      assert.match(bad.text, /name="retention" value="30"/);
      assert.match(bad.text, /value="policies" checked/);
      // The page is shown again: typed markup is escaped, never run.
      const xss = await act(
        '/console/vaults',
        '/console/vaults',
        { name: '"><b>x', model: 'rbac', resourceGroup: 'default', retention: '7' },
        400,
      );
      assert.ok(
        xss.text.includes('value="&quot;&gt;&lt;b&gt;x"'),
        'xss.text.includes(\'value="&quot;&gt;&lt;b&gt;x"\')',
      );

      await act(`${V}/secrets`, `${V}/secrets`, { name: 'order', value: 'first', enabled: 'on' });
      await act(`${V}/secrets/order`, `${V}/secrets`, { name: 'order', value: 'second', enabled: 'on' });
      await act(`${V}/secrets/order`, `${V}/secrets`, { name: 'order', value: 'third', enabled: 'on' });
      const page = await c.get(`${V}/secrets/order`);
      assert.match(page.text, /Versions \(newest first\)/);
      const shown = [
        ...page.text.matchAll(
          /<td data-label="Version"><div class="cell"><span class="mono">([0-9a-f]{32})</g,
        ),
      ].map((m) => m[1]!);
      const v = (await s.services.vaults.byName('actvault'))!;
      const oldestFirst = (
        await s.services.secrets.listVersions(
          {
            vault: v,
            caller: caller(),
            meta: { clientIp: null, requestId: 'test' },
            baseUrl: 'https://x',
          } as never,
          'order',
          {},
        )
      ).items.map((x) => x.version);
      assert.deepEqual(shown, [...oldestFirst].reverse());

      // One date format everywhere: 2026-12-06 05:39 UTC.
      for (const path of ['/console/', `${V}/secrets/order`, '/console/users', '/console/audit']) {
        const dates = [...(await c.get(path)).text.matchAll(/<time datetime="([^"]+)">([^<]+)<\/time>/g)];
        assert.ok(dates.length > 0, path);
        for (const [, iso, shownAs] of dates) {
          assert.match(shownAs!, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/);
          assert.equal(shownAs, `${iso!.slice(0, 10)} ${iso!.slice(11, 16)} UTC`);
        }
      }

      // A success message names what was made, and for whom.
      await act('/console/identities', '/console/identities', { name: 'named-id', resourceGroup: 'default' });
      await act('/console/apps', '/console/apps', { name: 'named-app', resourceGroup: 'default' });
      const u = (await s.services.userIdentities.find(s.info.tenantId, sub(), 'default', 'named-id'))!;
      const app = '/console/apps/default/named-app';
      await act(`${app}/identity`, `${app}/identity/user`, { identity: u.armId });
      assert.match((await c.get(`${app}/identity`)).text, /Identity named-id attached to named-app\./);
      // The vault's IAM page has the member picker too: the identity is found by name.
      const picked = await c.get(`${V}/iam?member=named-i`);
      assert.match(picked.text, new RegExp(`name="assignee" value="${u.principalId}" checked`));
      assert.match(picked.text, /named-id <span class="muted">managed identity<\/span>/);
      await act(`${V}/iam?member=named-i`, `${V}/iam`, {
        role: '4633458b-17de-408a-b874-0445c86b69e6',
        assignee: u.principalId,
      });
      assert.match(
        (await c.get(`${V}/iam`)).text,
        /Key Vault Secrets User granted to named-id \(managed identity\) on actvault\./,
      );
    });

    test('IAM at the subscription and a resource group, with the member picker; the resource-groups page', async () => {
      const groups = await c.get('/console/resource-groups');
      assert.match(groups.text, /href="\/console\/resource-groups\/default\/iam"/);
      assert.match(
        (await c.get('/console/resource-groups?q=zzz-none')).text,
        /No resource group you may read matches/,
      );
      const u = await s.services.principals.createUser(s.info.tenantId, {
        userName: 'picked@latchkey.localhost',
        displayName: 'Picked Person',
        password: 'picked password 12345',
      });
      // The picker finds members by part of their name and offers them to choose.
      const found = await c.get('/console/subscription/iam?member=picked%20pers');
      assert.match(found.text, new RegExp(`name="assignee" value="${u.id}"`));
      assert.match(found.text, /Picked Person/);
      await act('/console/subscription/iam?member=picked', '/console/subscription/iam', {
        role: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
        assignee: u.id,
      });
      const subPage = await c.get('/console/subscription/iam');
      assert.match(
        subPage.text,
        new RegExp(
          `Reader granted to Picked Person \\(picked@latchkey.localhost\\) on Subscription ${sub()}`,
        ),
      );
      const subScope = `/subscriptions/${sub()}`;
      let mine = await s.services.access.list(s.info.tenantId, { principalId: u.id });
      assert.deepEqual(
        mine.map((a) => [a.roleDefinitionName, a.scope]),
        [['Reader', subScope]],
      );
      const rgIam = '/console/resource-groups/default/iam';
      await act(rgIam, rgIam, {
        role: '4633458b-17de-408a-b874-0445c86b69e6',
        assignee: 'picked@latchkey.localhost',
      });
      mine = await s.services.access.list(s.info.tenantId, { principalId: u.id });
      assert.ok(
        mine.some(
          (a) =>
            a.scope === `${subScope}/resourceGroups/default` &&
            a.roleDefinitionName === 'Key Vault Secrets User',
        ),
        "mine.some( (a) => a.scope === '{subScope}/resourceGroups/default' && a.roleDefinitionNa...",
      );
      // Remove both again, each at its own scope.
      for (const [page, scope] of [
        [rgIam, `${subScope}/resourceGroups/default`],
        ['/console/subscription/iam', subScope],
      ] as const) {
        const a = mine.find((x) => x.scope === scope)!;
        await act(page, `${page}/remove`, { id: a.id });
      }
      assert.deepEqual(await s.services.access.list(s.info.tenantId, { principalId: u.id }), []);
      // An unknown resource group is a 404; the app identity page links to its group's IAM with the member.
      assert.equal((await c.get('/console/resource-groups/nope/iam')).status, 404);
      await act('/console/apps', '/console/apps', {
        name: 'iam-app',
        resourceGroup: 'default',
        systemAssigned: 'on',
      });
      const app = (await s.services.apps.byName(s.info.tenantId, 'iam-app'))!;
      const idPage = await c.get('/console/apps/default/iam-app/identity');
      assert.ok(
        idPage.text.includes(`href="/console/resource-groups/default/iam?member=${app.systemPrincipalId}"`),
        'idPage.text.includes(\'href="/console/resource-groups/default/iam?member={app.systemPrin...',
      );
      const picked = await c.get(`/console/resource-groups/default/iam?member=${app.systemPrincipalId}`);
      assert.match(picked.text, new RegExp(`name="assignee" value="${app.systemPrincipalId}" checked`));
      // ... or at another scope: a page listing where the user may assign roles, each with the member picked.
      assert.ok(
        idPage.text.includes(`href="/console/role-assignments/new?member=${app.systemPrincipalId}"`),
        'idPage.text.includes(\'href="/console/role-assignments/new?member={app.systemPrincipalId...',
      );
      const scopes = await c.get(`/console/role-assignments/new?member=${app.systemPrincipalId}`);
      assert.match(scopes.text, /iam-app \(managed identity\)/);
      for (const href of [
        `/console/subscription/iam?member=${app.systemPrincipalId}`,
        `/console/resource-groups/default/iam?member=${app.systemPrincipalId}`,
        `/console/vaults/default/actvault/iam?member=${app.systemPrincipalId}`,
      ])
        assert.ok(scopes.text.includes(`href="${href}"`), href);
      assert.equal((await c.get('/console/role-assignments/new?member=nope')).status, 400);
      // The vault IAM page, opened from there, has the identity picked.
      const onVault = await c.get(`/console/vaults/default/actvault/iam?member=${app.systemPrincipalId}`);
      assert.match(onVault.text, new RegExp(`name="assignee" value="${app.systemPrincipalId}" checked`));
    });

    test('lists have a name filter: vaults, apps, identities, users, app registrations, resource groups', async () => {
      const rows = (text: string, id: string) =>
        [
          ...(
            new RegExp(`<table class="stack" id="${id}">([\\s\\S]*?)</table>`).exec(text)?.[1] ?? ''
          ).matchAll(/<tr>/g),
        ].length - 1;
      for (const [list, id, hit, miss] of [
        ['/console/vaults', 'vaults', 'actvault', 'polvault'],
        ['/console/apps', 'apps', 'iam-app', 'named-app'],
        ['/console/identities', 'identities', 'named-id', 'zzz'],
        ['/console/users', 'users', 'Picked Person', s.admin.userName],
        ['/console/app-registrations', 'app-registrations', 'iam-app', 'named-app'],
      ] as const) {
        const all = await c.get(list);
        assert.match(all.text, /role="search"/, list);
        const one = await c.get(`${list}?q=${encodeURIComponent(hit.toUpperCase())}`);
        assert.equal(one.status, 200, list);
        assert.ok(one.text.includes(hit), `${list}: ${hit}`);
        assert.ok(!one.text.includes(`>${miss}<`), `${list}: not ${miss}`);
        assert.ok(rows(one.text, id) >= 1 && rows(one.text, id) < rows(all.text, id) + 1, list);
        const none = await c.get(`${list}?q=${'q'.repeat(500)}`);
        assert.equal(none.status, 200, list);
        assert.match(none.text, /you may read matches “q{120}”/, list);
      }
    });

    test('audit log: filter by caller, operation, target and time; page through', async () => {
      const all = await c.get('/console/audit');
      assert.match(all.text, /Older events/);
      const older = /href="(\/console\/audit\?before=\d+)"/.exec(all.text)![1]!;
      const page2 = await c.get(older.replaceAll('&amp;', '&'));
      assert.equal(page2.status, 200);
      assert.match(page2.text, /Newest events/);
      const target = encodeURIComponent(
        `/subscriptions/${sub()}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/polvault`,
      );
      const byTarget = await c.get(`/console/audit?target=${target}&operation=VaultPurge`);
      const ops = [...byTarget.text.matchAll(/<td data-label="Operation"><div class="cell">([^<]+)</g)].map(
        (m) => m[1],
      );
      assert.deepEqual(ops, ['VaultPurge']);
      const byCaller = await c.get(
        `/console/audit?caller=${encodeURIComponent(s.admin.userName)}&operation=VaultCreate`,
      );
      assert.equal(
        [...byCaller.text.matchAll(/<td data-label="Operation"><div class="cell">VaultCreate</g)].length,
        4, // actvault, selfvault, noselfvault, polvault
      );
      const future = await c.get('/console/audit?from=2999-01-01T00:00');
      assert.match(future.text, /No events match these filters/);
      const bad = await c.get('/console/audit?from=yesterday');
      assert.equal(bad.status, 400);
    });

    test('audit log: changes by default, reads apart, short targets, callers by display name, page size', async () => {
      const opsOf = (text: string) =>
        [...text.matchAll(/<td data-label="Operation"><div class="cell">([^<]+)</g)].map((m) => m[1]!);
      await c.get('/console/audit'); // itself an AuditList read
      const changes = opsOf((await c.get('/console/audit?size=100')).text);
      assert.ok(changes.length > 0, 'changes.length > 0');
      for (const op of ['AuditList', 'SecretGet', 'SecretList', 'KeyGet', 'AppSettingsList'])
        assert.ok(!changes.includes(op), `${op} is a read`);
      assert.ok(changes.includes('VaultCreate'), "changes.includes('VaultCreate')");
      const reads = opsOf((await c.get('/console/audit?show=reads&size=100')).text);
      assert.ok(reads.includes('AuditList'), "reads.includes('AuditList')");
      assert.ok(!reads.includes('VaultCreate'), "!reads.includes('VaultCreate')");
      const all = opsOf((await c.get('/console/audit?show=all&size=100')).text);
      assert.ok(
        all.includes('AuditList') && all.includes('VaultCreate'),
        "all.includes('AuditList') && all.includes('VaultCreate')",
      );
      // Page size: bounded to the offered sizes (anything else is 25).
      assert.equal(opsOf((await c.get('/console/audit?show=all&size=50')).text).length, 50);
      assert.equal(opsOf((await c.get('/console/audit?show=all&size=100000')).text).length, 25);
      // ARM ids are shortened to the resource group and below; the link filters by the full id.
      const arm = `/subscriptions/${sub()}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/actvault`;
      const page = await c.get(`/console/audit?operation=VaultCreate&target=${encodeURIComponent(arm)}`);
      assert.match(page.text, />default\/vaults\/actvault<\/a>/);
      assert.ok(page.text.includes(`title="${arm}"`), 'page.text.includes(\'title="{arm}"\')');
      // A display name is resolved through the directory: one match filters, several are offered.
      const me = (await s.services.principals.get(s.info.tenantId, adminId))!;
      const byName = await c.get(
        `/console/audit?operation=VaultCreate&caller=${encodeURIComponent(me.displayName)}`,
      );
      assert.ok(opsOf(byName.text).length >= 1, 'opsOf(byName.text).length >= 1');
      assert.doesNotMatch(byName.text, /id="caller-note"/);
      await s.services.principals.createUser(s.info.tenantId, {
        userName: 'auditname1@latchkey.localhost',
        displayName: 'Auditname Twin',
        password: 'twin password 12345',
      });
      await s.services.principals.createUser(s.info.tenantId, {
        userName: 'auditname2@latchkey.localhost',
        displayName: 'Auditname Twin',
        password: 'twin password 12345',
      });
      const twins = await c.get('/console/audit?caller=auditname%20twin');
      assert.match(twins.text, /Several callers match/);
      assert.equal([...twins.text.matchAll(/href="\/console\/audit\?caller=[0-9a-f-]{36}"/g)].length, 2);
      assert.match(
        (await c.get('/console/audit?caller=nobody-by-this-name')).text,
        /No user, application or identity you may read/,
      );
    });
  });
