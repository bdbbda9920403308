import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliUser, cliUser } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

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
    s = await startTestServer();
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
});
