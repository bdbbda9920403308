import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CliResult, CliUser } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { cliOk, vaultAdminCli } from './helpers/vault-cli.js';

const ok = cliOk;

/** `latchkey keyvault certificate contact add|list|delete`: the real CLI binary against a real server. */
describe('keyvault certificate contact CLI', () => {
  let s: TestServer;
  let user: CliUser;
  let run: (...args: string[]) => Promise<CliResult>;
  const v = ['--vault-name', 'clicontacts'];
  const contact = (...args: string[]) => run('keyvault', 'certificate', 'contact', ...args);

  before(async () => {
    s = await startTestServer();
    ({ user, run } = await vaultAdminCli(s, 'clicontacts', 'Key Vault Certificates Officer'));
  });
  after(async () => {
    user?.cleanup();
    await s?.stop();
  });

  test("add, list, delete in az's shape; a duplicate or unknown email is refused", async () => {
    const id = `${s.vaultUrl('clicontacts')}/certificates/contacts`;
    // None set: list fails with the server's 404.
    const none = await contact('list', ...v);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /^ERROR: .*Contacts not found/);

    const a = ok(await contact('add', ...v, '--email', 'ops@example.com', '--name', 'Ops', '--phone', '555'));
    assert.deepEqual(a.json, {
      contactList: [{ emailAddress: 'ops@example.com', name: 'Ops', phone: '555' }],
      id,
    });
    ok(await contact('add', ...v, '--email', 'pki@example.com'));
    const dup = await contact('add', ...v, '--email', 'pki@example.com');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^ERROR: contact 'pki@example.com' already exists/);
    const bad = await contact('add', ...v, '--email', 'not-an-address');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^ERROR: .*valid email/);

    assert.deepEqual(ok(await contact('list', ...v)).json, {
      contactList: [
        { emailAddress: 'ops@example.com', name: 'Ops', phone: '555' },
        { emailAddress: 'pki@example.com', name: null, phone: null },
      ],
      id,
    });
    const d = ok(await contact('delete', ...v, '--email', 'ops@example.com'));
    assert.deepEqual(d.json.contactList, [{ emailAddress: 'pki@example.com', name: null, phone: null }]);
    const missing = await contact('delete', ...v, '--email', 'ops@example.com');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^ERROR: contact 'ops@example.com' not found/);
    // The last one removes the list.
    ok(await contact('delete', ...v, '--email', 'pki@example.com'));
    assert.equal((await contact('list', ...v)).code, 1);
  });
});
