import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliUser, cliUser } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const GH = 'https://token.actions.githubusercontent.com';
const GH_SUB = 'repo:org/repo:ref:refs/heads/main';

describe('CLI: identity and app commands', () => {
  let s: TestServer;
  let cli: CliUser;
  let tmp: string;
  const run = async (...args: string[]) => {
    const r = await cli.run(...args);
    assert.equal(r.code, 0, `latchkey ${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  before(async () => {
    s = await startTestServer({ federation: { allowedIssuers: [GH] } });
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-agent-'));
    cli = cliUser(join(tmp, 'cli'));
    const login = await cli.run(
      '--server',
      s.info.authority,
      '--ca-file',
      s.info.caCertPath,
      'login',
      '-u',
      s.admin.userName,
      '-p',
      s.admin.password,
      '--tenant',
      s.info.tenantId,
    );
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    await s?.stop();
    cli?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('identity and app commands, az-shaped', async () => {
    const id = (await run('identity', 'create', '-n', 'cli-uai')).json;
    assert.equal(id.name, 'cli-uai');
    assert.equal(id.resourceGroup, 'default');
    assert.match(id.clientId, /^[0-9a-f-]{36}$/);
    assert.match(id.principalId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      (await run('identity', 'list', '-g', 'default')).json.map((i: { name: string }) => i.name),
      ['cli-uai'],
    );

    const app = (await run('app', 'create', '-n', 'cli-app', '--assign-identity', '[system]')).json;
    assert.equal(app.identity.type, 'SystemAssigned');
    assert.equal(app.properties.hostName, 'local');
    const assigned = (await run('app', 'identity', 'assign', '-n', 'cli-app', '--identities', 'cli-uai'))
      .json;
    assert.equal(assigned.type, 'SystemAssigned, UserAssigned');
    assert.deepEqual(Object.keys(assigned.userAssignedIdentities), [id.id]);
    assert.equal(assigned.principalId, app.identity.principalId, 'the system identity is kept');

    const set = await run(
      'app',
      'config',
      'appsettings',
      'set',
      '-n',
      'cli-app',
      '--settings',
      'A=1',
      'B=two=2',
    );
    assert.deepEqual(set.json, [
      { name: 'A', slotSetting: false, value: null },
      { name: 'B', slotSetting: false, value: null },
    ]);
    assert.match(set.stderr, /redacted/);
    const listed = (await run('app', 'config', 'appsettings', 'list', '-n', 'cli-app')).json;
    assert.deepEqual(listed, [
      { name: 'A', slotSetting: false, value: '1' },
      { name: 'B', slotSetting: false, value: 'two=2' },
    ]);
    const deleted = await run(
      'app',
      'config',
      'appsettings',
      'delete',
      '-n',
      'cli-app',
      '--setting-names',
      'A',
    );
    assert.deepEqual(deleted.json, [{ name: 'B', slotSetting: false, value: null }]);

    const removed = (await run('app', 'identity', 'remove', '-n', 'cli-app', '--identities', id.id)).json;
    assert.equal(removed.type, 'SystemAssigned');
    const noSystem = (await run('app', 'identity', 'remove', '-n', 'cli-app')).json;
    assert.equal(noSystem.type, 'None');
    const notThere = await cli.run('app', 'identity', 'remove', '-n', 'cli-app', '--identities', 'cli-uai');
    assert.equal(notThere.code, 1);
    assert.match(notThere.stderr, /is not assigned/);
    await run('identity', 'delete', '-n', 'cli-uai');
    await run('app', 'delete', '-n', 'cli-app');
    assert.equal(await s.services.apps.byName(s.info.tenantId, 'cli-app'), undefined);
    assert.equal(await s.services.principals.getById(id.principalId), undefined);
  });

  test('identity federated-credential create|list|show|delete, az-shaped', async () => {
    const id = (await run('identity', 'create', '-n', 'cli-fed')).json;
    const created = (
      await run(
        'identity',
        'federated-credential',
        'create',
        '--name',
        'github-main',
        '--identity-name',
        'cli-fed',
        '--resource-group',
        'default',
        '--issuer',
        GH,
        '--subject',
        GH_SUB,
      )
    ).json;
    assert.deepEqual(created, {
      audiences: ['api://AzureADTokenExchange'],
      id: `${id.id}/federatedIdentityCredentials/github-main`,
      issuer: GH,
      name: 'github-main',
      resourceGroup: 'default',
      subject: GH_SUB,
      type: 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials',
    });
    const args = ['--identity-name', 'cli-fed'];
    assert.deepEqual(
      (await run('identity', 'federated-credential', 'list', ...args)).json.map(
        (f: { name: string }) => f.name,
      ),
      ['github-main'],
    );
    const shown = await run('identity', 'federated-credential', 'show', '-n', 'github-main', ...args);
    assert.equal(shown.json.subject, GH_SUB);
    const refused = await cli.run(
      'identity',
      'federated-credential',
      'create',
      '-n',
      'elsewhere',
      ...args,
      '--issuer',
      'https://gitlab.com',
      '--subject',
      'x',
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not on this server's list of allowed federation issuers/);
    await run('identity', 'federated-credential', 'delete', '-n', 'github-main', ...args);
    assert.deepEqual((await run('identity', 'federated-credential', 'list', ...args)).json, []);
    const gone = await cli.run('identity', 'federated-credential', 'show', '-n', 'github-main', ...args);
    assert.equal(gone.code, 1, 'shown after deletion');
  });

  test('ad app federated-credential create|list|show|delete with --parameters JSON or @file', async () => {
    const sp = await s.services.principals.createServicePrincipal(s.info.tenantId, {
      displayName: 'cli-fed-app',
    });
    const params = {
      name: 'gh-main',
      issuer: GH,
      subject: GH_SUB,
      audiences: ['api://AzureADTokenExchange'],
    };
    const created = (
      await run(
        'ad',
        'app',
        'federated-credential',
        'create',
        '--id',
        sp.appId!,
        '--parameters',
        JSON.stringify(params),
      )
    ).json;
    assert.deepEqual(created, { ...params, id: created.id, description: null });
    const file = join(tmp, 'fic.json');
    writeFileSync(
      file,
      JSON.stringify({ ...params, name: 'gh-prod', subject: 'repo:org/repo:environment:prod' }),
    );
    await run('ad', 'app', 'federated-credential', 'create', '--id', sp.id, '--parameters', `@${file}`);
    const listed = (await run('ad', 'app', 'federated-credential', 'list', '--id', sp.appId!)).json;
    assert.deepEqual(
      listed.map((f: { name: string }) => f.name),
      ['gh-main', 'gh-prod'],
    );
    const byName = await run(
      'ad',
      'app',
      'federated-credential',
      'show',
      '--id',
      sp.appId!,
      '--federated-credential-id',
      'gh-prod',
    );
    assert.equal(byName.json.subject, 'repo:org/repo:environment:prod');
    await run(
      'ad',
      'app',
      'federated-credential',
      'delete',
      '--id',
      sp.appId!,
      '--federated-credential-id',
      created.id,
    );
    assert.deepEqual(
      (await run('ad', 'app', 'federated-credential', 'list', '--id', sp.id)).json.map(
        (f: { name: string }) => f.name,
      ),
      ['gh-prod'],
    );
    // A dot-segment id would be resolved to the parent by the URL parser: DELETE of the application.
    for (const dots of ['..', '.']) {
      const refused = await cli.run(
        'ad',
        'app',
        'federated-credential',
        'delete',
        '--id',
        sp.appId!,
        '--federated-credential-id',
        dots,
      );
      assert.equal(refused.code, 2, `delete --federated-credential-id ${dots}: ${refused.stderr}`);
      assert.match(refused.stderr, /cannot be a name or id/);
    }
    const stillThere = await cli.run('ad', 'sp', 'show', '--id', sp.appId!);
    assert.equal(stillThere.code, 0, `the application survives: ${stillThere.stderr}`);
    assert.equal(
      (await run('ad', 'app', 'federated-credential', 'list', '--id', sp.id)).json.length,
      1,
      'its credential too',
    );
    const badJson = await cli.run(
      'ad',
      'app',
      'federated-credential',
      'create',
      '--id',
      sp.id,
      '--parameters',
      '{nope',
    );
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /--parameters must be a JSON object/);
    const noApp = await cli.run(
      'ad',
      'app',
      'federated-credential',
      'list',
      '--id',
      '00000000-0000-0000-0000-000000000000',
    );
    assert.equal(noApp.code, 1);
    assert.match(noApp.stderr, /no application/);
  });
});
