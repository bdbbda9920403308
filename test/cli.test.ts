import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose';
import { request } from '../src/cli/http.js';
import { selfSignedRsaCert } from './helpers/certs.js';
import { type CliResult, type CliUser, cliUser, startUpProcess, type UpProcess } from './helpers/cli.js';
import { issueServerCert, makeTestCa } from './helpers/tls-ca.js';

const VAULT = 'https://vault.localhost';
const MGMT = 'https://management.latchkey.localhost';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A failure is one `ERROR: ...` line on stderr, no stack trace, nothing on stdout. */
function assertOneLineError(r: CliResult, pattern: RegExp, code = 1): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^ERROR: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.equal(r.stdout, '');
}

const ok = (r: CliResult): CliResult => {
  assert.equal(r.code, 0, `exit 0 expected; stderr: ${r.stderr}`);
  return r;
};

const mode = (p: string) => statSync(p).mode & 0o777;

describe('latchkey CLI end to end (real `latchkey up` process, CLI as child processes)', () => {
  let up: UpProcess;
  let admin: CliUser;
  let tmp: string;
  let adminCreds: { userName: string; password: string; tenantId: string };
  let jwks: JSONWebKeySet;
  const users: CliUser[] = [];
  const newUser = () => {
    const u = cliUser();
    users.push(u);
    return u;
  };
  /** Flags for a CLI user that does not share the dev server's config dir. */
  let remote: string[];
  let sp: { appId: string; password: string; tenant: string; objectId: string };
  let spUser: CliUser;

  const fetchJwks = async () => {
    const r = await request('GET', `${up.info.authority}/${up.info.tenantId}/discovery/v2.0/keys`, {
      ca: readFileSync(up.info.caCertPath, 'utf8'),
    });
    assert.equal(r.status, 200);
    return r.body as JSONWebKeySet;
  };
  const verify = async (token: string, audience: string) =>
    (
      await jwtVerify(token, createLocalJWKSet(jwks), {
        issuer: `${up.info.authority}/${up.info.tenantId}/v2.0`,
        audience,
        algorithms: ['ES256', 'RS256'],
      })
    ).payload;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-cli-test-'));
    admin = newUser();
    // The admin's CLI shares the config dir `up` writes dev-server.json into: no --server, no CA flags.
    up = await startUpProcess({ configDir: admin.configDir });
    adminCreds = JSON.parse(readFileSync(up.info.adminCredentialsPath, 'utf8'));
    remote = ['--server', up.info.authority, '--ca-file', up.info.caCertPath];
    jwks = await fetchJwks();
  });

  after(async () => {
    await up?.close();
    for (const u of users) u.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('before login: a clear one-line error, exit 1', async () => {
    const [show, token] = await Promise.all([
      admin.run('account', 'show'),
      admin.run('account', 'get-access-token'),
    ]);
    assertOneLineError(show, /not logged in: run `latchkey login`/);
    assertOneLineError(token, /not logged in/);
  });

  test('wrong password: exit 1, one stderr line, no stack, no state written', async () => {
    const r = await admin.run('login', '-u', adminCreds.userName, '-p', 'not-the-password');
    assertOneLineError(r, /sign-in failed: \(invalid_grant\)/);
    assert.doesNotMatch(r.stderr, /not-the-password/);
    assert.equal(existsSync(join(admin.configDir, 'profile.json')), false);
  });

  test('login without a password and no terminal: usage error instead of hanging', async () => {
    const r = await admin.run('login', '-u', adminCreds.userName);
    assertOneLineError(r, /Password is required \(no terminal.*-p\/--password.*LATCHKEY_PASSWORD/, 2);
  });

  test('login as the admin user finds the dev server and trusts its CA by itself', async () => {
    const r = ok(await admin.run('login', '-u', adminCreds.userName, '-p', adminCreds.password));
    assert.ok(Array.isArray(r.json), 'Array.isArray(r.json)');
    const [acct] = r.json;
    assert.equal(acct.tenantId, up.info.tenantId);
    assert.equal(acct.id, up.info.subscriptionId);
    assert.deepEqual(acct.user, { name: adminCreds.userName, type: 'user' });
    assert.equal(acct.server, up.info.authority);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(adminCreds.password));
    // State files: the directory 0700, every file 0600; no password kept (a refresh token instead).
    assert.equal(mode(admin.configDir) & 0o077, 0);
    for (const f of ['profile.json', 'dev-server.json'])
      assert.equal(mode(join(admin.configDir, f)), 0o600, f);
    const profile = readFileSync(join(admin.configDir, 'profile.json'), 'utf8');
    assert.doesNotMatch(profile, new RegExp(adminCreds.password));
  });

  test('account show: JSON like az, and --output table renders a table', async () => {
    const [json, table, tsv] = await Promise.all([
      admin.run('account', 'show'),
      admin.run('account', 'show', '--output', 'table'),
      admin.run('account', 'show', '-o', 'tsv'),
    ]);
    ok(json);
    assert.equal(json.json.tenantId, up.info.tenantId);
    assert.equal(json.json.tenantDomain, 'latchkey.localhost');
    assert.equal(json.json.user.name, adminCreds.userName);
    assert.equal(json.json.isDefault, true);
    ok(table);
    const lines = table.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3, table.stdout);
    assert.match(lines[0]!, /^EnvironmentName\s+HomeTenantId\s+.*TenantId/);
    assert.match(lines[1]!, /^-+\s+-+/);
    assert.ok(lines[2]!.includes(up.info.tenantId), 'lines[2]!.includes(up.info.tenantId)');
    assert.ok(lines[2]!.includes(adminCreds.userName), 'lines[2]!.includes(adminCreds.userName)');
    assert.equal(table.json, undefined, 'a table is not JSON');
    ok(tsv);
    assert.ok(
      tsv.stdout.split('\t').includes(up.info.tenantId),
      "tsv.stdout.split('\\t').includes(up.info.tenantId)",
    );
  });

  test('account get-access-token: az JSON shape, verifiable JWTs for management and the vault', async () => {
    // Three processes need a vault token at once: they must not race on the one-use refresh token.
    const [m, v, s, v2] = await Promise.all([
      admin.run('account', 'get-access-token'),
      admin.run('account', 'get-access-token', '--resource', VAULT),
      admin.run('account', 'get-access-token', '--scope', `${VAULT}/.default`),
      admin.run('account', 'get-access-token', '--resource', `${VAULT}/`),
    ]);
    for (const r of [m, v, s, v2]) {
      ok(r);
      assert.deepEqual(Object.keys(r.json).sort(), [
        'accessToken',
        'expiresOn',
        'expires_on',
        'subscription',
        'tenant',
        'tokenType',
      ]);
      assert.equal(r.json.tokenType, 'Bearer');
      assert.equal(r.json.tenant, up.info.tenantId);
      assert.equal(r.json.subscription, up.info.subscriptionId);
      assert.match(r.json.expiresOn, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
      assert.equal(typeof r.json.expires_on, 'number');
      assert.ok(
        r.json.expires_on > Date.now() / 1000 + 30 * 60,
        'r.json.expires_on > Date.now() / 1000 + 30 * 60',
      );
    }
    const pm = await verify(m.json.accessToken, MGMT);
    const pv = await verify(v.json.accessToken, VAULT);
    assert.equal(pm.tid, up.info.tenantId);
    assert.equal(pv.idtyp, 'user');
    assert.equal(pv.exp, v.json.expires_on);
    assert.equal(decodeJwt(s.json.accessToken).aud, VAULT);
    // One renewal, shared through the login state (the others waited for it and reused it).
    assert.equal(s.json.accessToken, v.json.accessToken);
    assert.equal(v2.json.accessToken, v.json.accessToken);
    assert.equal(existsSync(join(admin.configDir, 'state.lock')), false, 'the lock is released');
  });

  test('ad sp create prints appId, password and tenant once', async () => {
    const r = ok(await admin.run('ad', 'sp', 'create', '--name', 'cli-e2e-app'));
    sp = r.json;
    assert.match(sp.appId, GUID);
    assert.match(sp.objectId, GUID);
    assert.equal(sp.tenant, up.info.tenantId);
    assert.equal(r.json.displayName, 'cli-e2e-app');
    assert.equal(typeof sp.password, 'string');
    assert.ok(sp.password.length >= 32, 'sp.password.length >= 32');
    assert.match(r.stderr, /shown only once/);
    // A public client (a native app) has no secret to show.
    const pub = ok(await admin.run('ad', 'sp', 'create', '--name', 'cli-e2e-native', '--public-client'));
    assert.equal(pub.json.password, null);
    assert.doesNotMatch(pub.stderr, /shown only once/);
    const shown = ok(await admin.run('ad', 'sp', 'show', '--id', pub.json.appId));
    assert.equal(shown.json.publicClient, true);
    const both = await admin.run('ad', 'sp', 'create', '--name', 'x', '--public-client', '--years', '1');
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--public-client takes no credential/);
  });

  test('login as the service principal with its secret in another config dir, then get tokens', async () => {
    spUser = newUser();
    // --server/--ca-file given once; the login state remembers them.
    const r = ok(
      await spUser.run(
        'login',
        '--service-principal',
        '-u',
        sp.appId,
        '-p',
        sp.password,
        '--tenant',
        'latchkey.localhost',
        ...remote,
      ),
    );
    assert.deepEqual(r.json[0].user, { name: sp.appId, type: 'servicePrincipal' });
    assert.equal(r.json[0].tenantId, up.info.tenantId, 'the tenant domain resolves to the tenant id');
    assert.equal(mode(join(spUser.configDir, 'profile.json')), 0o600);
    const t = ok(await spUser.run('account', 'get-access-token', '--resource', VAULT));
    const p = await verify(t.json.accessToken, VAULT);
    assert.equal(p.appid, sp.appId);
    assert.equal(p.idtyp, 'app');
    assert.equal(p.oid, sp.objectId);
  });

  test("the login's credentials go only to its own server: another --server or LATCHKEY_SERVER is refused, nothing sent", async () => {
    // Another HTTPS server the CLI trusts (its CA given with --ca-file), recording what reaches it.
    const ca = await makeTestCa();
    const leaf = await issueServerCert(ca, ['localhost']);
    const caFile = join(tmp, 'other-ca.pem');
    writeFileSync(caFile, ca.certPem);
    const seen: string[] = [];
    const other = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''} ${body}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"access_token":"planted","expires_in":3600,"refresh_token":"lkr~planted","value":[]}');
      });
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const otherUrl = `https://localhost:${(other.address() as AddressInfo).port}`;
    try {
      const elsewhere = ['--server', otherUrl, '--ca-file', caFile];
      const refused =
        /logged in to https:\/\/[^,]+, not to https:\/\/localhost:\d+: run `latchkey login --server/;
      // A service principal's login (client secret): a token, a management call, a Graph call.
      assertOneLineError(
        await spUser.run('account', 'get-access-token', '--resource', VAULT, ...elsewhere),
        refused,
      );
      assertOneLineError(await spUser.run('group', 'list', ...elsewhere), refused);
      assertOneLineError(
        await spUser.runWith({ LATCHKEY_SERVER: otherUrl, LATCHKEY_CA_FILE: caFile }, 'ad', 'sp', 'list'),
        refused,
      );
      // A user's login (refresh token): Graph asks a token for the server in effect.
      assertOneLineError(await admin.run('ad', 'sp', 'list', ...elsewhere), refused);
      assert.deepEqual(seen, [], 'nothing reached the other server');
      // The login is untouched and still works against its own server.
      ok(await spUser.run('account', 'get-access-token', '--resource', VAULT));
      ok(await admin.run('ad', 'sp', 'list'));
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  test('LATCHKEY_SERVER and LATCHKEY_CA_FILE work like the flags; an untrusted server is a clear error', async () => {
    const u = newUser();
    const env = { LATCHKEY_SERVER: up.info.authority, LATCHKEY_CA_FILE: up.info.caCertPath };
    const args = [
      'login',
      '--service-principal',
      '-u',
      sp.appId,
      '-p',
      sp.password,
      '--tenant',
      up.info.tenantId,
    ];
    ok(await u.runWith(env, ...args));
    const untrusted = await newUser().run(...args, '--server', up.info.authority);
    assertOneLineError(untrusted, /certificate this CLI does not trust/);
  });

  test('a service principal without a role is refused by the management API (one line)', async () => {
    assertOneLineError(await spUser.run('ad', 'sp', 'list'), /\(Forbidden\)/);
  });

  test('ad user: create (password once), the user logs in, disable refuses them, generated reset, delete', async () => {
    const created = ok(
      await admin.run(
        'ad',
        'user',
        'create',
        '--display-name',
        'Bea',
        '--user-principal-name',
        'bea@cli.example',
      ),
    );
    assert.equal(created.json.userPrincipalName, 'bea@cli.example');
    assert.equal(created.json.accountEnabled, true);
    assert.equal(typeof created.json.password, 'string');
    assert.match(created.stderr, /shown only once/);
    const logIn = (password: string) =>
      newUser().run(
        'login',
        '-u',
        'bea@cli.example',
        '-p',
        password,
        '--tenant',
        up.info.tenantId,
        ...remote,
      );
    ok(await logIn(created.json.password));

    const listed = ok(await admin.run('ad', 'user', 'list'));
    assert.ok(
      listed.json.some((u: { userPrincipalName: string }) => u.userPrincipalName === 'bea@cli.example'),
      "listed.json.some((u: { userPrincipalName: string }) => u.userPrincipalName === 'bea@cli...",
    );
    assert.ok(
      listed.json.every((u: Record<string, unknown>) => !('password' in u)),
      'no passwords in a list',
    );

    const off = ok(
      await admin.run('ad', 'user', 'update', '--id', 'bea@cli.example', '--account-enabled', 'false'),
    );
    assert.equal(off.json.accountEnabled, false);
    assertOneLineError(await logIn(created.json.password), /sign-in failed/);
    ok(await admin.run('ad', 'user', 'update', '--id', 'bea@cli.example', '--account-enabled', 'true'));

    const reset = ok(await admin.run('ad', 'user', 'update', '--id', created.json.id, '--generate-password'));
    assert.notEqual(reset.json.password, created.json.password);
    assertOneLineError(await logIn(created.json.password), /sign-in failed/);
    ok(await logIn(reset.json.password));

    assertOneLineError(
      await admin.run('ad', 'user', 'update', '--id', 'bea@cli.example'),
      /give --account-enabled/,
      2,
    );
    assertOneLineError(
      await admin.run(
        'ad',
        'user',
        'create',
        '--display-name',
        'X',
        '--user-principal-name',
        'x@cli.example',
        '--password',
        'short',
      ),
      /\(BadParameter\)/,
    );
    ok(await admin.run('ad', 'user', 'delete', '--id', 'bea@cli.example'));
    assertOneLineError(
      await admin.run('ad', 'user', 'show', '--id', 'bea@cli.example'),
      /\(PrincipalNotFound\)/,
    );
  });

  test('ad sp list / show, JSON and table', async () => {
    const [list, show, table] = await Promise.all([
      admin.run('ad', 'sp', 'list'),
      admin.run('ad', 'sp', 'show', '--id', sp.appId),
      admin.run('ad', 'sp', 'list', '-o', 'table'),
    ]);
    ok(list);
    const mine = list.json.find((x: { appId: string }) => x.appId === sp.appId);
    assert.ok(mine, 'the new service principal is listed');
    assert.equal(mine.displayName, 'cli-e2e-app');
    ok(show);
    assert.equal(show.json.id, sp.objectId);
    assert.equal(show.json.appId, sp.appId);
    ok(table);
    assert.match(table.stdout.split('\n')[0]!, /AppId/);
    assert.ok(table.stdout.includes('cli-e2e-app'), "table.stdout.includes('cli-e2e-app')");
    const missing = await admin.run('ad', 'sp', 'show', '--id', '00000000-0000-0000-0000-000000000000');
    assertOneLineError(missing, /\(\w+\)/);
  });

  test('certificate: register with credential reset --append --cert, sign in with the PEM bundle', async () => {
    const cert = await selfSignedRsaCert('cli-e2e-app');
    const pub = join(tmp, 'pub.pem');
    const bundle = join(tmp, 'bundle.pem');
    writeFileSync(pub, cert.certPem);
    writeFileSync(bundle, cert.combinedPem, { mode: 0o600 });
    const reg = ok(
      await admin.run('ad', 'sp', 'credential', 'reset', '--id', sp.appId, '--append', '--cert', pub),
    );
    assert.equal(reg.json.password, null);
    assert.equal(reg.json.appId, sp.appId);
    assert.match(reg.json.keyId, GUID);

    const certUser = newUser();
    ok(
      await certUser.run(
        'login',
        '--service-principal',
        '-u',
        sp.appId,
        '--certificate',
        bundle,
        '--tenant',
        up.info.tenantId,
        ...remote,
      ),
    );
    // A vault token is not cached yet: this signs a fresh client assertion with the bundle.
    const t = ok(await certUser.run('account', 'get-access-token', '--resource', VAULT));
    assert.equal((await verify(t.json.accessToken, VAULT)).appid, sp.appId);
    // --append kept the secret: a fresh secret login still works.
    ok(
      await newUser().run(
        'login',
        '--service-principal',
        '-u',
        sp.appId,
        '-p',
        sp.password,
        '--tenant',
        up.info.tenantId,
        ...remote,
      ),
    );
    // A certificate that is not registered is refused.
    const other = await selfSignedRsaCert('someone-else');
    const otherBundle = join(tmp, 'other.pem');
    writeFileSync(otherBundle, other.combinedPem, { mode: 0o600 });
    const refused = await newUser().run(
      'login',
      '--service-principal',
      '-u',
      sp.appId,
      '--certificate',
      otherBundle,
      '--tenant',
      up.info.tenantId,
      ...remote,
    );
    assertOneLineError(refused, /sign-in failed: \(invalid_client\)/);
  });

  test('credential list shows metadata, never secret values', async () => {
    const [json, table] = await Promise.all([
      admin.run('ad', 'sp', 'credential', 'list', '--id', sp.appId),
      admin.run('ad', 'sp', 'credential', 'list', '--id', sp.appId, '-o', 'table'),
    ]);
    ok(json);
    assert.equal(json.json.length, 2);
    assert.deepEqual(json.json.map((c: { type: string }) => c.type).sort(), [
      'AsymmetricX509Cert',
      'Password',
    ]);
    for (const c of json.json) assert.match(c.keyId, GUID);
    ok(table);
    for (const out of [json.stdout, table.stdout]) {
      assert.ok(!out.includes(sp.password), 'the secret value never appears');
      assert.doesNotMatch(out, /secretText|"password"/);
    }
  });

  test('credential reset without --append replaces the credentials: the old secret stops working', async () => {
    const r = ok(await admin.run('ad', 'sp', 'credential', 'reset', '--id', sp.appId));
    assert.equal(typeof r.json.password, 'string');
    assert.notEqual(r.json.password, sp.password);
    const login = (secret: string) =>
      newUser().run(
        'login',
        '--service-principal',
        '-u',
        sp.appId,
        '-p',
        secret,
        '--tenant',
        up.info.tenantId,
        ...remote,
      );
    const [oldSecret, newSecret, list] = await Promise.all([
      login(sp.password),
      login(r.json.password),
      admin.run('ad', 'sp', 'credential', 'list', '--id', sp.appId),
    ]);
    assertOneLineError(oldSecret, /sign-in failed: \(invalid_client\)/);
    ok(newSecret);
    ok(list);
    assert.equal(list.json.length, 1);
    assert.equal(list.json[0].keyId, r.json.keyId);
    sp.password = r.json.password;
  });

  test('credential delete removes one credential', async () => {
    const added = ok(await admin.run('ad', 'sp', 'credential', 'reset', '--id', sp.appId, '--append'));
    const del = ok(
      await admin.run('ad', 'sp', 'credential', 'delete', '--id', sp.appId, '--key-id', added.json.keyId),
    );
    assert.equal(del.stdout, '');
    const list = ok(await admin.run('ad', 'sp', 'credential', 'list', '--id', sp.appId));
    const keyIds = list.json.map((c: { keyId: string }) => c.keyId);
    assert.equal(keyIds.length, 1);
    assert.ok(!keyIds.includes(added.json.keyId), '!keyIds.includes(added.json.keyId)');
  });

  test('authority rotate-signing-key changes the kid of new tokens; both keys stay in JWKS', async () => {
    const before = ok(await admin.run('account', 'get-access-token'));
    const oldKid = decodeProtectedHeader(before.json.accessToken).kid;
    const r = ok(await admin.run('authority', 'rotate-signing-key'));
    assert.equal(r.json.previous, oldKid);
    assert.notEqual(r.json.kid, oldKid);
    // A new token (new login: the cached one was signed before the rotation) carries the new kid.
    const u = newUser();
    ok(
      await u.run(
        'login',
        '--service-principal',
        '-u',
        sp.appId,
        '-p',
        sp.password,
        '--tenant',
        up.info.tenantId,
        ...remote,
      ),
    );
    const after = ok(await u.run('account', 'get-access-token', '--resource', VAULT));
    assert.equal(decodeProtectedHeader(after.json.accessToken).kid, r.json.kid);
    jwks = await fetchJwks();
    const kids = jwks.keys.map((k) => k.kid);
    assert.ok(kids.includes(oldKid) && kids.includes(r.json.kid), 'old and new keys published');
    await verify(before.json.accessToken, MGMT);
    await verify(after.json.accessToken, VAULT);
    const keys = ok(await admin.run('authority', 'keys', '-o', 'table'));
    assert.ok(keys.stdout.includes(r.json.kid), 'keys.stdout.includes(r.json.kid)');
  });

  test('ad sp delete: gone from show, and it can no longer sign in', async () => {
    ok(await admin.run('ad', 'sp', 'delete', '--id', sp.appId));
    const [show, login] = await Promise.all([
      admin.run('ad', 'sp', 'show', '--id', sp.appId),
      newUser().run(
        'login',
        '--service-principal',
        '-u',
        sp.appId,
        '-p',
        sp.password,
        '--tenant',
        up.info.tenantId,
        ...remote,
      ),
    ]);
    assertOneLineError(show, /NotFound|not found/i);
    assertOneLineError(login, /sign-in failed/);
  });

  test('usage errors exit 2: one ERROR line that names the fix, not the whole help', async () => {
    const [badOutput, unknown, missing] = await Promise.all([
      admin.run('account', 'show', '--output', 'xml'),
      admin.run('no-such-command'),
      admin.run('ad', 'sp', 'show'),
    ]);
    for (const r of [badOutput, unknown, missing]) {
      assert.equal(r.code, 2, r.stderr);
      assertOneLineError(r, /--help`\)$/, 2);
      assert.doesNotMatch(r.stderr, /Usage:|Options:/);
    }
  });

  test('logout removes the login state; the next command says to log in', async () => {
    ok(await admin.run('logout'));
    assert.equal(existsSync(join(admin.configDir, 'profile.json')), false);
    assertOneLineError(await admin.run('account', 'get-access-token'), /not logged in/);
  });
});
