import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assignRole, servicePrincipal } from './helpers/access.js';
import { type CliResult, type CliUser, cliUser } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ok = (r: CliResult, what = ''): CliResult => {
  assert.equal(r.code, 0, `${what} exit 0 expected; stderr: ${r.stderr}`);
  return r;
};
/** A failure: exit code, one `ERROR:` line on stderr, no stack. */
const fails = (r: CliResult, pattern: RegExp, code = 1) => {
  assert.equal(r.code, code, `exit ${code} expected; stdout: ${r.stdout} stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^ERROR: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
};

describe('keyvault, role and audit CLI end to end', () => {
  let s: TestServer;
  let admin: CliUser;
  let tmp: string;
  let run: (...args: string[]) => Promise<CliResult>;
  let vaultId: string;
  const vault = 'clitest';

  before(async () => {
    s = await startTestServer();
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-clivault-'));
    admin = cliUser();
    const g = ['--server', s.info.authority, '--ca-file', s.info.caCertPath];
    run = (...args) => admin.run(...g, ...args);
    ok(
      await run(
        'login',
        '-u',
        s.admin.userName,
        '-p',
        s.admin.password,
        '-t',
        s.admin.tenantId,
        '-o',
        'none',
      ),
    );
  });
  after(async () => {
    admin?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await s?.stop();
  });

  test('keyvault create, list, show, update', async () => {
    const c = ok(
      await run(
        'keyvault',
        'create',
        '-n',
        vault,
        '--retention-days',
        '30',
        '--tags',
        'env=dev',
        'team=core',
        '--no-self-perms',
      ),
    );
    assert.equal(c.json.properties.softDeleteRetentionInDays, 30);
    vaultId = c.json.id;
    assert.equal(c.json.name, vault);
    assert.equal(c.json.resourceGroup, 'default');
    assert.deepEqual(c.json.tags, { env: 'dev', team: 'core' });
    assert.equal(c.json.properties.enableRbacAuthorization, true);
    assert.match(c.json.properties.vaultUri, new RegExp(`^https://${vault}\\.vault\\.localhost:\\d+/$`));
    const [list, table, shown, badFlag, missing] = await Promise.all([
      run('keyvault', 'list'),
      run('keyvault', 'list', '-g', 'default', '-o', 'table'),
      run('keyvault', 'show', '-n', vault),
      run('keyvault', 'create', '-n', 'bad', '--enable-rbac-authorization', 'maybe'),
      run('keyvault', 'show', '-n', 'nosuchvault'),
    ]);
    fails(badFlag, /true or false/, 2);
    fails(missing, /ResourceNotFound/);
    assert.ok(
      ok(list).json.some((v: { name: string }) => v.name === vault),
      'ok(list).json.some((v: { name: string }) => v.name === vault)',
    );
    assert.match(ok(table).stdout, /^Location\s+Name\s+ResourceGroup/);
    assert.match(table.stdout, new RegExp(`local\\s+${vault}\\s+default`));
    assert.equal(ok(shown).json.id, vaultId);
    const u = ok(
      await run(
        'keyvault',
        'update',
        '-n',
        vault,
        '--enable-rbac-authorization',
        'true',
        '--tags',
        'env=prod',
      ),
    );
    assert.equal(u.json.properties.enableRbacAuthorization, true);
    assert.deepEqual(u.json.tags, { env: 'prod' });
  });

  test('keyvault create gives its creator Key Vault Administrator (once) and refuses an existing name', async () => {
    const c = await run('keyvault', 'create', '-n', 'clifirst', '-o', 'none');
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /Granted you the Key Vault Administrator role on the new vault/);
    // The README's first hour: a secret straight after create, no role assignment by hand.
    const set = await run(
      'keyvault',
      'secret',
      'set',
      '--vault-name',
      'clifirst',
      '-n',
      'first',
      '--value',
      'v1',
    );
    assert.equal(set.code, 0, set.stderr);
    const mine = ok(
      await run('role', 'assignment', 'list', '--assignee', s.admin.userName, '--all'),
    ).json.filter(
      (x: { scope: string; roleDefinitionName: string }) =>
        x.scope.endsWith('/vaults/clifirst') && x.roleDefinitionName === 'Key Vault Administrator',
    );
    assert.equal(mine.length, 1);
    // Create on an existing name is refused and changes nothing (changes go through update).
    const again = await run('keyvault', 'create', '-n', 'clifirst', '--enable-rbac-authorization', 'false');
    fails(again, /already in use.*keyvault update/);
    assert.equal(
      ok(await run('keyvault', 'show', '-n', 'clifirst')).json.properties.enableRbacAuthorization,
      true,
    );
    // A caller who may not assign roles gets the vault and a warning that says what to ask for.
    const sp = await servicePrincipal(s, 'cli-kv-contributor');
    await assignRole(s, sp.id, 'Contributor', `/subscriptions/${s.info.subscriptionId}`);
    const u = cliUser();
    try {
      const g = ['--server', s.info.authority, '--ca-file', s.info.caCertPath];
      ok(
        await u.run(
          ...g,
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
        ),
      );
      const byContributor = await u.run(...g, 'keyvault', 'create', '-n', 'clisecond', '-o', 'none');
      assert.equal(byContributor.code, 0, byContributor.stderr);
      assert.match(byContributor.stderr, /may not assign roles on the new vault.*Key Vault Secrets Officer/);
    } finally {
      u.cleanup();
    }
  });

  test('role assignment create/list, role definition list, then the secret lifecycle with az shapes', async () => {
    // A refusal names the built-in roles that would allow the action, narrowest first.
    fails(
      await run('keyvault', 'secret', 'list', '--vault-name', vault),
      /Forbidden.*readMetadata.*Built-in roles that allow it: Key Vault Secrets User, Key Vault Reader/,
    );
    const a = ok(
      await run(
        'role',
        'assignment',
        'create',
        '--assignee',
        s.admin.userName,
        '--role',
        'Key Vault Secrets Officer',
        '--scope',
        vaultId,
      ),
    );
    assert.equal(a.json.principalType, 'User');
    assert.equal(a.json.scope, vaultId);
    const [listed, defs] = await Promise.all([
      run('role', 'assignment', 'list', '--assignee', s.admin.userName, '--all'),
      run('role', 'definition', 'list', '--name', 'Key Vault Secrets User'),
    ]);
    const mine = ok(listed).json.find((x: { scope: string }) => x.scope === vaultId);
    assert.equal(mine.roleDefinitionName, 'Key Vault Secrets Officer');
    assert.equal(mine.principalName, s.admin.userName);
    assert.equal(ok(defs).json.length, 1);
    assert.equal(defs.json[0].roleName, 'Key Vault Secrets User');
    assert.equal(defs.json[0].roleType, 'BuiltInRole');

    const set = ok(
      await run(
        'keyvault',
        'secret',
        'set',
        '--vault-name',
        vault,
        '-n',
        'db-password',
        '--value',
        'first-value',
        '--content-type',
        'text/plain',
        '--tags',
        'app=shop',
        '--expires',
        '2030-01-31T00:00:00Z',
      ),
    );
    assert.equal(set.json.name, 'db-password');
    assert.equal(set.json.value, 'first-value');
    assert.equal(set.json.contentType, 'text/plain');
    assert.deepEqual(set.json.tags, { app: 'shop' });
    assert.equal(set.json.attributes.expires, '2030-01-31T00:00:00+00:00');
    assert.match(set.json.attributes.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    assert.equal(set.json.attributes.enabled, true);
    const v1 = String(set.json.id).split('/').pop()!;

    const file = join(tmp, 'blob.bin');
    writeFileSync(file, Buffer.from([0, 1, 2, 250, 255]));
    const fromFile = ok(
      await run(
        'keyvault',
        'secret',
        'set',
        '--vault-name',
        vault,
        '-n',
        'db-password',
        '-f',
        file,
        '-e',
        'base64',
      ),
    );
    assert.equal(fromFile.json.value, Buffer.from([0, 1, 2, 250, 255]).toString('base64'));
    assert.equal(fromFile.json.tags['file-encoding'], 'base64');

    const all = await Promise.all([
      run('keyvault', 'secret', 'show', '--vault-name', vault, '-n', 'db-password'),
      run('keyvault', 'secret', 'show', '--vault-name', vault, '-n', 'db-password', '--version', v1),
      run('keyvault', 'secret', 'list', '--vault-name', vault),
      run('keyvault', 'secret', 'list-versions', '--vault-name', vault, '-n', 'db-password'),
    ]);
    const [latest, old, list, versions] = all.map((r) => ok(r)) as [
      CliResult,
      CliResult,
      CliResult,
      CliResult,
    ];
    assert.equal(ok(latest).json.value, fromFile.json.value);
    assert.equal(ok(old).json.value, 'first-value');
    assert.deepEqual(
      ok(list).json.map((x: { name: string }) => x.name),
      ['db-password'],
    );
    assert.equal(list.json[0].value, undefined, 'lists never carry values');
    assert.equal(ok(versions).json.length, 2);

    const attrs = ok(
      await run('keyvault', 'secret', 'set-attributes', '--id', latest.json.id, '--enabled', 'false'),
    );
    assert.equal(attrs.json.attributes.enabled, false);
    const backup = join(tmp, 'db.bak');
    fails(
      await run('keyvault', 'secret', 'show', '--vault-name', vault, '-n', 'db-password'),
      /Forbidden.*disabled/,
    );
    ok(
      await run(
        'keyvault',
        'secret',
        'set-attributes',
        '--vault-name',
        vault,
        '-n',
        'db-password',
        '--enabled',
        'true',
      ),
    );
    // A file that already exists open to others is made private before the blob goes in.
    writeFileSync(backup, 'old', { mode: 0o644 });
    chmodSync(backup, 0o644);
    ok(await run('keyvault', 'secret', 'backup', '--vault-name', vault, '-n', 'db-password', '-f', backup));
    assert.ok(existsSync(backup), 'existsSync(backup)');
    assert.equal(statSync(backup).mode & 0o777, 0o600, 'backup file mode');
    // So is a manifest export (it may carry secret values).
    const exported = join(tmp, 'export.yaml');
    writeFileSync(exported, 'old', { mode: 0o644 });
    chmodSync(exported, 0o644);
    ok(await run('export', '-f', exported));
    assert.equal(statSync(exported).mode & 0o777, 0o600, 'export file mode');
    const del = ok(await run('keyvault', 'secret', 'delete', '--vault-name', vault, '-n', 'db-password'));
    assert.match(del.json.recoveryId, /\/deletedsecrets\/db-password$/);
    assert.match(del.json.scheduledPurgeDate, /\+00:00$/);
    const [deleted, shownDeleted] = await Promise.all([
      run('keyvault', 'secret', 'list-deleted', '--vault-name', vault),
      run('keyvault', 'secret', 'show-deleted', '--vault-name', vault, '-n', 'db-password'),
    ]);
    assert.equal(ok(deleted).json[0].name, 'db-password');
    assert.equal(ok(shownDeleted).json.name, 'db-password');
    assert.equal(shownDeleted.json.value, undefined);
    ok(await run('keyvault', 'secret', 'recover', '--vault-name', vault, '-n', 'db-password'));
    ok(await run('keyvault', 'secret', 'delete', '--vault-name', vault, '-n', 'db-password', '-o', 'none'));
    const purged = ok(await run('keyvault', 'secret', 'purge', '--vault-name', vault, '-n', 'db-password'));
    assert.equal(purged.stdout, '');
    const restored = ok(await run('keyvault', 'secret', 'restore', '--vault-name', vault, '-f', backup));
    assert.equal(restored.json.name, 'db-password');
    assert.equal(
      ok(await run('keyvault', 'secret', 'show', '--vault-name', vault, '-n', 'db-password')).json.value,
      fromFile.json.value,
    );
  });

  test('a service principal with only a data-plane role finds the vault without ARM read access', async () => {
    const sp = await servicePrincipal(s, 'cli-reader');
    ok(
      await run(
        'role',
        'assignment',
        'create',
        '--assignee',
        sp.appId,
        '--role',
        'Key Vault Secrets User',
        '--scope',
        vaultId,
      ),
    );
    const user = cliUser();
    try {
      const g = ['--server', s.info.authority, '--ca-file', s.info.caCertPath];
      ok(
        await user.run(
          ...g,
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
        ),
      );
      // No ARM read: the vault URL comes from the secret id.
      const got = ok(
        await user.run(
          ...g,
          'keyvault',
          'secret',
          'show',
          '--id',
          `${s.vaultUrl(vault)}/secrets/db-password`,
        ),
      );
      assert.equal(got.json.name, 'db-password');
      fails(
        await user.run(...g, 'keyvault', 'secret', 'show', '--vault-name', vault, '-n', 'db-password'),
        /not found/,
      );
    } finally {
      user.cleanup();
    }
    // Removing the assignment by assignee/role/scope.
    ok(
      await run(
        'role',
        'assignment',
        'delete',
        '--assignee',
        sp.appId,
        '--role',
        'Key Vault Secrets User',
        '--scope',
        vaultId,
      ),
    );
    fails(
      await run('role', 'assignment', 'delete', '--assignee', sp.appId, '--scope', vaultId),
      /no matching/,
    );
  });

  test('access policies (set-policy by --spn, delete-policy) and vault soft delete (delete, recover, purge)', async () => {
    const policies = async () => {
      const sp = await servicePrincipal(s, 'cli-policy');
      ok(
        await run(
          'keyvault',
          'create',
          '-n',
          'clipolicy',
          '--enable-rbac-authorization',
          'false',
          '-o',
          'none',
        ),
      );
      const set = ok(
        await run(
          'keyvault',
          'set-policy',
          '-n',
          'clipolicy',
          '--spn',
          sp.appId,
          '--secret-permissions',
          'get',
          'list',
        ),
      );
      const pol = set.json.properties.accessPolicies.find((p: { objectId: string }) => p.objectId === sp.id);
      assert.deepEqual(pol.permissions.secrets, ['get', 'list']);
      assert.equal(set.json.properties.accessPolicies.length, 2, 'the creator got a policy, as with az');
      const more = ok(
        await run(
          'keyvault',
          'set-policy',
          '-n',
          'clipolicy',
          '--object-id',
          sp.id,
          '--key-permissions',
          'get',
        ),
      );
      const pol2 = more.json.properties.accessPolicies.find(
        (p: { objectId: string }) => p.objectId === sp.id,
      );
      assert.deepEqual(pol2.permissions, { secrets: ['get', 'list'], keys: ['get'] });
      const [del, none] = await Promise.all([
        run('keyvault', 'delete-policy', '-n', 'clipolicy', '--spn', sp.appId),
        run('keyvault', 'set-policy', '-n', 'clipolicy', '--spn', sp.appId),
      ]);
      assert.equal(
        ok(del).json.properties.accessPolicies.find((p: { objectId: string }) => p.objectId === sp.id),
        undefined,
      );
      fails(none, /--secret-permissions/, 2);
    };
    const softDelete = async () => {
      ok(await run('keyvault', 'create', '-n', 'cligone', '-o', 'none'));
      ok(await run('keyvault', 'delete', '-n', 'cligone'));
      const listed = ok(await run('keyvault', 'list-deleted'));
      assert.ok(
        listed.json.some((v: { name: string }) => v.name === 'cligone'),
        "listed.json.some((v: { name: string }) => v.name === 'cligone')",
      );
      const rec = ok(await run('keyvault', 'recover', '-n', 'cligone'));
      assert.equal(rec.json.name, 'cligone');
      ok(await run('keyvault', 'delete', '-n', 'cligone'));
      ok(await run('keyvault', 'purge', '-n', 'cligone'));
      const [after, again] = await Promise.all([
        run('keyvault', 'list-deleted'),
        run('keyvault', 'recover', '-n', 'cligone'),
      ]);
      assert.ok(
        !ok(after).json.some((v: { name: string }) => v.name === 'cligone'),
        "!ok(after).json.some((v: { name: string }) => v.name === 'cligone')",
      );
      fails(again, /no deleted vault/);
    };
    await Promise.all([policies(), softDelete()]);
  });

  test('audit list (filters, paging) and audit verify (non-zero exit on a broken chain)', async () => {
    for (let i = 0; i < 110; i++)
      void s.services.audit.record({
        tenantId: s.info.tenantId,
        operation: 'CliBulk',
        status: 200,
        target: `t${i}`,
      });
    await s.services.audit.drain();
    const [bulk, sets, table] = await Promise.all([
      run('audit', 'list', '--operation', 'CliBulk', '--top', '105'),
      run('audit', 'list', '--vault', vault, '--operation', 'SecretSet', '--caller', s.admin.userName),
      run('audit', 'list', '--vault', vault, '--top', '3', '-o', 'table'),
    ]);
    assert.equal(ok(bulk).json.length, 105, 'two pages followed');
    assert.equal(bulk.json[0].target, 't109');
    assert.equal(bulk.json[104].target, 't5');
    assert.equal(ok(sets).json.length, 2);
    assert.ok(
      sets.json.every(
        (e: { operation: string; vault: string }) => e.operation === 'SecretSet' && e.vault === vault,
      ),
      "sets.json.every( (e: { operation: string; vault: string }) => e.operation === 'SecretSe...",
    );
    assert.match(ok(table).stdout, /^Time\s+Operation\s+Status\s+Vault/);
    // The table names callers by display name (through the directory); an unknown id stays an id.
    const me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal;
    const stranger = '0c0ffee0-0000-4000-8000-000000000001';
    for (const callerOid of [me.id, stranger])
      void s.services.audit.record({
        tenantId: s.info.tenantId,
        operation: 'CliNamed',
        status: 200,
        callerOid,
      });
    await s.services.audit.drain();
    const named = ok(await run('audit', 'list', '--operation', 'CliNamed', '-o', 'table')).stdout;
    assert.ok(named.includes(me.displayName), named);
    assert.ok(!named.includes(me.id), 'the id of a named caller is not shown');
    assert.ok(named.includes(stranger), named);
    const raw = ok(await run('audit', 'list', '--operation', 'CliNamed')).json;
    assert.deepEqual(raw.map((e: { callerOid: string }) => e.callerOid).sort(), [me.id, stranger].sort());
    fails(await run('audit', 'list', '--start-time', 'yesterday'), /ISO 8601/, 2);

    const good = ok(await run('audit', 'verify'));
    assert.equal(good.json.ok, true);
    assert.ok(good.json.count > 100, 'good.json.count > 100');
    await s.services.db.run("UPDATE audit_events SET target = 'forged' WHERE seq = 7");
    const bad = await run('audit', 'verify');
    assert.equal(bad.json.ok, false);
    assert.equal(bad.json.brokenAt, 7);
    fails(bad, /broken at event 7: event 7 was altered/);
  });

  test('errors: not logged in is one clear line', async () => {
    const stranger = cliUser();
    try {
      fails(
        await stranger.run('--server', s.info.authority, '--ca-file', s.info.caCertPath, 'keyvault', 'list'),
        /not logged in/,
      );
    } finally {
      stranger.cleanup();
    }
  });
});
