import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CliResult, CliUser } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { cliOk, vaultAdminCli } from './helpers/vault-cli.js';

const ok = cliOk;
/** A failure: exit 1, one `ERROR:` line on stderr matching `pattern`. */
const fails = (r: CliResult, pattern: RegExp) => {
  assert.equal(r.code, 1, `exit 1 expected; stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^ERROR: /);
  assert.match(r.stderr, pattern);
};

/**
 * `latchkey keyvault certificate issuer admin add|list|delete` (az's shape): the real CLI binary
 * against a real server, over the issuer's `org_details.admin_details`.
 */
describe('keyvault certificate issuer admin CLI', () => {
  let s: TestServer;
  let user: CliUser;
  let run: (...args: string[]) => Promise<CliResult>;
  const v = ['--vault-name', 'cliadmins'];
  const issuer = (...args: string[]) => run('keyvault', 'certificate', 'issuer', ...args);
  const admin = (...args: string[]) => issuer('admin', ...args);

  before(async () => {
    s = await startTestServer();
    ({ user, run } = await vaultAdminCli(s, 'cliadmins', 'Key Vault Certificates Officer'));
  });
  after(async () => {
    user?.cleanup();
    await s?.stop();
  });

  test("add, list, delete (alias remove) in az's shape; the issuer's other fields are kept", async () => {
    const i = ['--issuer-name', 'corp'];
    ok(
      await issuer(
        'create',
        ...v,
        ...i,
        '--provider-name',
        'Latchkey',
        '--account-id',
        'acct-9',
        '--organization-id',
        'org-9',
      ),
    );
    assert.deepEqual(ok(await admin('list', ...v, ...i)).json, []);

    const added = ok(
      await admin(
        'add',
        ...v,
        ...i,
        '--email',
        'pki@example.com',
        '--first-name',
        'Ada',
        '--last-name',
        'Lovelace',
        '--phone',
        '555-0100',
      ),
    ).json;
    assert.deepEqual(added, {
      emailAddress: 'pki@example.com',
      firstName: 'Ada',
      lastName: 'Lovelace',
      phone: '555-0100',
    });
    ok(await admin('add', ...v, ...i, '--email', 'ops@example.com'));
    fails(
      await admin('add', ...v, ...i, '--email', 'ops@example.com'),
      /admin 'ops@example.com' already exists/,
    );
    assert.deepEqual(ok(await admin('list', ...v, ...i)).json, [
      added,
      { emailAddress: 'ops@example.com', firstName: null, lastName: null, phone: null },
    ]);
    // The issuer as the server keeps it: the admins under its organization, the rest untouched.
    const shown = ok(await issuer('show', ...v, ...i)).json;
    assert.equal(shown.organizationDetails.id, 'org-9');
    assert.equal(shown.organizationDetails.adminDetails.length, 2);
    assert.deepEqual(shown.credentials, { accountId: 'acct-9', password: null });
    assert.equal(shown.provider, 'Latchkey');

    // A new organization id through `issuer update` keeps the admins.
    ok(await issuer('update', ...v, ...i, '--organization-id', 'org-10'));
    const moved = ok(await issuer('show', ...v, ...i)).json;
    assert.equal(moved.organizationDetails.id, 'org-10');
    assert.equal(
      moved.organizationDetails.adminDetails.length,
      2,
      'update --organization-id keeps the admins',
    );

    const del = ok(await admin('delete', ...v, ...i, '--email', 'pki@example.com'));
    assert.equal(del.stdout.trim(), '', 'as az, delete prints nothing');
    fails(
      await admin('delete', ...v, ...i, '--email', 'pki@example.com'),
      /admin 'pki@example.com' not found for issuer 'corp'/,
    );
    ok(await admin('remove', ...v, ...i, '--email', 'ops@example.com'));
    assert.deepEqual(ok(await admin('list', ...v, ...i)).json, []);
    assert.equal(ok(await issuer('show', ...v, ...i)).json.organizationDetails.id, 'org-10');

    // An unknown issuer is the server's 404; a missing --email is a usage error.
    fails(await admin('list', ...v, '--issuer-name', 'nope'), /Issuer not found: nope/);
    fails(await admin('add', ...v, '--issuer-name', 'nope', '--email', 'a@b.c'), /Issuer not found: nope/);
    const usage = await admin('add', ...v, ...i);
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /--email/);
  });
});
