import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, jwtVerify } from 'jose';
import { CLI_CLIENT_ID, CONSOLE_CLIENT_ID } from '../src/authority/clients.js';
import { localJwks } from './helpers/authority.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import {
  authorizeUrl,
  consoleRedirect,
  openSignIn,
  pkce,
  postSignIn,
  redeem,
  signInForCode,
} from './helpers/signin.js';

const count = async (s: TestServer, table: string) =>
  Number((await s.services.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))!.n);

/** A page that must not redirect anywhere: 4xx, HTML, no Location. */
function assertErrorPage(
  r: { status: number; headers: Record<string, unknown>; text: string },
  text: RegExp,
) {
  assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
  assert.equal(r.headers.location, undefined);
  assert.match(String(r.headers['content-type']), /^text\/html/);
  assert.match(r.text, text);
}

/** A redirect to the console's callback carrying an OAuth error and the state. */
function assertErrorRedirect(
  s: TestServer,
  r: { status: number; headers: Record<string, unknown> },
  error: string,
) {
  assert.equal(r.status, 303);
  const loc = new URL(String(r.headers.location));
  assert.equal(`${loc.origin}${loc.pathname}`, consoleRedirect(s));
  assert.equal(loc.searchParams.get('error'), error);
  assert.ok(loc.searchParams.get('error_description'), "loc.searchParams.get('error_description')");
  assert.equal(loc.searchParams.get('state'), 'state-123');
  assert.equal(loc.searchParams.get('code'), null);
}

describe('authorization endpoint: code flow with PKCE', () => {
  let s: TestServer;
  let admin: { userName: string; password: string };

  before(async () => {
    // Client budget 4 failures (address: 20) per minute, no slow-down: the throttle test stays fast.
    s = await startTestApp({ limits: { authFailureLimit: 4, authFailureSlowAfter: 1000 } });
    admin = s.admin;
  });
  after(async () => {
    await s?.stop();
  });

  test('discovery advertises the code flow, S256 only', async () => {
    const d = (await s.request('GET', `/${s.info.tenantId}/v2.0/.well-known/openid-configuration`)).json;
    assert.equal(d.authorization_endpoint, `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/authorize`);
    assert.ok(
      d.grant_types_supported.includes('authorization_code'),
      "d.grant_types_supported.includes('authorization_code')",
    );
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(d.response_types_supported, ['code']);
  });

  test('sign in, redeem: access token, ID token with the nonce; the page has the strict CSP', async () => {
    const { verifier, challenge } = pkce();
    const url = authorizeUrl(s, challenge);
    const f = await openSignIn(s, url);
    assert.equal(f.status, 200);
    assert.match(String(f.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    assert.equal(f.headers['cache-control'], 'no-store');
    assert.match(f.text, /<label for="password">Password<\/label>/);
    const set = String(f.headers['set-cookie']);
    assert.match(set, /^__Host-latchkey-signin=[\w-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict/);
    const r = await postSignIn(
      s,
      url,
      { ...f.hidden, username: admin.userName, password: admin.password },
      f.cookie,
    );
    assert.equal(r.status, 303);
    const loc = new URL(String(r.headers.location));
    assert.equal(`${loc.origin}${loc.pathname}`, consoleRedirect(s));
    assert.equal(loc.searchParams.get('state'), 'state-123');
    const code = loc.searchParams.get('code')!;
    assert.match(code, /^lkc~/);

    const t = await redeem(s, { code, code_verifier: verifier });
    assert.equal(t.status, 200, t.text);
    assert.equal(t.headers['cache-control'], 'no-store');
    const at = decodeJwt(t.json.access_token);
    assert.equal(at.aud, s.info.managementResource);
    assert.equal(at.appid, CONSOLE_CLIENT_ID);
    assert.equal(at.idtyp, 'user');
    const jwks = await localJwks(s);
    const id = await jwtVerify(t.json.id_token, jwks, {
      audience: CONSOLE_CLIENT_ID,
      issuer: `${s.info.authority}/${s.info.tenantId}/v2.0`,
    });
    assert.equal(id.payload.nonce, 'nonce-456');
    assert.equal(id.payload.oid, at.oid);
    assert.equal(id.payload.preferred_username, admin.userName);
    assert.equal(t.json.refresh_token, undefined, 'no offline_access, no refresh token');
    // The access token works on the management API.
    const subs = await s.request('GET', '/subscriptions?api-version=2022-12-01', {
      headers: { authorization: `Bearer ${t.json.access_token}` },
    });
    assert.equal(subs.status, 200);
  });

  test('a wrong code_verifier is refused, and the code is spent', async () => {
    const { verifier, challenge } = pkce();
    const { code } = await signInForCode(s, challenge, admin);
    const wrong = await redeem(s, { code, code_verifier: pkce().verifier });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.json.error, 'invalid_grant');
    assert.match(wrong.json.error_description, /code_verifier does not match/);
    const late = await redeem(s, { code, code_verifier: verifier });
    assert.equal(late.json.error, 'invalid_grant');
    assert.match(late.json.error_description, /already been redeemed/);
  });

  test('a reused code is refused and revokes the refresh token its first use issued', async () => {
    const { verifier, challenge } = pkce();
    const { code } = await signInForCode(s, challenge, admin, {
      scope: `openid offline_access ${s.info.managementResource}/.default`,
    });
    const first = await redeem(s, { code, code_verifier: verifier });
    assert.equal(first.status, 200);
    assert.ok(first.json.refresh_token, 'first.json.refresh_token');
    const again = await redeem(s, { code, code_verifier: verifier });
    assert.equal(again.status, 400);
    assert.equal(again.json.error, 'invalid_grant');
    const refreshed = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'refresh_token',
        client_id: CONSOLE_CLIENT_ID,
        refresh_token: first.json.refresh_token,
      },
    });
    assert.equal(refreshed.status, 400);
    assert.equal(refreshed.json.error, 'invalid_grant');
  });

  test('an expired code is refused', async () => {
    const { verifier, challenge } = pkce();
    const { code } = await signInForCode(s, challenge, admin);
    await s.services.db.run('UPDATE authorization_codes SET expires_at = $1 WHERE used_at IS NULL', [
      Date.now() - 1000,
    ]);
    const r = await redeem(s, { code, code_verifier: verifier });
    assert.equal(r.json.error, 'invalid_grant');
    assert.match(r.json.error_description, /expired/);
  });

  test('the token request must repeat the exact redirect_uri and come from the same client', async () => {
    const a = pkce();
    const one = await signInForCode(s, a.challenge, admin);
    const r = await redeem(s, {
      code: one.code,
      code_verifier: a.verifier,
      redirect_uri: `${consoleRedirect(s)}/`,
    });
    assert.equal(r.json.error, 'invalid_grant');
    assert.match(r.json.error_description, /redirect_uri/);
    const b = pkce();
    const two = await signInForCode(s, b.challenge, admin);
    // A client that may use the grant (the CLI, a native app) but was not the one signed in for.
    const other = await redeem(s, {
      code: two.code,
      code_verifier: b.verifier,
      client_id: CLI_CLIENT_ID,
    });
    assert.equal(other.json.error, 'invalid_grant');
    assert.match(other.json.error_description, /issued to another client/);
    // A client that may not use the grant at all.
    const c = pkce();
    const three = await signInForCode(s, c.challenge, admin);
    const unknown = await redeem(s, {
      code: three.code,
      code_verifier: c.verifier,
      client_id: '11111111-2222-3333-4444-555555555555',
    });
    assert.equal(unknown.json.error, 'unauthorized_client');
  });

  test('unknown client or unregistered redirect URI: an error page, never a redirect', async () => {
    const { challenge } = pkce();
    const before = await count(s, 'authorization_codes');
    assertErrorPage(
      await s.request(
        'GET',
        authorizeUrl(s, challenge, { client_id: '11111111-2222-3333-4444-555555555555' }),
      ),
      /not registered for browser sign-in/,
    );
    assertErrorPage(
      await s.request('GET', authorizeUrl(s, challenge, { client_id: undefined })),
      /no client_id/,
    );
    const port = new URL(s.info.authority).port;
    for (const evil of [
      'https://evil.example/console/auth/callback',
      `https://localhost:${port}@evil.example/console/auth/callback`,
      `https://localhost:${port}/console/auth/callback/../../evil`,
      `https://localhost:${port}/console/auth/callback?next=https://evil.example`,
      `https://localhost:${port}/console/auth/callback#x`,
      `http://localhost:${port}/console/auth/callback`,
      `https://localhost:${Number(port) + 1}/console/auth/callback`,
      `https://LOCALHOST:${port}/console/auth/callback`,
      '//evil.example/console/auth/callback',
      'javascript:alert(1)',
    ]) {
      const r = await s.request('GET', authorizeUrl(s, challenge, { redirect_uri: evil }));
      assertErrorPage(r, /redirect URI of the request is not registered/);
    }
    assertErrorPage(
      await s.request('GET', authorizeUrl(s, challenge, { redirect_uri: undefined })),
      /no redirect_uri/,
    );
    // Also with an otherwise broken request: the redirect URI is judged first.
    assertErrorPage(
      await s.request(
        'GET',
        authorizeUrl(s, challenge, { redirect_uri: 'https://evil.example/', response_type: 'token' }),
      ),
      /not registered/,
    );
    assertErrorPage(
      await s.request(
        'GET',
        `${authorizeUrl(s, challenge)}&redirect_uri=${encodeURIComponent('https://evil.example/')}`,
      ),
      /must appear exactly once/,
    );
    assertErrorPage(
      await s.request('GET', authorizeUrl(s, challenge, {}, '/no-such-tenant/oauth2/v2.0/authorize')),
      /not found/,
    );
    assert.equal(await count(s, 'authorization_codes'), before);
  });

  test('PKCE is required, plain refused; other request errors go back to the client with the state', async () => {
    const { challenge } = pkce();
    const get = (p: Record<string, string | undefined>) => s.request('GET', authorizeUrl(s, challenge, p));
    assertErrorRedirect(s, await get({ code_challenge_method: 'plain' }), 'invalid_request');
    assertErrorRedirect(s, await get({ code_challenge_method: undefined }), 'invalid_request');
    assertErrorRedirect(s, await get({ code_challenge: undefined }), 'invalid_request');
    assertErrorRedirect(s, await get({ code_challenge: 'short' }), 'invalid_request');
    assertErrorRedirect(s, await get({ response_type: 'token' }), 'unsupported_response_type');
    assertErrorRedirect(s, await get({ response_mode: 'form_post' }), 'invalid_request');
    assertErrorRedirect(s, await get({ scope: 'openid https://unknown.example/.default' }), 'invalid_scope');
    assertErrorRedirect(s, await get({ prompt: 'none' }), 'login_required');
    // The v1 alias takes `resource`.
    const v1 = await s.request(
      'GET',
      authorizeUrl(
        s,
        challenge,
        { scope: undefined, resource: s.info.managementResource },
        `/${s.info.tenantId}/oauth2/authorize`,
      ),
    );
    assert.equal(v1.status, 200);
  });

  test('a wrong password shows the form again; repeated failures are throttled like the token endpoint', async () => {
    const user = 'throttled@latchkey.localhost';
    await s.services.principals.createUser(s.info.tenantId, {
      userName: user,
      displayName: 'Throttled',
      password: 'correct horse battery',
    });
    const { challenge } = pkce();
    const url = authorizeUrl(s, challenge);
    const f = await openSignIn(s, url);
    const before = await count(s, 'authorization_codes');
    for (let i = 0; i < 4; i++) {
      const r = await postSignIn(
        s,
        url,
        { ...f.hidden, username: user, password: 'wrong password!' },
        f.cookie,
      );
      assert.equal(r.status, 400);
      assert.equal(r.headers.location, undefined);
      assert.match(r.text, /Invalid user name or password/);
      assert.doesNotMatch(r.text, /wrong password!/, 'the password is never echoed');
    }
    const locked = await postSignIn(
      s,
      url,
      { ...f.hidden, username: user, password: 'correct horse battery' },
      f.cookie,
    );
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers['retry-after']) >= 1, "Number(locked.headers['retry-after']) >= 1");
    assert.match(locked.text, /Too many failed sign-in attempts/);
    // The token endpoint shares the budget.
    const pw = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'password',
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        username: user,
        password: 'correct horse battery',
        scope: `${s.info.managementResource}/.default`,
      },
    });
    assert.equal(pw.status, 429);
    assert.equal(await count(s, 'authorization_codes'), before);
  });

  test('CSRF: the form is refused without its token, with a bad one, without the cookie, or from another origin', async () => {
    const { challenge } = pkce();
    const url = authorizeUrl(s, challenge);
    const f = await openSignIn(s, url);
    const creds = { username: admin.userName, password: admin.password };
    const before = await count(s, 'authorization_codes');
    const { csrf: _csrf, ...noToken } = f.hidden;
    for (const [form, cookie] of [
      [{ ...noToken, ...creds }, f.cookie],
      [{ ...f.hidden, csrf: 'A'.repeat(43), ...creds }, f.cookie],
      [{ ...f.hidden, ...creds }, undefined],
      [{ ...f.hidden, ...creds }, `__Host-latchkey-signin=${'B'.repeat(43)}`],
      // A token is bound to its request: changing the state invalidates it.
      [{ ...f.hidden, state: 'other', ...creds }, f.cookie],
    ] as const) {
      const r = await postSignIn(s, url, form, cookie);
      assert.equal(r.status, 400);
      assert.match(r.text, /form expired/);
      assert.equal(r.headers.location, undefined);
    }
    for (const headers of [
      { origin: 'https://evil.example' } as Record<string, string>,
      { origin: 'null', 'sec-fetch-site': 'cross-site' },
      { origin: 'null' },
      { 'sec-fetch-site': 'same-site' },
    ]) {
      const r = await postSignIn(s, url, { ...f.hidden, ...creds }, f.cookie, headers);
      assertErrorPage(r, /submitted from another site/);
    }
    assert.equal(await count(s, 'authorization_codes'), before);
    // With everything right it works (and a real Origin of ours is accepted too).
    const ok = await postSignIn(s, url, { ...f.hidden, ...creds }, f.cookie, { origin: s.info.authority });
    assert.equal(ok.status, 303);
  });
  test('native apps (RFC 8252): the CLI and registered public clients sign in to a loopback port', async () => {
    const admin = await s.adminToken();
    const created = await s.request('POST', '/api/directory/servicePrincipals', {
      headers: { authorization: `Bearer ${admin}` },
      json: { displayName: 'desktop-app', publicClient: true },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.credential, null, 'a public client gets no secret');
    assert.equal(created.json.servicePrincipal.publicClient, true);
    const confidential = await s.request('POST', '/api/directory/servicePrincipals', {
      headers: { authorization: `Bearer ${admin}` },
      json: { displayName: 'web-api' },
    });
    for (const [clientId, redirect] of [
      [CLI_CLIENT_ID, 'http://localhost:8400'],
      [CLI_CLIENT_ID, 'http://127.0.0.1:51234/callback'],
      [created.json.servicePrincipal.appId, 'http://[::1]:60000/'],
    ] as const) {
      const { verifier, challenge } = pkce();
      const url = authorizeUrl(s, challenge, {
        client_id: clientId,
        redirect_uri: redirect,
        scope: `openid offline_access ${s.info.managementResource}/.default`,
      });
      const f = await openSignIn(s, url);
      assert.equal(f.status, 200, f.text.slice(0, 300));
      // The page's form may lead to that loopback origin, and to no other.
      const origin = new URL(redirect).origin;
      assert.match(
        String(f.headers['content-security-policy']),
        new RegExp(`form-action 'self' ${origin.replace(/[[\].]/g, '\\$&')};`),
      );
      const r = await postSignIn(
        s,
        url,
        { ...f.hidden, username: s.admin.userName, password: s.admin.password },
        f.cookie,
      );
      assert.equal(r.status, 303, r.text.slice(0, 300));
      const location = new URL(String(r.headers.location));
      assert.equal(`${location.origin}${location.pathname}`, new URL(redirect).href);
      const t = await redeem(s, {
        client_id: clientId,
        redirect_uri: redirect,
        code: location.searchParams.get('code') ?? '',
        code_verifier: verifier,
      });
      assert.equal(t.status, 200, t.text);
      assert.equal(decodeJwt(t.json.id_token).aud, clientId);
      assert.ok(t.json.refresh_token, 't.json.refresh_token');
    }

    const { challenge } = pkce();
    // Loopback only, and only for native apps: never a remote host, never the console client.
    for (const [clientId, redirect, why] of [
      [CLI_CLIENT_ID, 'https://evil.example/cb', /not registered/],
      [CLI_CLIENT_ID, 'http://evil.example:8400/', /not registered/],
      [CLI_CLIENT_ID, 'https://localhost:8400/', /not registered/],
      [CLI_CLIENT_ID, 'http://localhost/', /not registered/],
      [CLI_CLIENT_ID, 'http://localhost:0/', /not registered/],
      [CLI_CLIENT_ID, 'http://localhost:70000/', /not registered/],
      [CLI_CLIENT_ID, 'http://user@localhost:8400/', /not registered/],
      [CLI_CLIENT_ID, 'http://localhost:8400@evil.example/', /not registered/],
      [CLI_CLIENT_ID, 'http://localhost:8400/?next=x', /not registered/],
      [CLI_CLIENT_ID, 'http://localhost:8400/#x', /not registered/],
      [CLI_CLIENT_ID, 'http://127.0.0.2:8400/', /not registered/],
      [CONSOLE_CLIENT_ID, 'http://localhost:8400', /not registered/],
      [
        confidential.json.servicePrincipal.appId,
        'http://localhost:8400',
        /not registered for browser sign-in/,
      ],
    ] as const) {
      assertErrorPage(
        await s.request('GET', authorizeUrl(s, challenge, { client_id: clientId, redirect_uri: redirect })),
        why,
      );
    }
    // A disabled public client signs nobody in.
    const off = await s.request(
      'PATCH',
      `/api/directory/servicePrincipals/${created.json.servicePrincipal.id}`,
      {
        headers: { authorization: `Bearer ${admin}` },
        json: { accountEnabled: false },
      },
    );
    assert.equal(off.status, 200, off.text);
    assertErrorPage(
      await s.request(
        'GET',
        authorizeUrl(s, challenge, {
          client_id: created.json.servicePrincipal.appId,
          redirect_uri: 'http://localhost:8400',
        }),
      ),
      /not registered for browser sign-in/,
    );
  });
});
