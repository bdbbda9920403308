// Refresh tokens and sign-in sessions (issue 14, finding 2): a refresh rotates and a replay revokes
// the whole family (OAuth 2.0 Security BCP); a password reset, a disable (and re-enable), a disabled
// or deleted public client, and revokeSignInSessions (Graph, directory API, CLI) end them; codes
// from a sign-in before a revocation redeem nothing; console sessions end too.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLI_CLIENT_ID, CONSOLE_CLIENT_ID } from '../src/authority/clients.js';
import { fakeClock } from '../src/lib/clock.js';
import { assignRole, servicePrincipal } from './helpers/access.js';
import { assertOAuthError } from './helpers/authority.js';
import { cliUser } from './helpers/cli.js';
import { consoleSignIn } from './helpers/console.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { completeDeviceSignIn, pkce, redeem, signInForCode } from './helpers/signin.js';

// Both storage adapters: the family, spend and revocation statements are dialect-sensitive.
for (const backend of ['sqlite', 'postgres'] as const)
  describe(`refresh tokens: rotation, replay, revocation (${backend})`, () => {
    const clock = fakeClock();
    let s: TestServer;
    let schema: TestSchema | undefined;
    let admin: Record<string, string>;
    let n = 0;
    const tokenPath = () => `/${s.info.tenantId}/oauth2/v2.0/token`;
    const api = (method: string, path: string, headers: Record<string, string>, json?: unknown) =>
      s.request(method, path, { headers, ...(json !== undefined ? { json } : {}) });
    const mgmt = () => `${s.info.managementResource}/.default`;

    /** A new user (API), signed in with the password grant: its refresh token and access token. */
    const newUser = async (clientId = CLI_CLIENT_ID) => {
      n += 1;
      const userName = `rt${n}@refresh.example`;
      const password = `a-long-enough-password-${n}`;
      const created = await api('POST', '/api/directory/users', admin, {
        userPrincipalName: userName,
        displayName: `RT ${n}`,
        password,
      });
      assert.equal(created.status, 201, created.text);
      const signed = await signIn(userName, password, clientId);
      return {
        id: created.json.user.id as string,
        userName,
        password,
        rt: signed.json.refresh_token as string,
        at: signed.json.access_token as string,
      };
    };
    const signIn = async (userName: string, password: string, clientId = CLI_CLIENT_ID, scope = mgmt()) => {
      const r = await s.request('POST', tokenPath(), {
        form: {
          grant_type: 'password',
          client_id: clientId,
          username: userName,
          password,
          scope: `${scope} offline_access`,
        },
      });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.refresh_token, 'r.json.refresh_token');
      return r;
    };
    const refresh = (rt: string, clientId = CLI_CLIENT_ID) =>
      s.request('POST', tokenPath(), {
        form: { grant_type: 'refresh_token', client_id: clientId, refresh_token: rt },
      });
    /** Moves the clock past the sign-ins so far (a revocation is later than them). */
    const later = () => clock.advance(1_000);

    before(async () => {
      schema = backend === 'postgres' ? await createTestSchema() : undefined;
      s = await startTestServer({
        identityPort: null,
        clock,
        ...(schema ? { storageUrl: schema.url } : {}),
        limits: { authFailureLimit: 10_000, authFailureSlowAfter: 10_000 },
      });
      admin = { authorization: `Bearer ${await s.adminToken()}` };
    });
    after(async () => {
      await s?.stop();
      await schema?.drop();
    });

    test('a refresh rotates; replaying the spent token is refused and revokes its successor', async () => {
      const u = await newUser();
      const r2 = await refresh(u.rt);
      assert.equal(r2.status, 200, r2.text);
      const rt2 = r2.json.refresh_token as string;
      assert.notEqual(rt2, u.rt);
      const replay = await refresh(u.rt);
      assertOAuthError(replay, 400, 'invalid_grant');
      assert.match(replay.json.error_description, /already been used/);
      assertOAuthError(await refresh(rt2), 400, 'invalid_grant');
      // The other sign-ins of the same user are not touched.
      const other = await signIn(u.userName, u.password);
      assert.equal((await refresh(other.json.refresh_token)).status, 200);
    });

    test('a password reset revokes the refresh tokens; the new password signs in afresh', async () => {
      const u = await newUser();
      const rotated = (await refresh(u.rt)).json.refresh_token as string;
      later();
      const reset = await api('POST', `/api/directory/users/${u.id}/resetPassword`, admin);
      assert.equal(reset.status, 200);
      assertOAuthError(await refresh(rotated), 400, 'invalid_grant');
      const fresh = await signIn(u.userName, reset.json.password);
      assert.equal((await refresh(fresh.json.refresh_token)).status, 200);
      // PATCH with a password is a reset too.
      const before = (await signIn(u.userName, reset.json.password)).json.refresh_token as string;
      later();
      const set = await api('PATCH', `/api/directory/users/${u.id}`, admin, {
        password: 'yet-another-password',
      });
      assert.equal(set.status, 200);
      assertOAuthError(await refresh(before), 400, 'invalid_grant');
    });

    test('disable then enable: refresh tokens from before the disable stay revoked', async () => {
      const u = await newUser();
      later();
      assert.equal(
        (await api('PATCH', `/api/directory/users/${u.id}`, admin, { accountEnabled: false })).status,
        200,
      );
      assertOAuthError(await refresh(u.rt), 400, 'invalid_grant');
      assert.equal(
        (await api('PATCH', `/api/directory/users/${u.id}`, admin, { accountEnabled: true })).status,
        200,
      );
      assertOAuthError(await refresh(u.rt), 400, 'invalid_grant');
      const again = await signIn(u.userName, u.password);
      assert.equal((await refresh(again.json.refresh_token)).status, 200);
    });

    test('a refresh from a sign-in before sessionsValidFrom is refused even if the row survived', async () => {
      const u = await newUser();
      later();
      // Only the time moves (as after a revocation whose delete another node has not seen).
      await s.services.db.run('UPDATE principals SET sessions_valid_from = $1 WHERE id = $2', [
        clock.now(),
        u.id,
      ]);
      const r = await refresh(u.rt);
      assertOAuthError(r, 400, 'invalid_grant');
      assert.match(r.json.error_description, /revoked/);
    });

    test('a disabled or deleted public client app: its refresh tokens are refused, also after re-enable', async () => {
      const created = await api('POST', '/api/directory/servicePrincipals', admin, {
        displayName: 'native-refresh-app',
        publicClient: true,
      });
      assert.equal(created.status, 201, created.text);
      const app = created.json.servicePrincipal as { id: string; appId: string };
      const u = await newUser(app.appId);
      const rt2 = (await refresh(u.rt, app.appId)).json.refresh_token as string;
      assert.ok(rt2, 'rt2');
      later();
      const off = await api('PATCH', `/api/directory/servicePrincipals/${app.id}`, admin, {
        accountEnabled: false,
      });
      assert.equal(off.status, 200, off.text);
      assert.equal((await refresh(rt2, app.appId)).status, 400);
      await api('PATCH', `/api/directory/servicePrincipals/${app.id}`, admin, { accountEnabled: true });
      assertOAuthError(await refresh(rt2, app.appId), 400, 'invalid_grant');
      // A refresh token of the re-enabled app works until the app is deleted.
      const fresh = await signIn(u.userName, u.password, app.appId);
      later();
      assert.equal((await api('DELETE', `/api/directory/servicePrincipals/${app.id}`, admin)).status, 204);
      const gone = await refresh(fresh.json.refresh_token, app.appId);
      assert.equal(gone.status, 400);
      assert.ok(
        ['invalid_grant', 'unauthorized_client'].includes(gone.json.error),
        "['invalid_grant', 'unauthorized_client'].includes(gone.json.error)",
      );
    });

    test('the client is re-checked on refresh even if the refresh token row survived', async () => {
      const created = await api('POST', '/api/directory/servicePrincipals', admin, {
        displayName: 'native-refresh-app-2',
        publicClient: true,
      });
      const app = created.json.servicePrincipal as { id: string; appId: string };
      const u = await newUser(app.appId);
      await s.services.db.run('UPDATE principals SET enabled = 0 WHERE id = $1', [app.id]);
      assertOAuthError(await refresh(u.rt, app.appId), 400, 'unauthorized_client');
      await s.services.db.run('UPDATE principals SET enabled = 1 WHERE id = $1', [app.id]);
      assert.equal((await refresh(u.rt, app.appId)).status, 200);
    });

    test('revokeSignInSessions (Graph): /me by the user, /users/{id} by an admin; refused for narrower callers', async () => {
      const base = s.info.authority;
      const u = await newUser();
      const graph = (await signIn(u.userName, u.password, CLI_CLIENT_ID, `${base}/.default`)).json
        .access_token as string;
      later();
      const me = await s.request('POST', '/v1.0/me/revokeSignInSessions', {
        headers: { authorization: `Bearer ${graph}` },
      });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.json.value, true);
      assert.match(me.json['@odata.context'], /\$metadata#Edm\.Boolean$/);
      assertOAuthError(await refresh(u.rt), 400, 'invalid_grant');

      // Another user's sessions: an ordinary user and a Contributor are refused, and nothing changes.
      const victim = await newUser();
      const other = await newUser();
      const otherGraph = (await signIn(other.userName, other.password, CLI_CLIENT_ID, `${base}/.default`))
        .json.access_token as string;
      const refused = await s.request('POST', `/v1.0/users/${victim.id}/revokeSignInSessions`, {
        headers: { authorization: `Bearer ${otherGraph}` },
      });
      assert.equal(refused.status, 403, refused.text);
      assert.match(refused.json.error.message, /Microsoft\.Directory\/users\/write/);
      const unknown = await s.request(
        'POST',
        '/v1.0/users/00000000-0000-4000-8000-000000000001/revokeSignInSessions',
        { headers: { authorization: `Bearer ${otherGraph}` } },
      );
      assert.equal(unknown.status, 403, 'refused before the lookup: no existence oracle');
      const contributor = await servicePrincipal(s, 'revoke-contributor');
      await assignRole(s, contributor.id, 'Contributor', '/');
      const byContributor = await s.request('POST', `/v1.0/users/${victim.id}/revokeSignInSessions`, {
        headers: { authorization: `Bearer ${await contributor.token(base)}` },
      });
      assert.equal(byContributor.status, 403);
      const byApp = await s.request('POST', '/v1.0/me/revokeSignInSessions', {
        headers: { authorization: `Bearer ${await contributor.token(base)}` },
      });
      assert.equal(byApp.status, 400, 'an app has no /me');
      const stillValid = await refresh(victim.rt);
      assert.equal(stillValid.status, 200);

      later();
      const byAdmin = await s.request('POST', `/v1.0/users/${victim.userName}/revokeSignInSessions`, {
        headers: { authorization: `Bearer ${await s.adminToken(base)}` },
      });
      assert.equal(byAdmin.status, 200, byAdmin.text);
      assertOAuthError(await refresh(stillValid.json.refresh_token), 400, 'invalid_grant');
      const missing = await s.request(
        'POST',
        '/v1.0/users/00000000-0000-4000-8000-000000000001/revokeSignInSessions',
        { headers: { authorization: `Bearer ${await s.adminToken(base)}` } },
      );
      assert.equal(missing.status, 404);
      assert.equal(missing.json.error.code, 'Request_ResourceNotFound');

      const events = await s.services.audit.list({ tenantId: s.info.tenantId, limit: 500 });
      const revokes = events.filter((e) => e.operation === 'UserRevokeSignInSessions');
      assert.deepEqual(revokes.map((e) => e.target).sort(), [u.id, victim.id].sort());
    });

    test('console sessions end on a password reset and on revokeSignInSessions', async () => {
      const u = await newUser();
      const browser = await consoleSignIn(s, u);
      assert.equal((await browser.get('/console/')).status, 200);
      later();
      await api('POST', `/api/directory/users/${u.id}/resetPassword`, admin);
      assert.equal((await browser.get('/console/')).status, 302, 'signed out by the reset');

      const v = await newUser();
      const b2 = await consoleSignIn(s, v);
      assert.equal((await b2.get('/console/')).status, 200);
      later();
      const r = await api('POST', `/api/directory/users/${v.id}/revokeSignInSessions`, admin);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { value: true });
      assert.equal((await b2.get('/console/')).status, 302, 'signed out by the revocation');
    });

    test('an authorization code or device code from before a reset or disable yields no tokens', async () => {
      const u = await newUser();
      const { verifier, challenge } = pkce();
      const { code } = await signInForCode(s, challenge, u);
      later();
      await api('POST', `/api/directory/users/${u.id}/revokeSignInSessions`, admin);
      const r = await redeem(s, { code, code_verifier: verifier });
      assertOAuthError(r, 400, 'invalid_grant');

      const v = await newUser();
      const start = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/devicecode`, {
        form: { client_id: CLI_CLIENT_ID, scope: mgmt() },
      });
      assert.equal(start.status, 200, start.text);
      const done = await completeDeviceSignIn(s, start.json.verification_uri, start.json.user_code, v);
      assert.equal(done.status, 200, done.text);
      later();
      const reset = await api('POST', `/api/directory/users/${v.id}/resetPassword`, admin);
      assert.equal(reset.status, 200);
      await s.services.db.run('UPDATE device_codes SET last_poll_at = 0');
      const polled = await s.request('POST', tokenPath(), {
        form: { grant_type: 'device_code', client_id: CLI_CLIENT_ID, device_code: start.json.device_code },
      });
      assertOAuthError(polled, 400, 'invalid_grant');
    });

    test('a device code of a public client app disabled after the sign-in yields no tokens', async () => {
      const created = await api('POST', '/api/directory/servicePrincipals', admin, {
        displayName: 'native-device-app',
        publicClient: true,
      });
      const app = created.json.servicePrincipal as { id: string; appId: string };
      const u = await newUser();
      const start = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/devicecode`, {
        form: { client_id: app.appId, scope: mgmt() },
      });
      assert.equal(start.status, 200, start.text);
      const done = await completeDeviceSignIn(s, start.json.verification_uri, start.json.user_code, u);
      assert.equal(done.status, 200, done.text);
      await api('PATCH', `/api/directory/servicePrincipals/${app.id}`, admin, { accountEnabled: false });
      await s.services.db.run('UPDATE device_codes SET last_poll_at = 0');
      const polled = await s.request('POST', tokenPath(), {
        form: { grant_type: 'device_code', client_id: app.appId, device_code: start.json.device_code },
      });
      assertOAuthError(polled, 400, 'unauthorized_client');
    });

    test('a replayed authorization code revokes the rotated successor of its refresh token', async () => {
      const u = await newUser();
      const { verifier, challenge } = pkce();
      const { code } = await signInForCode(s, challenge, u, {
        scope: `openid offline_access ${mgmt()}`,
      });
      const first = await redeem(s, { code, code_verifier: verifier });
      assert.equal(first.status, 200, first.text);
      const rotated = await refresh(first.json.refresh_token, CONSOLE_CLIENT_ID);
      assert.equal(rotated.status, 200, rotated.text);
      assertOAuthError(await redeem(s, { code, code_verifier: verifier }), 400, 'invalid_grant');
      assertOAuthError(await refresh(rotated.json.refresh_token, CONSOLE_CLIENT_ID), 400, 'invalid_grant');
    });

    // The CLI against one backend is enough (it talks HTTP only).
    if (backend === 'sqlite')
      test('latchkey ad user revoke-sessions: by the user and by an admin; the CLI then asks to log in again', async () => {
        const remote = ['--server', s.info.authority, '--ca-file', s.info.caCertPath];
        const u = await newUser();
        const adminCli = cliUser();
        const userCli = cliUser();
        try {
          const login = (c: typeof adminCli, name: string, pw: string) =>
            c.run('login', '-u', name, '-p', pw, '--tenant', s.info.tenantId, ...remote);
          assert.equal((await login(adminCli, s.admin.userName, s.admin.password)).code, 0);
          assert.equal((await login(userCli, u.userName, u.password)).code, 0);
          later();
          const byAdmin = await adminCli.run('ad', 'user', 'revoke-sessions', '--id', u.userName);
          assert.equal(byAdmin.code, 0, byAdmin.stderr);
          assert.deepEqual(byAdmin.json, { value: true });
          // The user's CLI holds a management token still (access tokens live until they expire), but
          // its next renewal (a vault token) is refused with a clear message.
          const vault = await userCli.run('account', 'get-access-token', '--resource', s.info.vaultResource);
          assert.equal(vault.code, 1);
          assert.equal(vault.stdout, '');
          assert.match(vault.stderr, /login is no longer valid .*invalid_grant.*latchkey login/);
          assert.doesNotMatch(vault.stderr, /\n\s+at /);
          // The user revokes their own (no directory role needed).
          assert.equal((await login(userCli, u.userName, u.password)).code, 0);
          later();
          const self = await userCli.run('ad', 'user', 'revoke-sessions', '--id', u.id);
          assert.equal(self.code, 0, self.stderr);
          const other = await userCli.run('ad', 'user', 'revoke-sessions', '--id', s.admin.userName);
          assert.notEqual(other.code, 0);
          assert.match(other.stderr, /Microsoft\.Directory\/users\/write/);
        } finally {
          adminCli.cleanup();
          userCli.cleanup();
        }
      });

    test('expired refresh tokens are pruned; a spent one is remembered for replay detection', async () => {
      const u = await newUser();
      assert.equal((await refresh(u.rt)).status, 200);
      const spent = await s.services.db.get<{ used_at: number | null; expires_at: number }>(
        'SELECT used_at, expires_at FROM refresh_tokens WHERE principal_id = $1 AND used_at IS NOT NULL',
        [u.id],
      );
      assert.ok(spent, 'the spent token is kept');
      assert.equal(Number(spent.expires_at), clock.now() + 14 * 86_400_000);
      clock.advance(15 * 86_400_000);
      assert.ok(
        (await s.services.tokenEndpoint.pruneRefreshTokens()) >= 1,
        '(await s.services.tokenEndpoint.pruneRefreshTokens()) >= 1',
      );
      const left = await s.services.db.get<{ n: number }>(
        'SELECT COUNT(*) AS n FROM refresh_tokens WHERE principal_id = $1 AND used_at IS NOT NULL',
        [u.id],
      );
      assert.equal(Number(left!.n), 0);
    });
  });
