import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DeviceCodeCredential } from '@azure/identity';
import { decodeJwt } from 'jose';
import { CLI_CLIENT_ID, CONSOLE_CLIENT_ID } from '../src/authority/clients.js';
import { normalizeUserCode } from '../src/authority/device-codes.js';
import { servicePrincipal } from './helpers/access.js';
import { credentialOptions } from './helpers/authority.js';
import { runCli } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { completeDeviceSignIn, hiddenInputs, openSignIn, postSignIn } from './helpers/signin.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** Device sign-in (RFC 8628): the endpoint, the verification page, polling, and the SDK's credential. */
describe('device code sign-in', () => {
  let s: TestServer;
  before(async () => {
    // Address budget 5 × 4 = 20 failures a minute, no slow-down: the throttle test stays fast.
    s = await startTestServer({ limits: { authFailureLimit: 4, authFailureSlowAfter: 1000 } });
  });
  after(() => s?.stop());

  const start = (form: Record<string, string> = {}) =>
    s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/devicecode`, {
      form: {
        client_id: CLI_CLIENT_ID,
        scope: `${s.info.managementResource}/.default openid offline_access`,
        ...form,
      },
    });
  const poll = (deviceCode: string, clientId = CLI_CLIENT_ID) =>
    s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: { grant_type: GRANT, client_id: clientId, device_code: deviceCode, client_info: '1' },
    });
  const count = async () =>
    Number((await s.services.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM device_codes'))!.n);

  test('discovery advertises the device authorization endpoint and grant', async () => {
    const d = (await s.request('GET', `/${s.info.tenantId}/v2.0/.well-known/openid-configuration`)).json;
    assert.equal(
      d.device_authorization_endpoint,
      `${s.info.authority}/${s.info.tenantId}/oauth2/v2.0/devicecode`,
    );
    assert.ok(d.grant_types_supported.includes(GRANT), 'd.grant_types_supported.includes(GRANT)');
    // Nothing is advertised that is not served.
    for (const k of ['userinfo_endpoint', 'end_session_endpoint']) assert.equal(d[k], undefined, k);
  });

  test('start, pending, slow_down, sign in on the page, tokens once', async () => {
    const r = await start();
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['cache-control'], 'no-store');
    const { device_code, user_code, verification_uri, expires_in, interval, message } = r.json;
    assert.match(user_code, /^[B-Z]{4}-[B-Z]{4}$/);
    assert.ok(normalizeUserCode(user_code), 'normalizeUserCode(user_code)');
    assert.equal(verification_uri, `${s.info.authority}/devicelogin`);
    assert.equal(expires_in, 900);
    assert.equal(interval, 5);
    assert.ok(
      message.includes(user_code) && message.includes(verification_uri),
      'message.includes(user_code) && message.includes(verification_uri)',
    );
    // Both codes are stored only as HMACs.
    const row = await s.services.db.get<Record<string, unknown>>('SELECT * FROM device_codes');
    assert.ok(
      !JSON.stringify(row).includes(device_code.slice(4, 20)),
      '!JSON.stringify(row).includes(device_code.slice(4, 20))',
    );
    assert.ok(
      !JSON.stringify(row).includes(user_code.replace('-', '')),
      "!JSON.stringify(row).includes(user_code.replace('-', ''))",
    );

    const first = await poll(device_code);
    assert.equal(first.status, 400);
    assert.equal(first.json.error, 'authorization_pending');
    assert.equal((await poll(device_code)).json.error, 'slow_down', 'polled again at once');

    // The page names the application; the code may be typed in lower case, without the dash.
    const page = await openSignIn(s, verification_uri);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
    const step1 = await postSignIn(
      s,
      verification_uri,
      { ...page.hidden, user_code: user_code.replace('-', '').toLowerCase() },
      page.cookie,
    );
    assert.equal(step1.status, 200, step1.text);
    assert.match(step1.text, /to <strong>Azure CLI<\/strong>/);
    const wrong = await postSignIn(
      s,
      verification_uri,
      { ...hiddenInputs(step1.text), username: s.admin.userName, password: 'wrong-password' },
      page.cookie,
    );
    assert.equal(wrong.status, 400);
    assert.match(wrong.text, /Invalid user name or password/);
    const ok = await postSignIn(
      s,
      verification_uri,
      { ...hiddenInputs(step1.text), username: s.admin.userName, password: s.admin.password },
      page.cookie,
    );
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.text, /You have signed in to Azure CLI/);

    await s.services.db.run('UPDATE device_codes SET last_poll_at = 0');
    const t = await poll(device_code);
    assert.equal(t.status, 200, t.text);
    const at = decodeJwt(t.json.access_token);
    assert.equal(at.aud, s.info.managementResource);
    assert.equal(at.upn ?? at.unique_name ?? decodeJwt(t.json.id_token).preferred_username, s.admin.userName);
    assert.equal(typeof decodeJwt(t.json.id_token).auth_time, 'number');
    assert.ok(t.json.refresh_token, 't.json.refresh_token');
    assert.ok(t.json.client_info, 't.json.client_info');
    const subs = await s.request('GET', '/subscriptions?api-version=2022-12-01', {
      headers: { authorization: `Bearer ${t.json.access_token}` },
    });
    assert.equal(subs.status, 200);
    // Once only; the page no longer knows the code.
    assert.equal((await poll(device_code)).json.error, 'invalid_grant');
    const again = await openSignIn(s, verification_uri);
    const reuse = await postSignIn(s, verification_uri, { ...again.hidden, user_code }, again.cookie);
    assert.equal(reuse.status, 400);
    assert.match(reuse.text, /not valid or has expired/);
  });

  test('the user cancels: access_denied; an expired request: expired_token', async () => {
    const a = (await start()).json;
    const cancelled = await completeDeviceSignIn(s, a.verification_uri, a.user_code, s.admin, { deny: true });
    assert.match(cancelled.text, /Sign-in cancelled/);
    assert.equal((await poll(a.device_code)).json.error, 'access_denied');

    const b = (await start()).json;
    await s.services.db.run('UPDATE device_codes SET expires_at = $1 WHERE status = $2', [
      Date.now() - 1,
      'pending',
    ]);
    assert.equal((await poll(b.device_code)).json.error, 'expired_token');
    const late = await openSignIn(s, b.verification_uri);
    const r = await postSignIn(
      s,
      b.verification_uri,
      { ...late.hidden, user_code: b.user_code },
      late.cookie,
    );
    assert.match(r.text, /not valid or has expired/);
  });

  test('only public clients start it; a bad scope or form is refused and stores nothing', async () => {
    const before = await count();
    const confidential = await servicePrincipal(s, 'device-confidential');
    for (const [form, error] of [
      [{ client_id: confidential.appId }, 'unauthorized_client'],
      [{ client_id: CONSOLE_CLIENT_ID }, 'unauthorized_client'],
      [{ client_id: '11111111-2222-3333-4444-555555555555' }, 'unauthorized_client'],
      [{ scope: 'https://unknown.example/.default' }, 'invalid_scope'],
      [{ scope: '' }, 'invalid_request'],
      [{ client_id: '' }, 'invalid_request'],
    ] as const) {
      const r = await start(form);
      assert.equal(r.status, 400, JSON.stringify(form));
      assert.equal(r.json.error, error, JSON.stringify(form));
    }
    const json = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/devicecode`, {
      json: { client_id: CLI_CLIENT_ID },
    });
    assert.equal(json.status, 415);
    assert.equal(await count(), before);
    // A device code is bound to its client and tenant.
    const a = (await start()).json;
    assert.equal((await poll(a.device_code, CONSOLE_CLIENT_ID)).json.error, 'invalid_grant');
    assert.equal((await poll('lkd~not-a-real-code')).json.error, 'invalid_grant');
  });

  test('the page: CSRF token and same origin required; guessing codes is throttled', async () => {
    const a = (await start()).json;
    const page = await openSignIn(s, a.verification_uri);
    const step1 = await postSignIn(
      s,
      a.verification_uri,
      { ...page.hidden, user_code: a.user_code },
      page.cookie,
    );
    const creds = { username: s.admin.userName, password: s.admin.password };
    // Step 2 without the cookie, or with the token of another request: back to the code form.
    for (const [form, cookie] of [
      [{ ...hiddenInputs(step1.text), ...creds }, undefined],
      [{ ...hiddenInputs(step1.text), csrf: page.hidden.csrf!, ...creds }, page.cookie],
    ] as const) {
      const r = await postSignIn(s, a.verification_uri, form, cookie);
      assert.equal(r.status, 400);
      assert.match(r.text, /form expired/);
    }
    const foreign = await postSignIn(
      s,
      a.verification_uri,
      { ...hiddenInputs(step1.text), ...creds },
      page.cookie,
      {
        origin: 'https://evil.example',
      },
    );
    assert.equal(foreign.status, 403);
    assert.equal((await poll(a.device_code)).json.error, 'authorization_pending', 'nothing approved');

    // Wrong codes count against the address: 20 a minute here, then 429 even for a right code.
    let last = 0;
    for (let i = 0; i < 25 && last !== 429; i++) {
      const r = await postSignIn(
        s,
        a.verification_uri,
        { ...page.hidden, user_code: 'BBBB-BBBB' },
        page.cookie,
      );
      last = r.status;
    }
    assert.equal(last, 429);
    // Step 2 with a guessed code is counted (and refused) the same way.
    const guess = await postSignIn(
      s,
      a.verification_uri,
      { step: 'signin', user_code: 'CCCC-CCCC', csrf: 'x', ...creds },
      page.cookie,
    );
    assert.equal(guess.status, 429);
    const blocked = await postSignIn(
      s,
      a.verification_uri,
      { ...page.hidden, user_code: a.user_code },
      page.cookie,
    );
    assert.equal(blocked.status, 429);
    assert.ok(blocked.headers['retry-after'], "blocked.headers['retry-after']");
    s.services.throttle.succeed('ip:127.0.0.1');
    await new Promise((r) => setTimeout(r, 50));
    // Guesses at step 2 alone are counted too.
    let at = 0;
    for (let i = 0; i < 25 && at !== 429; i++) {
      at = (
        await postSignIn(
          s,
          a.verification_uri,
          { step: 'signin', user_code: 'DDDD-DDDD', ...creds },
          page.cookie,
        )
      ).status;
    }
    assert.equal(at, 429);
    s.services.throttle.succeed('ip:127.0.0.1');
    await new Promise((r) => setTimeout(r, 50));
  });
});

describe('device code sign-in from the latchkey CLI', () => {
  let s: TestServer;
  let dir: string;
  before(async () => {
    s = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-device-'));
  });
  after(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('latchkey login --use-device-code prints the code, waits for the sign-in, then works', async () => {
    const server = ['--server', s.info.authority, '--ca-file', s.info.caCertPath];
    let signedIn: Promise<unknown> | undefined;
    const r = await runCli([...server, 'login', '--use-device-code', '--tenant', s.info.tenantId], {
      configDir: dir,
      timeoutMs: 60_000,
      onStderr: (soFar) => {
        const m = /open the page (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})/.exec(soFar);
        if (m && !signedIn) signedIn = completeDeviceSignIn(s, m[1]!, m[2]!, s.admin);
      },
    });
    await signedIn;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json[0].user, { name: s.admin.userName, type: 'user' });
    assert.equal(r.json[0].tenantId, s.info.tenantId);
    // The login state works for the next command, with the refresh token the sign-in gave.
    const shown = await runCli(['account', 'show'], { configDir: dir });
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.json.user.name, s.admin.userName);
    const bad = await runCli(
      [...server, 'login', '--use-device-code', '-u', 'x', '--tenant', s.info.tenantId],
      {
        configDir: dir,
      },
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no -u, -p or --service-principal/);
    // Without --tenant the server's default tenant is used, and its real id is kept.
    const other = mkdtempSync(join(tmpdir(), 'latchkey-cli-tenantless-'));
    try {
      const plain = await runCli([...server, 'login', '-u', s.admin.userName, '-p', s.admin.password], {
        configDir: other,
      });
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.json[0].tenantId, s.info.tenantId);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('device code sign-in with the official SDK (DeviceCodeCredential)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s?.stop());

  test('the prompt callback gets the code; a person signs in; getToken resolves', async () => {
    let prompted = '';
    let signedIn: Promise<unknown> = Promise.resolve();
    const credential = new DeviceCodeCredential({
      tenantId: s.info.tenantId,
      clientId: CLI_CLIENT_ID,
      ...credentialOptions(s),
      userPromptCallback: (info) => {
        prompted = info.message;
        signedIn = completeDeviceSignIn(s, info.verificationUri, info.userCode, s.admin);
      },
    });
    const token = await credential.getToken(`${s.info.vaultResource}/.default`);
    await signedIn;
    assert.match(prompted, /devicelogin/);
    const claims = decodeJwt(token.token);
    assert.equal(claims.aud, s.info.vaultResource);
    assert.equal(claims.tid, s.info.tenantId);
  });
});
