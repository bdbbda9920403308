// Users through the management API (/api/directory/users): create with a generated or given password,
// sign-in, disable (tokens refused at once), password reset (the old one stops, console sessions end),
// the caller's own account protected, validation that changes nothing, RBAC, audit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assignRole, servicePrincipal } from './helpers/access.js';
import { startTestApp, type TestServer } from './helpers/server.js';

describe('users (management API)', () => {
  let s: TestServer;
  let admin: Record<string, string>;
  const api = (method: string, path: string, token: Record<string, string>, json?: unknown) =>
    s.request(method, path, { headers: token, ...(json !== undefined ? { json } : {}) });
  const signIn = (userName: string, password: string) =>
    s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'password',
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        username: userName,
        password,
        scope: `${s.info.managementResource}/.default`,
      },
    });

  before(async () => {
    s = await startTestApp({ identityPort: null });
    admin = { authorization: `Bearer ${await s.adminToken()}` };
  });
  after(async () => s?.stop());

  test('create with a generated password (returned once, no-store); the user signs in', async () => {
    const r = await api('POST', '/api/directory/users', admin, {
      userPrincipalName: 'Carol@Users.Example',
      displayName: 'Carol',
    });
    assert.equal(r.status, 201);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.json.user.userPrincipalName, 'carol@users.example', 'names are case-insensitive');
    assert.equal(typeof r.json.password, 'string');
    assert.ok(r.json.password.length >= 24, 'r.json.password.length >= 24');
    assert.equal((await signIn('carol@users.example', r.json.password)).status, 200);
    // Read back: never a password.
    const shown = await api('GET', `/api/directory/users/${r.json.user.id}`, admin);
    assert.equal(shown.status, 200);
    assert.deepEqual(Object.keys(shown.json).sort(), [
      'accountEnabled',
      'createdDateTime',
      'displayName',
      'id',
      'userPrincipalName',
    ]);
    const byName = await api('GET', '/api/directory/users/carol@users.example', admin);
    assert.equal(byName.json.id, r.json.user.id);
  });

  test('bad input is refused and changes nothing', async () => {
    const before = (await api('GET', '/api/directory/users', admin)).json.value.length;
    for (const body of [
      { userPrincipalName: 'dave@users.example', displayName: 'Dave', password: 'short' },
      { userPrincipalName: 'not a name', displayName: 'Dave' },
      { userPrincipalName: 'dave@users.example', displayName: '' },
      { userPrincipalName: 'dave@users.example' },
    ]) {
      const r = await api('POST', '/api/directory/users', admin, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.code, 'BadParameter');
    }
    const dup = await api('POST', '/api/directory/users', admin, {
      userPrincipalName: 'CAROL@users.example',
      displayName: 'Carol again',
    });
    assert.equal(dup.status, 409);
    assert.equal((await api('GET', '/api/directory/users', admin)).json.value.length, before);
  });

  test('disable refuses the live token at once; enable; reset password ends the old one and console sessions', async () => {
    const created = await api('POST', '/api/directory/users', admin, {
      userPrincipalName: 'erin@users.example',
      displayName: 'Erin',
      password: 'a-long-enough-password',
    });
    assert.equal(created.status, 201);
    assert.equal(created.json.password, undefined, 'a given password is not echoed');
    const id = created.json.user.id as string;
    const token = (await signIn('erin@users.example', 'a-long-enough-password')).json.access_token as string;
    const erin = { authorization: `Bearer ${token}` };
    assert.equal((await api('GET', '/api/account', erin)).status, 200);

    const off = await api('PATCH', `/api/directory/users/${id}`, admin, { accountEnabled: false });
    assert.equal(off.json.accountEnabled, false);
    assert.equal((await api('GET', '/api/account', erin)).status, 401);
    assert.notEqual((await signIn('erin@users.example', 'a-long-enough-password')).status, 200);
    await api('PATCH', `/api/directory/users/${id}`, admin, { accountEnabled: true });
    assert.equal((await api('GET', '/api/account', erin)).status, 200);

    // A console session of Erin's, to see the reset end it.
    await s.services.db.run(
      'INSERT INTO console_sessions (id_hash, tenant_id, principal_id, csrf_secret, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6)',
      [Buffer.alloc(32, 1), s.info.tenantId, id, Buffer.alloc(32, 2), Date.now(), Date.now() + 3_600_000],
    );
    const reset = await api('POST', `/api/directory/users/${id}/resetPassword`, admin);
    assert.equal(reset.status, 200);
    assert.equal(reset.headers['cache-control'], 'no-store');
    assert.notEqual((await signIn('erin@users.example', 'a-long-enough-password')).status, 200);
    assert.equal((await signIn('erin@users.example', reset.json.password)).status, 200);
    const sessions = await s.services.db.get<{ n: number }>(
      'SELECT COUNT(*) AS n FROM console_sessions WHERE principal_id = $1',
      [id],
    );
    assert.equal(Number(sessions!.n), 0);
    // PATCH with a password sets it (and does not echo it).
    const set = await api('PATCH', `/api/directory/users/${id}`, admin, {
      password: 'another-long-password',
    });
    assert.equal(set.status, 200);
    assert.equal(set.json.password, undefined);
    assert.equal((await signIn('erin@users.example', 'another-long-password')).status, 200);
    assert.equal((await api('PATCH', `/api/directory/users/${id}`, admin, {})).status, 400);
  });

  test('a user without a role reads nothing and changes nothing; nobody disables or deletes themselves', async () => {
    const created = await api('POST', '/api/directory/users', admin, {
      userPrincipalName: 'frank@users.example',
      displayName: 'Frank',
    });
    const frank = {
      authorization: `Bearer ${(await signIn('frank@users.example', created.json.password)).json.access_token}`,
    };
    const list = await api('GET', '/api/directory/users', frank);
    assert.equal(list.status, 403);
    assert.match(list.json.error.message, /Microsoft\.Directory\/users\/read/);
    assert.equal(
      (
        await api('POST', '/api/directory/users', frank, {
          userPrincipalName: 'x@users.example',
          displayName: 'X',
        })
      ).status,
      403,
    );
    assert.equal((await api('DELETE', `/api/directory/users/${created.json.user.id}`, frank)).status, 403);

    const me = (await api('GET', '/api/account', admin)).json.objectId as string;
    const selfOff = await api('PATCH', `/api/directory/users/${me}`, admin, { accountEnabled: false });
    assert.equal(selfOff.status, 400);
    assert.match(selfOff.json.error.message, /own account/);
    assert.equal((await api('DELETE', `/api/directory/users/${me}`, admin)).status, 400);
    assert.equal((await api('GET', '/api/account', admin)).status, 200, 'still signed in');

    assert.equal((await api('DELETE', `/api/directory/users/${created.json.user.id}`, admin)).status, 204);
    assert.equal((await api('GET', '/api/account', frank)).status, 401, 'a deleted user’s token is refused');
    assert.equal((await api('GET', `/api/directory/users/${created.json.user.id}`, admin)).status, 404);
  });

  test('a Contributor at the root lists users but sets no password and no service principal credential', async () => {
    const sp = await servicePrincipal(s, 'users-contributor');
    await assignRole(s, sp.id, 'Contributor', '/');
    const me = (await api('GET', '/api/account', admin)).json.objectId as string;
    const contributor = { authorization: `Bearer ${await sp.token(s.info.managementResource)}` };
    assert.equal((await api('GET', '/api/directory/users', contributor)).status, 200);
    const reset = await api('POST', `/api/directory/users/${me}/resetPassword`, contributor);
    assert.equal(reset.status, 403);
    assert.match(reset.json.error.message, /Microsoft\.Directory\/users\/write/);
    const owners = await api('POST', `/api/directory/servicePrincipals/${sp.id}/credentials`, contributor, {
      type: 'Password',
    });
    assert.equal(owners.status, 403);
    assert.equal((await api('GET', '/api/account', admin)).status, 200, 'the admin keeps their password');
  });

  test('every change is audited, never with a password', async () => {
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, limit: 500 });
    const ops = new Set(events.map((e) => e.operation));
    for (const op of ['UserCreate', 'UserDisable', 'UserEnable', 'UserPasswordReset', 'UserDelete'])
      assert.ok(ops.has(op), op);
    const text = JSON.stringify(events);
    for (const p of ['a-long-enough-password', 'another-long-password'])
      assert.ok(!text.includes(p), '!text.includes(p)');
  });
});
