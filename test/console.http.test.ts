import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CONSOLE_CLIENT_ID } from '../src/authority/clients.js';
import { fakeClock } from '../src/lib/clock.js';
import { assignRole } from './helpers/access.js';
import { selfSignedRsaCert } from './helpers/certs.js';
import { type ConsoleClient, consoleClient, consoleSignIn } from './helpers/console.js';
import { arm, putApp, putIdentity } from './helpers/identity.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import { cookieFrom } from './helpers/signin.js';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const count = async (s: TestServer, table: string) =>
  Number((await s.services.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))!.n);

function assertPageHeaders(h: Record<string, unknown>) {
  assert.equal(h['content-security-policy'], CSP);
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['referrer-policy'], 'no-referrer');
  assert.equal(h['cache-control'], 'no-store');
  assert.equal(h['x-frame-options'], 'DENY');
}

describe('web console over HTTP: session, CSRF, headers, expiry', () => {
  const clock = fakeClock();
  let s: TestServer;
  let admin: ConsoleClient;

  before(async () => {
    s = await startTestApp({
      clock,
      limits: { consoleSessionIdleSeconds: 600, consoleSessionMaxSeconds: 3600 },
    });
    admin = await consoleSignIn(s);
  });
  after(async () => {
    await s?.stop();
  });

  test('the session cookie is __Host-, HttpOnly, Secure, SameSite=Strict; only its hash is stored', async () => {
    const c = consoleClient(s);
    const start = await c.get('/console/vaults?x=1');
    assert.equal(start.status, 302);
    assert.equal(
      start.headers.location,
      `/console/login?return=${encodeURIComponent('/console/vaults?x=1')}`,
    );
    const login = await c.get(String(start.headers.location));
    const loginCookie = cookieFrom(login.headers, '__Host-latchkey-console-login')!;
    assert.match(loginCookie.line, /; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=600$/);
    const signedIn = await consoleSignIn(s, s.admin, c);
    const value = signedIn.cookies.get('__Host-latchkey-console')!;
    assert.match(value, /^[\w-]{43}$/);
    const rows = await s.services.db.all<{ id_hash: Buffer }>('SELECT id_hash FROM console_sessions');
    assert.ok(
      rows.every((r) => !Buffer.from(r.id_hash).toString('utf8').includes(value)),
      "rows.every((r) => !Buffer.from(r.id_hash).toString('utf8').includes(value))",
    );
    // The cookie's flags, as set by the callback.
    const again = consoleClient(s);
    const a = await again.get('/console/');
    const l = await again.get(String(a.headers.location));
    const form = await again.get(String(l.headers.location));
    assert.equal(form.status, 200);
    const { hiddenInputs } = await import('./helpers/signin.js');
    const signed = await again.post(String(l.headers.location).split('?')[0]!, {
      ...hiddenInputs(form.text),
      username: s.admin.userName,
      password: s.admin.password,
    });
    const cb = new URL(String(signed.headers.location));
    const back = await again.get(`${cb.pathname}${cb.search}`);
    assert.equal(back.status, 303);
    assert.equal(back.headers.location, '/console/');
    const session = cookieFrom(back.headers, '__Host-latchkey-console')!;
    assert.match(
      session.line,
      /^__Host-latchkey-console=[\w-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600$/,
    );
    assert.ok(
      cookieFrom(back.headers, '__Host-latchkey-console-login')?.line.includes('Max-Age=0'),
      'the login state is cleared',
    );
  });

  test('every console response has the strict CSP and no-store; static files are cacheable', async () => {
    for (const path of ['/console/', '/console/vaults', '/console/audit', '/console/no-such-page']) {
      const r = await admin.get(path);
      assert.equal(r.status, path.endsWith('no-such-page') ? 404 : 200, path);
      assertPageHeaders(r.headers);
      assert.match(String(r.headers['content-type']), /^text\/html; charset=utf-8/);
      assert.doesNotMatch(
        r.text,
        /<script>|<style|style="|\son[a-z]+="/i,
        `${path}: no inline script or style`,
      );
    }
    const page = (await admin.get('/console/')).text;
    const css = /href="(\/console\/static\/console\.css\?v=[\w-]+)"/.exec(page)![1]!;
    const js = /src="(\/console\/static\/console\.js\?v=[\w-]+)"/.exec(page)![1]!;
    const c = await s.request('GET', css);
    assert.equal(c.status, 200);
    assert.match(String(c.headers['content-type']), /^text\/css/);
    assert.equal(c.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(c.headers['content-security-policy'], CSP);
    const j = await s.request('GET', js);
    assert.match(String(j.headers['content-type']), /^text\/javascript/);
    // The sign-in page of the authority has the same policy.
    const anon = consoleClient(s);
    const l = await anon.get(String((await anon.get('/console/')).headers.location));
    const signin = await anon.get(String(l.headers.location));
    assertPageHeaders(signin.headers);
  });

  test("CSRF: a change without the token, with a bad one, another form's or another session's is refused", async () => {
    const page = await admin.get('/console/vaults');
    const token = admin.csrf(page.text, '/console/vaults')!;
    assert.ok(token, 'token');
    const other = await consoleSignIn(s);
    const otherToken = other.csrf((await other.get('/console/vaults')).text, '/console/vaults')!;
    const logoutToken = admin.csrf(page.text, '/console/logout')!;
    const before = await count(s, 'vaults');
    const body = { name: 'csrfvault', resourceGroup: 'default', model: 'rbac', retention: '90' };
    for (const form of [
      body,
      { ...body, _csrf: '' },
      { ...body, _csrf: 'x'.repeat(43) },
      { ...body, _csrf: logoutToken },
      { ...body, _csrf: otherToken },
    ]) {
      const r = await admin.post('/console/vaults', form);
      assert.equal(r.status, 403);
      assert.match(r.text, /CSRF token/);
      assertPageHeaders(r.headers);
    }
    // Right token, but from another site (or a browser that does not say it is same-origin).
    for (const headers of [
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { origin: 'null', 'sec-fetch-site': 'same-site' },
      { origin: 'null', 'sec-fetch-site': '' },
    ]) {
      const r = await admin.post('/console/vaults', { ...body, _csrf: token }, { headers });
      assert.equal(r.status, 403);
      assert.match(r.text, /another site/);
    }
    const json = await s.request('POST', '/console/vaults', {
      json: { ...body, _csrf: token },
      headers: { cookie: admin.cookieHeader() },
    });
    assert.equal(json.status, 415);
    assert.equal(await count(s, 'vaults'), before, 'nothing was created');
    // With the token, from the page's own origin, it works.
    const ok = await admin.post(
      '/console/vaults',
      { ...body, _csrf: token },
      { headers: { origin: s.info.authority } },
    );
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, '/console/vaults/default/csrfvault');
    assert.equal(await count(s, 'vaults'), before + 1);
  });

  test('a console change is audited under the user, as the API would name them', async () => {
    const e = await s.services.db.get<{ caller_oid: string; caller_app_id: string; caller_kind: string }>(
      "SELECT caller_oid, caller_app_id, caller_kind FROM audit_events WHERE operation = 'VaultCreate' ORDER BY seq DESC LIMIT 1",
    );
    const adminOid = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal
      .id;
    assert.deepEqual(e, { caller_oid: adminOid, caller_app_id: CONSOLE_CLIENT_ID, caller_kind: 'user' });
  });

  test('a secret value is in no page before an explicit reveal POST, then only in that no-store response', async () => {
    const vault = 'revealvault';
    let page = await admin.get('/console/vaults');
    await admin.post('/console/vaults', {
      _csrf: admin.csrf(page.text, '/console/vaults')!,
      name: vault,
      resourceGroup: 'default',
      model: 'policies',
      retention: '7',
    });
    const base = `/console/vaults/default/${vault}`;
    const adminOid = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal
      .id;
    page = await admin.get(`${base}/access-policies`);
    const policy = await admin.post(`${base}/access-policies`, {
      _csrf: admin.csrf(page.text, `${base}/access-policies`)!,
      principal: adminOid,
      secrets: ['get', 'list', 'set'],
    });
    assert.equal(policy.status, 303, policy.text.slice(0, 500));
    const VALUE = 'http-SECRET-4b1c<script>alert(1)</script>';
    page = await admin.get(`${base}/secrets`);
    const set = await admin.post(`${base}/secrets`, {
      _csrf: admin.csrf(page.text, `${base}/secrets`)!,
      name: 'api-key',
      value: VALUE,
      enabled: 'on',
    });
    assert.equal(set.status, 303, set.text.slice(0, 500));
    assert.doesNotMatch(String(set.headers.location), /SECRET/);
    const secretPage = await admin.get(String(set.headers.location));
    assert.equal(secretPage.status, 200);
    assert.doesNotMatch(secretPage.text, /http-SECRET/);
    const version = /name="version" value="([0-9a-f]{32})"/.exec(secretPage.text)![1]!;
    const action = `${base}/secrets/api-key/reveal`;
    const shown = await admin.post(action, { _csrf: admin.csrf(secretPage.text, action)!, version });
    assert.equal(shown.status, 200);
    assertPageHeaders(shown.headers);
    assert.ok(shown.text.includes('http-SECRET-4b1c&lt;script&gt;alert(1)&lt;/script&gt;'), 'shown, escaped');
    assert.doesNotMatch(shown.text, /<script>alert/);
    // Reading it is audited (as SecretGet, batched: drain first), the value never is.
    await s.services.audit.drain();
    const audit = await s.services.db.all<{ details: string | null; target: string }>(
      "SELECT details, target FROM audit_events WHERE operation IN ('SecretGet', 'SecretSet')",
    );
    assert.ok(audit.length >= 2, 'audit.length >= 2');
    assert.ok(
      audit.every((a) => !`${a.details}${a.target}`.includes('http-SECRET')),
      "audit.every((a) => !'{a.details}{a.target}'.includes('http-SECRET'))",
    );
  });

  test('no session: pages redirect to sign-in, changes are refused with 401', async () => {
    const anon = consoleClient(s);
    const r = await anon.get('/console/apps');
    assert.equal(r.status, 302);
    assert.match(String(r.headers.location), /^\/console\/login\?return=%2Fconsole%2Fapps$/);
    const post = await anon.post('/console/vaults', { name: 'x', _csrf: 'y' });
    assert.equal(post.status, 401);
    assert.match(post.text, /not signed in/);
    // The return path never leaves the console.
    for (const evil of [
      'https://evil.example/',
      '//evil.example/console/',
      '/console/../../x',
      '/consolex',
    ]) {
      const login = await anon.get(`/console/login?return=${encodeURIComponent(evil)}`);
      assert.equal(login.status, 302);
    }
    const { safeReturnPath } = await import('../src/console/login.js');
    assert.equal(safeReturnPath('https://evil.example/'), '/console/');
    assert.equal(safeReturnPath('//evil.example/console/'), '/console/');
    assert.equal(safeReturnPath('/console//evil.example'), '/console/');
    assert.equal(safeReturnPath('/console/vaults?x=1'), '/console/vaults?x=1');
  });

  test('the callback refuses a foreign state, a missing login cookie and an authority error', async () => {
    const c = consoleClient(s);
    const start = await c.get('/console/');
    const login = await c.get(String(start.headers.location));
    const state = new URL(String(login.headers.location), s.info.authority).searchParams.get('state')!;
    const wrong = await c.get(`/console/auth/callback?code=lkc~x&state=${state}x`);
    assert.equal(wrong.status, 400);
    assert.match(wrong.text, /does not belong to this browser/);
    const none = await consoleClient(s).get(`/console/auth/callback?code=lkc~x&state=${state}`);
    assert.equal(none.status, 400);
    assert.match(none.text, /Sign in again/);
    const c2 = consoleClient(s);
    const l2 = await c2.get(String((await c2.get('/console/')).headers.location));
    const st2 = new URL(String(l2.headers.location), s.info.authority).searchParams.get('state')!;
    const denied = await c2.get(
      `/console/auth/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=${st2}`,
    );
    assert.equal(denied.status, 400);
    assert.match(denied.text, /access_denied: &lt;b&gt;no&lt;\/b&gt;/);
    assert.equal(denied.headers['set-cookie']?.toString().includes('__Host-latchkey-console='), false);
  });

  test('sign-out needs the CSRF token, deletes the session and clears the cookie', async () => {
    const c = await consoleSignIn(s);
    const page = await c.get('/console/');
    const cookie = c.cookieHeader();
    const refused = await c.post('/console/logout', {});
    assert.equal(refused.status, 403);
    assert.equal((await c.get('/console/')).status, 200, 'still signed in');
    const sessions = await count(s, 'console_sessions');
    const out = await c.post('/console/logout', { _csrf: c.csrf(page.text, '/console/logout')! });
    assert.equal(out.status, 303);
    assert.equal(out.headers.location, '/console/signed-out');
    assert.match(String(cookieFrom(out.headers, '__Host-latchkey-console')?.line), /Max-Age=0/);
    assert.equal(await count(s, 'console_sessions'), sessions - 1);
    // The old cookie is worthless now.
    const replay = await s.request('GET', '/console/', { headers: { cookie } });
    assert.equal(replay.status, 302);
    const signedOut = await c.get('/console/signed-out');
    assert.match(signedOut.text, /You have signed out/);
  });

  test('a disabled user is out at the next request', async () => {
    await s.services.principals.createUser(s.info.tenantId, {
      userName: 'soon-disabled@latchkey.localhost',
      displayName: 'Soon Disabled',
      password: 'disable me later 123',
    });
    const user = { userName: 'soon-disabled@latchkey.localhost', password: 'disable me later 123' };
    const p = (await s.services.principals.byUserName(s.info.tenantId, user.userName))!.principal;
    await assignRole(s, p.id, 'Reader', '/');
    const c = await consoleSignIn(s, user);
    assert.equal((await c.get('/console/vaults')).status, 200);
    await s.services.principals.setEnabled(s.info.tenantId, p.id, false);
    const r = await c.get('/console/vaults');
    assert.equal(r.status, 302);
    assert.match(String(r.headers.location), /^\/console\/login/);
  });

  test('a password reset between the redemption of the code and the session: no session is left', async () => {
    const user = { userName: 'reset-midway@latchkey.localhost', password: 'reset me midway 123' };
    const p = await s.services.principals.createUser(s.info.tenantId, {
      ...user,
      displayName: 'Reset Midway',
    });
    await assignRole(s, p.id, 'Reader', '/');
    const before = await count(s, 'console_sessions');
    // The token endpoint answers the console's code; then, before the console writes its session,
    // an administrator resets the user's password (which ends the user's sessions, as far as it sees).
    const endpoint = s.services.tokenEndpoint;
    const real = endpoint.token.bind(endpoint);
    endpoint.token = (async (...args: Parameters<typeof real>) => {
      const r = await real(...args);
      clock.advance(1);
      await s.services.principals.setPassword(s.info.tenantId, p.id, 'a brand new password 456');
      return r;
    }) as typeof endpoint.token;
    try {
      await assert.rejects(consoleSignIn(s, user), /callback: 403/);
    } finally {
      endpoint.token = real;
    }
    assert.equal(await count(s, 'console_sessions'), before, 'no session was written');
  });

  /** A user of the tenant with the given roles at the given scopes, signed in to the console. */
  async function signedInUser(name: string, roles: [Parameters<typeof assignRole>[2], string][] = []) {
    const user = { userName: `${name}@latchkey.localhost`, password: `${name} password 12345` };
    const p = await s.services.principals.createUser(s.info.tenantId, {
      userName: user.userName,
      displayName: name,
      password: user.password,
    });
    for (const [role, scope] of roles) await assignRole(s, p.id, role, scope);
    return { c: await consoleSignIn(s, user), id: p.id };
  }

  test('a user without roles is told what they lack on the lists, not "create one above" and a 403', async () => {
    const { c } = await signedInUser('norole');
    for (const [page, action, write] of [
      ['/console/vaults', 'Microsoft.KeyVault/vaults/read', 'Microsoft.KeyVault/vaults/write'],
      ['/console/apps', 'Microsoft.Web/sites/read', 'Microsoft.Web/sites/write'],
      [
        '/console/identities',
        'Microsoft.ManagedIdentity/userAssignedIdentities/read',
        'Microsoft.ManagedIdentity/userAssignedIdentities/write',
      ],
    ] as const) {
      const r = await c.get(page);
      assert.equal(r.status, 200, page);
      assert.match(r.text, /id="access-note"/, page);
      assert.ok(r.text.includes(action), `${page} names ${action}`);
      assert.ok(r.text.includes(write), `${page} names ${write}`);
      assert.ok(r.text.includes(s.info.subscriptionId), `${page} names the subscription`);
      assert.match(r.text, /Ask an owner of the subscription/);
      assert.doesNotMatch(r.text, /Create one above/, page);
      assert.equal(c.csrf(r.text, page), undefined, `${page} offers no create form`);
    }
    // A Reader sees every vault (an empty list is really empty) and is told only what creating needs.
    const reader = await signedInUser('onlyreader', [['Reader', '/']]);
    const r = await reader.c.get('/console/vaults');
    assert.ok(
      !r.text.includes('needs <span class="mono">Microsoft.KeyVault/vaults/read'),
      '!r.text.includes(\'needs <span class="mono">Microsoft.KeyVault/vaults/read\')',
    );
    assert.ok(
      r.text.includes('Microsoft.KeyVault/vaults/write'),
      "r.text.includes('Microsoft.KeyVault/vaults/write')",
    );
    assert.equal(reader.c.csrf(r.text, '/console/vaults'), undefined);
    // The owner gets no note and the create form.
    const own = await admin.get('/console/vaults');
    assert.doesNotMatch(own.text, /id="access-note"/);
    assert.ok(admin.csrf(own.text, '/console/vaults'), "admin.csrf(own.text, '/console/vaults')");
  });

  test('the member picker lists only principals the user may read; others get a clear message', async () => {
    // Owner of one resource group: may assign roles there, but may not read the directory.
    const { c, id } = await signedInUser('rgowner', [
      ['Owner', `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`],
    ]);
    const page = await c.get('/console/resource-groups/default/iam?member=a');
    assert.equal(page.status, 200);
    assert.match(page.text, /id="member-note"/);
    assert.match(page.text, /Microsoft\.Directory\/users\/read/);
    assert.doesNotMatch(page.text, /id="member-results"/);
    // No other principal's name anywhere on the page (the admin's Owner assignment at the root is listed by id).
    const adminUser = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal;
    assert.ok(!page.text.includes(s.admin.userName), 'no user name of another user');
    assert.ok(!page.text.includes(`${adminUser.displayName} (`), 'no display name of another user');
    assert.ok(page.text.includes(adminUser.id), 'the assignment is listed by id');
    assert.ok(page.text.includes('rgowner'), 'their own name is shown');
    // The subscription's IAM is not theirs to change; the resource-groups list shows their group only.
    const subIam = await c.get('/console/subscription/iam');
    assert.match(subIam.text, /id="iam-note"/);
    assert.equal(c.csrf(subIam.text, '/console/subscription/iam'), undefined);
    assert.match((await c.get('/console/resource-groups')).text, /resource-groups\/default\/iam/);
    // The directory search itself refuses a user who may read neither users nor applications.
    const none = await signedInUser('nodirectory');
    await assert.rejects(
      s.services.directory.search(
        { tenantId: s.info.tenantId, oid: none.id, appId: null, kind: 'user' },
        'a',
      ),
      /users\/read/,
    );
    void id;
  });

  test('the member search route: JSON matches by name or id, bounded, this tenant only, as the user may read', async () => {
    const json = async (c: ConsoleClient, q: string) => {
      const r = await c.get(`/console/directory/members?q=${encodeURIComponent(q)}`);
      return {
        status: r.status,
        body: JSON.parse(r.text) as {
          value?: { id: string; displayName: string; kind: string }[];
          error?: { code: string };
        },
      };
    };
    for (let i = 0; i < 25; i++)
      await s.services.principals.createServicePrincipal(s.info.tenantId, {
        displayName: `Bulk Member ${String(i)}`,
      });
    const app = await s.services.principals.createServicePrincipal(s.info.tenantId, {
      displayName: 'Picker Pipeline',
    });
    const other = await s.services.tenants.create({ displayName: 'Other', domain: 'other-picker.example' });
    await s.services.principals.createServicePrincipal(other.id, { displayName: 'Picker Foreign' });
    // By part of the display name (users, applications), at most 20 matches.
    const many = await json(admin, 'bulk member');
    assert.equal(many.status, 200);
    assert.equal(many.body.value!.length, 20);
    const byName = await json(admin, 'picker');
    assert.deepEqual(
      byName.body.value!.map((m) => [m.displayName, m.kind]),
      [['Picker Pipeline', 'application']],
      "another tenant's principal is not found",
    );
    assert.deepEqual(
      (await json(admin, app.id)).body.value!.map((m) => m.id),
      [app.id],
    );
    // A long term is cut to 100 characters, not an error; an empty one finds nothing.
    assert.deepEqual((await json(admin, 'x'.repeat(5000))).body.value, []);
    assert.deepEqual((await json(admin, '')).body.value, []);
    // A user who may read neither users nor applications: 403, nothing listed.
    const { c } = await signedInUser('nodirsearch', [
      ['Owner', `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`],
    ]);
    const denied = await json(c, 'picker');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.value, undefined);
    // No session: 401, not a sign-in redirect.
    const anon = await consoleClient(s).get('/console/directory/members?q=picker');
    assert.equal(anon.status, 401);
    assert.doesNotMatch(anon.text, /Picker/);
  });

  test('a user without access to a host, app, identity or resource group sees nothing of it in the console', async () => {
    const sub = s.info.subscriptionId;
    const rg = (name: string) => `/subscriptions/${sub}/resourceGroups/${name}`;
    // Hidden things, with names that appear nowhere else.
    await s.services.scopes.ensureResourceGroup(s.info.tenantId, sub, 'hiddengroup-q7');
    const cert = await selfSignedRsaCert('hiddenhost-q7');
    const host = await arm(
      s,
      'PUT',
      `${rg('default')}/providers/Microsoft.Latchkey/hosts/hiddenhost-q7?api-version=2024-01-01`,
      {
        properties: { certificate: cert.certPem },
      },
    );
    assert.equal(host.status, 201, host.text);
    await putApp(s, 'visibleapp-q7', { properties: { hostId: 'hiddenhost-q7' } });
    await putIdentity(s, 'hiddenidentity-q7');
    // Reader of the app alone (and Contributor of the default group's apps would not change this).
    const { c } = await signedInUser('appreader', [
      ['Reader', `${rg('default')}/providers/Microsoft.Web/sites/visibleapp-q7`],
    ]);
    const overview = await c.get('/console/apps/default/visibleapp-q7');
    assert.equal(overview.status, 200, overview.text);
    assert.ok(overview.text.includes('visibleapp-q7'), "overview.text.includes('visibleapp-q7')");
    assert.ok(!overview.text.includes('hiddenhost-q7'), 'the app page names a host the user may not read');
    // The identity, the host and the resource group: a 403/404 page or a list without them.
    const identity = await c.get('/console/identities/default/hiddenidentity-q7');
    assert.ok([403, 404].includes(identity.status), `identity page: ${identity.status}`);
    for (const page of [
      '/console/identities',
      '/console/apps',
      '/console/resource-groups',
      '/console/provisioning',
    ]) {
      const r = await c.get(page);
      for (const name of ['hiddenidentity-q7', 'hiddenhost-q7', 'hiddengroup-q7'])
        assert.ok(!r.text.includes(name), `${page} (${r.status}) shows ${name}`);
    }
    // A contributor of one group is offered only the groups they may read in create forms.
    const contributor = await signedInUser('rgcontributor', [['Contributor', rg('default')]]);
    for (const page of ['/console/apps', '/console/identities', '/console/vaults']) {
      const r = await contributor.c.get(page);
      assert.equal(r.status, 200, page);
      assert.ok(r.text.includes('value="default"'), `${page} offers the default group`);
      assert.ok(!r.text.includes('hiddengroup-q7'), `${page} offers a group the user may not read`);
    }
    // The owner still sees all of it.
    assert.ok(
      (await admin.get('/console/apps/default/visibleapp-q7')).text.includes('hiddenhost-q7'),
      "(await admin.get('/console/apps/default/visibleapp-q7')).text.includes('hiddenhost-q7')",
    );
    assert.ok(
      (await admin.get('/console/apps')).text.includes('hiddengroup-q7'),
      "(await admin.get('/console/apps')).text.includes('hiddengroup-q7')",
    );
  });

  test('sessions expire after the idle timeout and at the absolute limit', async () => {
    const idle = await consoleSignIn(s);
    clock.advance(599_000);
    assert.equal((await idle.get('/console/')).status, 200, 'still within the idle timeout');
    clock.advance(599_000);
    assert.equal((await idle.get('/console/')).status, 200, 'each request restarts the idle timer');
    clock.advance(601_000);
    const gone = await idle.get('/console/');
    assert.equal(gone.status, 302, 'idle for more than 10 minutes');
    const expiredPost = await idle.post('/console/vaults', { name: 'late', _csrf: 'x' });
    assert.equal(expiredPost.status, 401);
    assert.match(expiredPost.text, /not signed in|expired/);

    const busy = await consoleSignIn(s);
    for (let i = 0; i < 6; i++) {
      clock.advance(500_000);
      assert.equal((await busy.get('/console/')).status, 200, `active at ${i}`);
    }
    clock.advance(700_000); // 3,700 s after sign-in: past the 1-hour absolute limit
    assert.equal((await busy.get('/console/')).status, 302);
    // The prune job deletes what nobody came back for.
    assert.equal(await s.services.jobs.runNow('console-session-prune'), true);
    const left = await s.services.db.get<{ n: number }>(
      'SELECT COUNT(*) AS n FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2',
      [clock.now(), clock.now() - 600_000],
    );
    assert.equal(Number(left!.n), 0, 'no expired session is left');
  });
});
