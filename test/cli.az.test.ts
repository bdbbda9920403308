import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { request } from '../src/cli/http.js';
import { type CliResult, type CliUser, cliUser, runCli } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ok = (r: CliResult, what = ''): CliResult => {
  assert.equal(r.code, 0, `${what} exit 0 expected; stderr: ${r.stderr}`);
  return r;
};
/** A failure: exit code, one `ERROR:` line on stderr, no stack, no help text. */
const fails = (r: CliResult, pattern: RegExp, code = 1) => {
  assert.equal(r.code, code, `exit ${code} expected; stdout: ${r.stdout} stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^ERROR: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |Usage:/);
};
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI color codes are what jsonc/yamlc add
const ANSI = /\u001b\[[0-9;]*m/g;

/** Issue 16: the az habits of the `latchkey` CLI (global options, verbs, tables, errors). */
describe('latchkey CLI: what az users expect', () => {
  let s: TestServer;
  let admin: CliUser;
  let tmp: string;
  let g: string[];
  let run: (...args: string[]) => Promise<CliResult>;

  before(async () => {
    s = await startTestServer();
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-cliaz-'));
    admin = cliUser();
    g = ['--server', s.info.authority, '--ca-file', s.info.caCertPath];
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

  test('usage errors: one ERROR line naming the fix and the command’s help, exit 2', async () => {
    const [missingOpt, unknownVerb, badQuery, noTerminal] = await Promise.all([
      run('keyvault', 'secret', 'show', '--name', 'x'),
      run('keyvault', 'sekret'),
      run('account', 'show', '--query', '[['),
      admin.run(...g, 'login', '--service-principal', '-u', 'some-app'),
    ]);
    fails(missingOpt, /--vault-name|--id/, 2);
    fails(unknownVerb, /unknown command 'sekret'.*\(see `latchkey keyvault --help`\)/, 2);
    fails(badQuery, /--query: invalid JMESPath expression '\[\['/, 2);
    fails(noTerminal, /Client secret is required \(no terminal.*-p\/--password.*LATCHKEY_PASSWORD/, 2);
  });

  test('--query (JMESPath) and -o json|jsonc|yaml|yamlc|tsv|table|none', async () => {
    const [tsv, yaml, yamlc, jsonc, table, none, list] = await Promise.all([
      run('account', 'show', '--query', 'tenantId', '-o', 'tsv'),
      run('account', 'show', '-o', 'yaml'),
      run('account', 'show', '-o', 'yamlc'),
      run('account', 'show', '--query', '{t: tenantId, u: user.name}', '-o', 'jsonc'),
      run('account', 'show', '--query', '{Tenant: tenantId, User: user.name}', '-o', 'table'),
      run('account', 'show', '-o', 'none'),
      run('account', 'show', '--query', '[@][?isDefault].tenantId'),
    ]);
    assert.equal(ok(tsv).stdout, `${s.admin.tenantId}\n`);
    assert.equal(parseYaml(ok(yaml).stdout).tenantId, s.admin.tenantId);
    assert.match(ok(yamlc).stdout, ANSI);
    assert.equal(parseYaml(yamlc.stdout.replace(ANSI, '')).tenantId, s.admin.tenantId);
    assert.match(ok(jsonc).stdout, ANSI);
    assert.deepEqual(JSON.parse(jsonc.stdout.replace(ANSI, '')), {
      t: s.admin.tenantId,
      u: s.admin.userName,
    });
    assert.match(ok(table).stdout, /^Tenant\s+User\n-+\s+-+\n/);
    assert.equal(ok(none).stdout, '');
    assert.deepEqual(ok(list).json, [s.admin.tenantId]);
  });

  test('--verbose/--debug show request lines and never a password, token or secret value', async () => {
    const secret = 'verbose-secret-value-7f3a';
    const login = await admin.run(
      ...g,
      'login',
      '-u',
      s.admin.userName,
      '-p',
      s.admin.password,
      '-t',
      s.admin.tenantId,
      '--debug',
    );
    ok(login);
    assert.match(login.stderr, /^INFO: POST https:\/\/[^ ]+\/oauth2\/v2\.0\/token -> 200 \(\d+ ms\)$/m);
    assert.match(login.stderr, /^DEBUG: command: latchkey login; config dir: /m);
    const tok = ok(await run('account', 'get-access-token', '--resource', 'https://vault.localhost'));
    const sp = ok(await run('ad', 'sp', 'create', '-n', 'verbose-sp', '--debug'));
    const kv = ok(await run('keyvault', 'create', '-n', 'verbosekv', '--verbose'));
    await grant(run, s.admin.userName, 'Key Vault Secrets Officer', kv.json.id);
    const set = ok(
      await run(
        'keyvault',
        'secret',
        'set',
        '--vault-name',
        'verbosekv',
        '-n',
        'v',
        '--value',
        secret,
        '--debug',
      ),
    );
    const show = ok(
      await run('keyvault', 'secret', 'show', '--vault-name', 'verbosekv', '-n', 'v', '--debug'),
    );
    assert.equal(show.json.value, secret);
    for (const r of [login, sp, set, show]) {
      assert.match(r.stderr, /^INFO: (GET|PUT|POST) https:\/\//m);
      for (const bad of [
        s.admin.password,
        secret,
        sp.json.password,
        tok.json.accessToken,
        'Bearer ',
        'authorization',
        'refresh_token',
      ])
        assert.ok(!r.stderr.toLowerCase().includes(String(bad).toLowerCase()), `stderr leaks ${bad}`);
    }
  });

  test('secret set -f - reads stdin; a text file’s final newline is not in the secret; download writes it back', async () => {
    const kv = ok(await run('keyvault', 'create', '-n', 'stdinkv'));
    await grant(run, s.admin.userName, 'Key Vault Secrets Officer', kv.json.id);
    const file = join(tmp, 'token.txt');
    writeFileSync(file, 'tok-from-file\n');
    const crlf = join(tmp, 'crlf.txt');
    writeFileSync(crlf, 'two\nlines\r\n');
    const bin = join(tmp, 'bin.dat');
    writeFileSync(bin, Buffer.from([0, 1, 10]));
    const set = (...a: string[]) => run('keyvault', 'secret', 'set', '--vault-name', 'stdinkv', ...a);
    const [fromStdin, fromFile, fromCrlf, fromBin, empty] = await Promise.all([
      runCli([...g, 'keyvault', 'secret', 'set', '--vault-name', 'stdinkv', '-n', 'stdin', '-f', '-'], {
        configDir: admin.configDir,
        input: 'tok-from-stdin\n',
      }),
      set('-n', 'file', '-f', file),
      set('-n', 'crlf', '-f', crlf),
      set('-n', 'bin', '-f', bin, '-e', 'base64'),
      runCli([...g, 'keyvault', 'secret', 'set', '--vault-name', 'stdinkv', '-n', 'empty', '-f', '-'], {
        configDir: admin.configDir,
        input: '',
      }),
    ]);
    assert.equal(ok(fromStdin).json.value, 'tok-from-stdin');
    assert.equal(ok(fromFile).json.value, 'tok-from-file');
    assert.equal(ok(fromCrlf).json.value, 'two\nlines');
    assert.equal(ok(fromBin).json.value, Buffer.from([0, 1, 10]).toString('base64'), 'binary kept exactly');
    fails(empty, /stdin is empty/, 2);

    const out = join(tmp, 'out.txt');
    const outBin = join(tmp, 'out.bin');
    const [dl, dlBin] = await Promise.all([
      run('keyvault', 'secret', 'download', '--vault-name', 'stdinkv', '-n', 'file', '-f', out),
      run(
        'keyvault',
        'secret',
        'download',
        '--vault-name',
        'stdinkv',
        '-n',
        'bin',
        '-f',
        outBin,
        '-e',
        'base64',
      ),
    ]);
    ok(dl);
    ok(dlBin);
    assert.equal(dl.stdout, '');
    assert.equal(readFileSync(out, 'utf8'), 'tok-from-file');
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual([...readFileSync(outBin)], [0, 1, 10]);
    fails(
      await run('keyvault', 'secret', 'download', '--vault-name', 'stdinkv', '-n', 'file', '-f', out),
      /already exists/,
      2,
    );
    assert.equal(readFileSync(out, 'utf8'), 'tok-from-file', 'not overwritten');
  });

  test('az verbs: group create|list|show, account list|set, ad signed-in-user show, ad sp create-for-rbac', async () => {
    const created = ok(await run('group', 'create', '-n', 'azverbs'));
    assert.equal(created.json.name, 'azverbs');
    assert.match(created.json.id, /\/resourceGroups\/azverbs$/);
    const [list, shown, table, del] = await Promise.all([
      run('group', 'list', '--query', '[].name'),
      run('group', 'show', '-n', 'azverbs'),
      run('group', 'list', '-o', 'table'),
      run('group', 'delete', '-n', 'azverbs'),
    ]);
    assert.ok(ok(list).json.includes('azverbs'), "ok(list).json.includes('azverbs')");
    assert.equal(ok(shown).json.id, created.json.id);
    assert.match(ok(table).stdout, /^Name\s+Location\s+Status\n/);
    // Without a terminal and without --yes, nothing is deleted.
    fails(del, /group delete removes 'azverbs' and everything in it: pass --yes \(-y\)/, 2);
    // A vault in the new group.
    ok(await run('keyvault', 'create', '-n', 'azverbskv', '-g', 'azverbs'));

    const accounts = ok(await run('account', 'list'));
    assert.equal(accounts.json.filter((a: { isDefault: boolean }) => a.isDefault).length, 1);
    const sub = accounts.json[0].id as string;
    ok(await run('account', 'set', '-s', sub));
    assert.equal(ok(await run('account', 'show', '--query', 'id', '-o', 'tsv')).stdout.trim(), sub);
    fails(
      await run('account', 'set', '-s', 'no-such-subscription'),
      /not found: see `latchkey account list`/,
    );

    const me = ok(await run('ad', 'signed-in-user', 'show'));
    assert.equal(me.json.userPrincipalName, s.admin.userName);
    assert.match(me.json.id, /^[0-9a-f-]{36}$/);

    const scope = `/subscriptions/${sub}/resourceGroups/azverbs/providers/Microsoft.KeyVault/vaults/azverbskv`;
    const rbac = ok(
      await run(
        'ad',
        'sp',
        'create-for-rbac',
        '-n',
        'rbac-sp',
        '--role',
        'Key Vault Secrets User',
        '--scopes',
        scope,
      ),
    );
    assert.deepEqual(Object.keys(rbac.json).sort(), ['appId', 'displayName', 'password', 'tenant']);
    const assigned = ok(
      await run(
        'role',
        'assignment',
        'list',
        '--assignee',
        rbac.json.appId,
        '--all',
        '--query',
        '[].[roleDefinitionName, scope]',
      ),
    );
    assert.deepEqual(assigned.json, [['Key Vault Secrets User', scope]]);
    const spCli = cliUser();
    try {
      ok(
        await spCli.run(
          ...g,
          'login',
          '--service-principal',
          '-u',
          rbac.json.appId,
          '-p',
          rbac.json.password,
          '-t',
          rbac.json.tenant,
        ),
      );
      fails(await spCli.run(...g, 'ad', 'signed-in-user', 'show'), /service principal, not a user/);
    } finally {
      spCli.cleanup();
    }

    // group delete --yes: the group and its vault go (the vault soft-deleted), its assignments too.
    ok(await run('group', 'delete', '-n', 'azverbs', '--yes'));
    fails(await run('group', 'show', '-n', 'azverbs'), /could not be found/);
    const deleted = ok(await run('keyvault', 'list-deleted', '--query', '[].name')).json;
    assert.ok(deleted.includes('azverbskv'), JSON.stringify(deleted));
    assert.deepEqual(
      ok(await run('role', 'assignment', 'list', '--assignee', rbac.json.appId, '--all')).json,
      [],
    );
    fails(await run('group', 'delete', '-n', 'azverbs', '-y'), /could not be found/);
  });

  test('completion bash|zsh, examples and global options in every help', async () => {
    const [bash, zsh, help, subHelp] = await Promise.all([
      run('completion', 'bash'),
      run('completion', 'zsh'),
      run('--help'),
      run('keyvault', 'secret', 'set', '--help'),
    ]);
    const script = join(tmp, 'complete.sh');
    writeFileSync(script, ok(bash).stdout);
    const words = (line: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source ${script}; COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${line.length - 1}; _latchkey_complete; echo "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8' },
      ).trim();
    assert.equal(words(['latchkey', 'keyvault', 'sec']), 'secret');
    assert.equal(words(['latchkey', 'keyvault', 'secret', 'set', '--vault']), '--vault-name');
    assert.match(words(['latchkey', 'gr']), /^group$/);
    assert.match(ok(zsh).stdout, /bashcompinit/);
    assert.match(ok(help).stdout, /Examples:\n {2}latchkey login/);
    assert.match(ok(subHelp).stdout, /Examples:[\s\S]*-f -/);
    assert.match(subHelp.stdout, /Global Options:[\s\S]*--query <jmespath>[\s\S]*--only-show-errors/);
  });

  test('a browser at the authority’s / is redirected to the console; API clients keep the JSON 404', async () => {
    const ca = readFileSync(s.info.caCertPath, 'utf8');
    const [browser, api] = await Promise.all([
      request('GET', `${s.info.authority}/`, { ca, headers: { accept: 'text/html,application/xhtml+xml' } }),
      request('GET', `${s.info.authority}/`, { ca }),
    ]);
    assert.equal(browser.status, 302);
    assert.equal(browser.headers.location, '/console/');
    assert.equal(api.status, 404);
    assert.equal(api.body.error.code, 'NotFound');
  });

  test('export -g exports what the caller may read and names the vault it skipped', async () => {
    ok(await run('group', 'create', '-n', 'exportrg'));
    const [a, b] = await Promise.all([
      run('keyvault', 'create', '-n', 'exportkva', '-g', 'exportrg'),
      run('keyvault', 'create', '-n', 'exportkvb', '-g', 'exportrg'),
    ]);
    await grant(run, s.admin.userName, 'Key Vault Secrets Officer', ok(a).json.id);
    await grant(run, s.admin.userName, 'Key Vault Secrets Officer', ok(b).json.id);
    ok(
      await run(
        'keyvault',
        'secret',
        'set',
        '--vault-name',
        'exportkva',
        '-n',
        'seen',
        '--value',
        'x',
        '-o',
        'none',
      ),
    );
    ok(
      await run(
        'keyvault',
        'secret',
        'set',
        '--vault-name',
        'exportkvb',
        '-n',
        'hidden',
        '--value',
        'y',
        '-o',
        'none',
      ),
    );
    // A reader of the group who may list the secrets of vault A only.
    const sp = ok(
      await run(
        'ad',
        'sp',
        'create-for-rbac',
        '-n',
        'export-reader',
        '--role',
        'Reader',
        '--scopes',
        a.json.id.replace(/\/providers\/.*$/, ''),
      ),
    );
    ok(
      await run(
        'role',
        'assignment',
        'create',
        '--assignee',
        sp.json.appId,
        '--role',
        'Key Vault Secrets User',
        '--scope',
        a.json.id,
      ),
    );
    const reader = cliUser();
    try {
      ok(
        await reader.run(
          ...g,
          'login',
          '--service-principal',
          '-u',
          sp.json.appId,
          '-p',
          sp.json.password,
          '-t',
          sp.json.tenant,
        ),
      );
      const out = join(tmp, 'export.yaml');
      const r = ok(await reader.run(...g, 'export', '-g', 'exportrg', '-f', out));
      const m = parseYaml(readFileSync(out, 'utf8'));
      assert.deepEqual(m.vaults.map((v: { name: string }) => v.name).sort(), ['exportkva', 'exportkvb']);
      assert.deepEqual(
        m.secrets.map((x: { vault: string; name: string }) => `${x.vault}/${x.name}`),
        ['exportkva/seen'],
      );
      assert.match(r.stderr, /^WARNING: skipped vault exportkvb: secrets \(.+\)$/m);
      assert.doesNotMatch(r.stderr, /exportkva/);
    } finally {
      reader.cleanup();
    }
  });

  test('tables people can read: role names, scopes cut from the left, a few app and host columns', async () => {
    const kv = ok(await run('keyvault', 'create', '-n', 'tablekv-with-a-long-name', '--no-self-perms'));
    await grant(run, s.admin.userName, 'Key Vault Secrets User', kv.json.id);
    ok(await run('app', 'create', '-n', 'tableapp', '--assign-identity', '[system]', '-o', 'none'));
    const [roles, apps, hosts, queried] = await Promise.all([
      run('role', 'assignment', 'list', '--all', '-o', 'table'),
      run('app', 'list', '-o', 'table'),
      run('host', 'list', '-o', 'table'),
      run('app', 'list', '-o', 'table', '--query', '[].{App: name, Principal: identity.principalId}'),
    ]);
    const line = ok(roles)
      .stdout.split('\n')
      .find((l) => l.includes('tablekv-with-a-long-name'));
    assert.ok(line, roles.stdout);
    assert.match(line!, /Key Vault Secrets User/);
    assert.match(
      line!,
      /…\S*\/vaults\/tablekv-with-a-long-name\s*$/,
      'scope cut from the left, name visible',
    );
    assert.doesNotMatch(
      roles.stdout,
      /^\S+\s+[0-9a-f]{8}-[0-9a-f]{4}-/m,
      'role column holds names, not GUIDs',
    );
    assert.match(ok(apps).stdout, /^Name\s+ResourceGroup\s+Host\s+State\s+Identity\n/);
    assert.match(apps.stdout, /tableapp\s+default\s+local\s+Running\s+SystemAssigned/);
    assert.doesNotMatch(apps.stdout, /properties\.|Tags|Type/);
    assert.match(ok(hosts).stdout, /^Name\s+ResourceGroup\s+BuiltIn\s+Created\s+ClientId\n/);
    assert.match(ok(queried).stdout, /^App\s+Principal\n/);
  });

  test('--only-show-errors hides warnings, not errors', async () => {
    const [loud, quiet] = await Promise.all([
      run('ad', 'sp', 'create', '-n', 'loud-sp'),
      run('ad', 'sp', 'create', '-n', 'quiet-sp', '--only-show-errors'),
    ]);
    assert.match(ok(loud).stderr, /shown only once/);
    assert.equal(ok(quiet).stderr, '');
    fails(await run('keyvault', 'show', '-n', 'nosuchvault', '--only-show-errors'), /not found/i);
  });
});

/** A role assignment; an existing identical one (e.g. the creator's own) is fine. */
async function grant(
  run: (...args: string[]) => Promise<CliResult>,
  assignee: string,
  role: string,
  scope: string,
): Promise<void> {
  const r = await run(
    'role',
    'assignment',
    'create',
    '--assignee',
    assignee,
    '--role',
    role,
    '--scope',
    scope,
  );
  if (r.code !== 0) assert.match(r.stderr, /exists/i);
}
