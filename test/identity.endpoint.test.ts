import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { PARSED_TTL_MS, startIdentityEndpoint } from '../src/identity-endpoint/server.js';
import { createSessionRegistry } from '../src/identity-endpoint/sessions.js';
import { type Clock, systemClock } from '../src/lib/clock.js';
import { localHostEndpointOptions } from '../src/server/identity-extension.js';
import {
  type AppJson,
  appId,
  appServiceToken,
  arm,
  claimsOf,
  controlSecret,
  ep,
  imdsToken,
  patchApp,
  plantSettings,
  putApp,
  putIdentity,
  putSettings,
  session,
  trySession,
} from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, vaultPrincipal } from './helpers/vault.js';

/** A raw request with any headers (fetch forbids setting Host). */
function raw(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Wall time as usual (token lifetimes, certificate validity), monotonic time frozen until a test
 * advances it: the endpoint's rate-limit bucket refills only when told (on a loaded machine a flood
 * took seconds of real time and refilled it), and a test advances it instead of sleeping.
 */
function steppedMonotonicClock(): Clock & { advance(ms: number): void } {
  let offset = 0;
  let m = 0;
  return {
    now: () => systemClock.now() + offset,
    monotonic: () => m,
    advance(ms: number) {
      offset += ms;
      m += ms;
    },
  };
}

describe('identity endpoint (latchkey up)', () => {
  const endpointClock = steppedMonotonicClock();
  // Each test starts with a full rate-limit bucket (a second of the endpoint's time).
  beforeEach(() => endpointClock.advance(1000));
  let s: TestServer;
  let vaultId: string;
  const readSecret = (token: string) =>
    s.request('GET', `${s.vaultUrl('epvault')}/secrets/greeting?api-version=7.5`, {
      headers: { authorization: `Bearer ${token}` },
    });
  const systemApp = async (name: string): Promise<AppJson> => {
    const app = await putApp(s, name, { identity: { type: 'SystemAssigned' } });
    await grant(s, app.identity.principalId!, 'Key Vault Secrets User', vaultId);
    return app;
  };

  before(async () => {
    s = await startTestServer({ identityEndpoint: { clock: endpointClock } });
    vaultId = (await putVault(s, 'epvault')).id;
    const officer = await vaultPrincipal(s, 'ep-officer');
    await grant(s, officer.id, 'Key Vault Secrets Officer', vaultId);
    await secretClient(s, 'epvault', officer).setSecret('greeting', 'hello from the vault');
  });
  after(async () => {
    await s?.stop();
  });

  test('App Service protocol: an Azure-shaped token for the system-assigned identity, cached', async () => {
    const app = await systemApp('ep-sys');
    const sess = await session(s, 'ep-sys');
    const r = await appServiceToken(s, sess);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(Object.keys(r.json).sort(), [
      'access_token',
      'client_id',
      'expires_in',
      'expires_on',
      'resource',
      'token_type',
    ]);
    assert.match(r.json.expires_on, /^\d{10}$/);
    assert.ok(
      Number(r.json.expires_on) > Date.now() / 1000 + 3000,
      'Number(r.json.expires_on) > Date.now() / 1000 + 3000',
    );
    assert.ok(Number(r.json.expires_in) > 3000, 'Number(r.json.expires_in) > 3000');
    assert.equal(r.json.resource, s.info.vaultResource);
    assert.equal(r.json.token_type, 'Bearer');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const sp = await s.services.principals.get(s.info.tenantId, app.identity.principalId!);
    assert.equal(sp?.kind, 'managedIdentity');
    assert.equal(r.json.client_id, sp?.appId);
    const claims = claimsOf(r.json.access_token);
    assert.equal(claims.oid, app.identity.principalId);
    assert.equal(claims.aud, s.info.vaultResource);
    assert.equal(claims.xms_mirid, app.id);
    assert.equal(claims.azpacr, '2', 'the endpoint authenticated with a certificate');

    const again = await appServiceToken(s, sess);
    assert.equal(again.json.access_token, r.json.access_token, 'served from the cache');
    const secret = await readSecret(r.json.access_token);
    assert.equal(secret.status, 200, secret.text);
    assert.equal(secret.json.value, 'hello from the vault');
  });

  test('IMDS with and without the trailing slash; the probe; Cloud Shell POST', async () => {
    await systemApp('ep-imds');
    const sess = await session(s, 'ep-imds');
    for (const slash of ['/', '']) {
      const r = await imdsToken(s, sess, s.info.vaultResource, {}, slash);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal((await readSecret(r.json.access_token)).status, 200);
    }
    // DefaultAzureCredential's probe: no query, no Metadata header → any HTTP answer (a 400 here).
    for (const url of [
      `${sess.imdsAuthorityHost}/metadata/identity/oauth2/token`,
      `${s.info.identityEndpoint}/metadata/identity/oauth2/token`,
    ]) {
      const probe = await ep(s, url);
      assert.equal(probe.status, 400);
      assert.equal(probe.json.error, 'invalid_request');
      assert.match(probe.json.error_description, /metadata header/i);
    }
    const noSession = await ep(
      s,
      '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.localhost',
      { headers: { Metadata: 'true' } },
    );
    assert.equal(noSession.status, 400);
    assert.match(noSession.json.error_description, /latchkey run/);

    const form = { method: 'POST', body: `resource=${encodeURIComponent(s.info.vaultResource)}` };
    const shell = await ep(s, sess.msiEndpoint, {
      ...form,
      headers: { Metadata: 'true', 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(shell.status, 200, JSON.stringify(shell.json));
    assert.equal(shell.json.resource, s.info.vaultResource);
    const noMeta = await ep(s, sess.msiEndpoint, {
      ...form,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(noMeta.status, 400);
  });

  test('user-assigned identities by client id, object id and resource id; others refused', async () => {
    const u1 = await putIdentity(s, 'ep-uai-1');
    const u2 = await putIdentity(s, 'ep-uai-2');
    await putApp(s, 'ep-user', {
      identity: { type: 'UserAssigned', userAssignedIdentities: { [u1.id]: {} } },
    });
    await grant(s, u1.properties.principalId, 'Key Vault Secrets User', vaultId);
    const sess = await session(s, 'ep-user');

    const none = await appServiceToken(s, sess);
    assert.equal(none.status, 400);
    assert.match(none.json.error_description, /no system-assigned identity/);

    const selectors: [string, Record<string, string>][] = [
      ['client_id', { client_id: u1.properties.clientId }],
      ['object_id', { object_id: u1.properties.principalId }],
      ['mi_res_id', { mi_res_id: u1.id }],
    ];
    for (const [what, sel] of selectors) {
      const r = await appServiceToken(s, sess, s.info.vaultResource, sel);
      assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.client_id, u1.properties.clientId);
      assert.equal(claimsOf(r.json.access_token).oid, u1.properties.principalId);
      assert.equal(claimsOf(r.json.access_token).xms_mirid, u1.id);
    }
    const imds = await imdsToken(s, sess, s.info.vaultResource, { msi_res_id: u1.id });
    assert.equal(imds.status, 200);
    assert.equal((await readSecret(imds.json.access_token)).status, 200);

    for (const sel of <Record<string, string>[]>[
      { client_id: u2.properties.clientId },
      { object_id: u2.properties.principalId },
      { mi_res_id: u2.id },
    ]) {
      const r = await appServiceToken(s, sess, s.info.vaultResource, sel);
      assert.equal(r.status, 400, JSON.stringify(sel));
      assert.deepEqual(r.json, { error: 'invalid_request', error_description: 'Identity not found' });
    }
    const two = await appServiceToken(s, sess, s.info.vaultResource, {
      client_id: u1.properties.clientId,
      object_id: u1.properties.principalId,
    });
    assert.equal(two.status, 400);
  });

  test('a session resolves Key Vault references; a bad one is refused, naming the setting only', async () => {
    await systemApp('ep-refs');
    await putSettings(s, 'ep-refs', {
      PLAIN: 'plain value',
      GREETING: `@Microsoft.KeyVault(SecretUri=${s.vaultUrl('epvault')}/secrets/greeting)`,
    });
    const ok = await trySession(s, 'ep-refs');
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    assert.deepEqual(ok.json.env, { PLAIN: 'plain value', GREETING: 'hello from the vault' });

    const cases: [string, string, RegExp][] = [
      [
        'MALFORMED',
        '@Microsoft.KeyVault(VaultName=epvault)',
        /^app setting 'MALFORMED': malformed Key Vault reference/,
      ],
      [
        'ELSEWHERE',
        '@Microsoft.KeyVault(SecretUri=https://epvault.vault.example.com/secrets/greeting)',
        /^app setting 'ELSEWHERE': .*not a vault of this installation/,
      ],
      [
        'MISSING',
        '@Microsoft.KeyVault(VaultName=epvault;SecretName=nope)',
        /^app setting 'MISSING': .*secret 'nope' in vault 'epvault' could not be resolved: \(SecretNotFound\)/,
      ],
      [
        'NOGRANT',
        '@Microsoft.KeyVault(VaultName=othervault;SecretName=greeting)',
        /^app setting 'NOGRANT': .*could not be resolved: \((VaultNotFound|Forbidden)\)/,
      ],
    ];
    for (const [name, value, expected] of cases) {
      // A malformed or foreign reference is refused at write (issue 14.5): plant it in the row.
      await plantSettings(s, 'ep-refs', { PLAIN: 'plain value', [name]: value });
      const r = await trySession(s, 'ep-refs');
      assert.equal(r.status, 400, name);
      assert.equal(r.json.error, 'setting_unresolvable');
      assert.match(r.json.error_description, expected);
      assert.doesNotMatch(JSON.stringify(r.json), /plain value|hello from the vault/);
    }
    await putApp(s, 'ep-noid', {});
    await putSettings(s, 'ep-noid', { REF: '@Microsoft.KeyVault(VaultName=epvault;SecretName=greeting)' });
    const noid = await trySession(s, 'ep-noid');
    assert.equal(noid.status, 400);
    assert.match(
      noid.json.error_description,
      /^app setting 'REF': a Key Vault reference needs an app identity/,
    );
    const unknown = await trySession(s, 'no-such-app');
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error_description, /No app named 'no-such-app' is placed on this host/);
  });

  test('issue 14.5: a reference outside this installation is refused at write (400) and at run, sending nothing', async () => {
    await systemApp('ep-foreign');
    // A listener where a leaked request would land: loopback, on a port that is not the vault's.
    const hits: string[] = [];
    const trap = net.createServer((sock) => {
      hits.push('connection');
      sock.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const port = (trap.address() as net.AddressInfo).port;
    try {
      const vh = new URL(s.vaultUrl('epvault'));
      const bad = [
        `https://evil.example:${port}/secrets/greeting`,
        `https://${vh.hostname}.evil.test:${vh.port}/secrets/greeting`,
        `http://${vh.host}/secrets/greeting`,
        `https://${vh.host}@evil.localhost:${port}/secrets/greeting`,
        `https://${vh.hostname}:${port}/secrets/greeting`,
        `https://$\`evil.localhost:${port}/secrets/greeting`,
        `https://${vh.host}/secrets/greeting?x=1`,
      ];
      for (const uri of bad) {
        const value = `@Microsoft.KeyVault(SecretUri=${uri})`;
        const w = await arm(s, 'PUT', `${appId(s, 'ep-foreign')}/config/appsettings`, {
          properties: { LEAK: value },
        });
        assert.equal(w.status, 400, `${uri}: ${w.text}`);
        assert.equal(w.json.error.code, 'InvalidKeyVaultReference', uri);
        assert.match(
          w.json.error.message,
          /App setting 'LEAK'.*SecretUri=https:\/\/\{vault\}\.vault\.localhost:\d+\/secrets/,
        );
        assert.ok(!w.text.includes(uri), 'the value is not echoed');
        await plantSettings(s, 'ep-foreign', { LEAK: value });
        const r = await trySession(s, 'ep-foreign');
        assert.equal(r.status, 400, `${uri}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.error, 'setting_unresolvable');
        assert.match(r.json.error_description, /^app setting 'LEAK': malformed Key Vault reference/);
      }
      assert.deepEqual(hits, [], 'no request left for the trap');
      // The accepted shapes still write and resolve.
      await putSettings(s, 'ep-foreign', {
        A: `@Microsoft.KeyVault(SecretUri=${s.vaultUrl('epvault')}/secrets/greeting/)`,
        B: '@Microsoft.KeyVault(VaultName=epvault;SecretName=greeting)',
      });
    } finally {
      await new Promise((r) => trap.close(r));
    }
  });

  test('misuse: no header, wrong header, X-Forwarded-For, foreign Host, bad requests', async () => {
    await systemApp('ep-misuse');
    const sess = await session(s, 'ep-misuse');
    const q = `api-version=2019-08-01&resource=${encodeURIComponent(s.info.vaultResource)}`;
    const noHeader = await ep(s, `/msi/token?${q}`);
    assert.equal(noHeader.status, 400);
    assert.match(noHeader.json.error_description, /X-IDENTITY-HEADER/);
    const wrong = await ep(s, `/msi/token?${q}`, {
      headers: { 'X-IDENTITY-HEADER': `${sess.identityHeader}x` },
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.access_token, undefined);

    const xff = await ep(s, `/msi/token?${q}`, {
      headers: { 'X-IDENTITY-HEADER': sess.identityHeader, 'X-Forwarded-For': '203.0.113.7' },
    });
    assert.equal(xff.status, 403);
    assert.equal(xff.json.access_token, undefined);
    const xffImds = await ep(
      s,
      `${sess.imdsAuthorityHost}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x`,
      {
        headers: { Metadata: 'true', 'X-Forwarded-For': '10.0.0.1' },
      },
    );
    assert.equal(xffImds.status, 403);

    const rebinding = await raw(`${s.info.identityEndpoint}/msi/token?${q}`, {
      host: 'attacker.example:80',
      'x-identity-header': sess.identityHeader,
    });
    assert.equal(rebinding.status, 403);
    assert.doesNotMatch(rebinding.body, /access_token/);

    const badVersion = await ep(s, `/msi/token?api-version=2017-09-01&resource=x`, {
      headers: { 'X-IDENTITY-HEADER': sess.identityHeader },
    });
    assert.equal(badVersion.status, 400);
    const noResource = await ep(s, '/msi/token?api-version=2019-08-01', {
      headers: { 'X-IDENTITY-HEADER': sess.identityHeader },
    });
    assert.equal(noResource.status, 400);
    const unknownResource = await appServiceToken(s, sess, 'https://unknown.example');
    assert.equal(unknownResource.status, 400);
    assert.equal(unknownResource.json.error, 'invalid_scope');
    assert.equal((await ep(s, '/nope')).status, 404);
    const control = await ep(s, '/control/sessions', { method: 'POST', body: '{"app":"ep-misuse"}' });
    assert.equal(control.status, 401, 'the control channel needs its secret');
  });

  test('a request once answered is parsed again with its own headers and method: the same URL without the header, with another session’s, or another method is refused', async () => {
    await systemApp('ep-memo');
    const sess = await session(s, 'ep-memo');
    const other = await session(s, 'ep-memo');
    const url = `/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(s.info.vaultResource)}`;
    const as = (header: string | undefined, method = 'GET') =>
      ep(s, url, { method, headers: header === undefined ? {} : { 'X-IDENTITY-HEADER': header } });
    const ok = await as(sess.identityHeader);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal((await as(sess.identityHeader)).status, 200, 'asked again');
    const none = await as(undefined);
    assert.equal(none.status, 400);
    assert.match(none.json.error_description, /X-IDENTITY-HEADER/);
    assert.equal((await as(`${sess.identityHeader}x`)).status, 401, 'a wrong header on the same URL');
    assert.equal((await as(other.identityHeader)).status, 200, 'another session of the app');
    assert.equal((await as(sess.identityHeader, 'PUT')).status, 405);
    assert.equal((await as(sess.identityHeader, 'DELETE')).status, 405, 'another method, again');
    // An ended session's header, once answered, is refused from then on.
    const ended = await ep(s, `/control/sessions/${other.sessionId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${controlSecret(s)}` },
    });
    assert.equal(ended.status, 204);
    assert.equal((await as(other.identityHeader)).status, 401, 'the ended session');
    assert.equal((await as(sess.identityHeader)).status, 200);

    // IMDS: the same URL with and without `Metadata: true`.
    const imds = `${sess.imdsAuthorityHost}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(s.info.vaultResource)}`;
    assert.equal((await ep(s, imds, { headers: { Metadata: 'true' } })).status, 200);
    assert.equal((await ep(s, imds, { headers: { Metadata: 'false' } })).status, 400);
    assert.equal((await ep(s, imds)).status, 400, 'no Metadata header');
    assert.equal((await ep(s, imds, { headers: { Metadata: 'true' } })).status, 200);
  });
  test('parsed requests are kept only for a live session, at most 256 and at most PARSED_TTL_MS', async () => {
    // A second endpoint for `up`'s local host, in-process, to read its stats (the one `up` runs is
    // not reachable from a test); its own state dir and certificate, the same apps.
    await systemApp('ep-kept');
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-ep-'));
    const clock = steppedMonotonicClock();
    const endpoint = await startIdentityEndpoint({
      ...(await localHostEndpointOptions(s.services, s.info)),
      stateDir: dir,
      port: 0,
      clock,
      rateLimit: { perSecond: 100_000, concurrent: 100_000 },
    });
    try {
      const sess = await endpoint.createSession('ep-kept');
      const get = (query: string, header?: string) =>
        ep(
          s,
          `${endpoint.url}/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(s.info.vaultResource)}${query}`,
          {
            headers: header === undefined ? {} : { 'X-IDENTITY-HEADER': header },
          },
        );
      const kept = () => endpoint.stats().parsedRequests;
      assert.equal((await get('', sess.identityHeader)).status, 200);
      assert.equal(kept(), 1);
      assert.equal((await get('', sess.identityHeader)).status, 200);
      assert.equal(kept(), 1, 'a repeat is found, not kept again');
      // Guesses (no session behind them) and refusals are not kept.
      for (let i = 0; i < 5; i++) assert.equal((await get('', `guess-${i}`)).status, 401);
      assert.equal((await get('')).status, 400);
      assert.equal(kept(), 1, 'no guess kept');
      // At most 256: the 257th distinct request starts over.
      for (let i = 1; i < 256; i++) assert.equal((await get(`&x=${i}`, sess.identityHeader)).status, 200);
      assert.equal(kept(), 256);
      assert.equal((await get('&x=256', sess.identityHeader)).status, 200);
      assert.equal(kept(), 1, 'cleared when full');
      // Dropped after PARSED_TTL_MS of the endpoint's monotonic clock.
      clock.advance(PARSED_TTL_MS - 1);
      assert.equal((await get('', sess.identityHeader)).status, 200);
      assert.equal(kept(), 2);
      clock.advance(1);
      assert.equal((await get('&x=1', sess.identityHeader)).status, 200);
      assert.equal(kept(), 1, 'all dropped once PARSED_TTL_MS has passed');
      // An ended session's parse, kept a moment ago, answers nothing.
      endpoint.deleteSession(sess.sessionId);
      assert.equal((await get('&x=1', sess.identityHeader)).status, 401);
    } finally {
      await endpoint.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('a session of a version 1 file is bound to its app at the first look after the start, not at its first use', async () => {
    await systemApp('ep-v1');
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-ep-'));
    const opts = async () => ({
      ...(await localHostEndpointOptions(s.services, s.info)),
      stateDir: dir,
      port: 0,
      rateLimit: { perSecond: 100_000, concurrent: 100_000 },
    });
    const first = await startIdentityEndpoint(await opts());
    const sess = await first.createSession('ep-v1');
    await first.close();
    // As an endpoint before session 18 left it: version 1, no app row ids.
    const file = join(dir, 'sessions.json');
    const f = JSON.parse(readFileSync(file, 'utf8')) as {
      version: number;
      sessions: Record<string, unknown>[];
    };
    f.version = 1;
    for (const x of f.sessions) delete x.appRowId;
    writeFileSync(file, JSON.stringify(f), { mode: 0o600 });
    const second = await startIdentityEndpoint(await opts());
    try {
      const status = await ep(s, `${second.url}/control/status`, {
        headers: { authorization: `Bearer ${readFileSync(join(dir, 'control.secret'), 'utf8').trim()}` },
      });
      assert.equal(status.status, 200, 'the first look at the host apps');
      // The app is deleted and another made under its name before the workload asks again.
      assert.equal((await arm(s, 'DELETE', appId(s, 'ep-v1'))).status, 200);
      await systemApp('ep-v1');
      second.invalidate();
      const r = await ep(
        s,
        `${second.url}/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(s.info.vaultResource)}`,
        { headers: { 'X-IDENTITY-HEADER': sess.identityHeader } },
      );
      assert.notEqual(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.access_token, undefined);
    } finally {
      await second.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('a bind to a non-loopback address is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-ep-'));
    try {
      for (const bindHost of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
        await assert.rejects(
          startIdentityEndpoint({
            stateDir: dir,
            bindHost,
            port: 0,
            host: {
              hostId: '00000000-0000-0000-0000-000000000000',
              hostName: 'x',
              tenantId: s.info.tenantId,
              principalId: '00000000-0000-0000-0000-000000000000',
              clientId: '00000000-0000-0000-0000-000000000000',
              server: s.info.authority,
            },
          }),
          /refusing to bind the identity endpoint to .*loopback/,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a flood past 20 requests/s or 5 at a time gets 429 with Retry-After', async () => {
    await systemApp('ep-flood');
    const sess = await session(s, 'ep-flood');
    assert.equal((await appServiceToken(s, sess)).status, 200); // warm the cache
    endpointClock.advance(1100); // a full bucket
    const results = await Promise.all(Array.from({ length: 60 }, () => appServiceToken(s, sess)));
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    // A full bucket (20) at most (the endpoint's time stands still during the flood); never all of them.
    assert.ok(ok >= 1 && ok <= 20, `ok=${ok}`);
    assert.equal(ok + limited.length, 60);
    assert.ok(limited.length >= 40, `429s=${limited.length}`);
    for (const r of limited) {
      assert.ok(Number(r.headers.get('retry-after')) >= 1, "Number(r.headers.get('retry-after')) >= 1");
      assert.equal(r.json.access_token, undefined);
    }
    endpointClock.advance(1100);
    assert.equal((await appServiceToken(s, sess)).status, 200, 'served again after the wait');
  });

  test('deleting the app: the vault refuses its token at once, the endpoint refuses the session', async () => {
    const app = await systemApp('ep-del');
    const sess = await session(s, 'ep-del');
    const t = (await appServiceToken(s, sess)).json.access_token as string;
    assert.equal((await readSecret(t)).status, 200);
    const del = await arm(s, 'DELETE', appId(s, 'ep-del'));
    assert.equal(del.status, 200);
    const after = await readSecret(t);
    assert.equal(after.status, 401, 'the token of a deleted identity is refused at once');
    assert.equal(await s.services.principals.getById(app.identity.principalId!), undefined);
    assert.deepEqual(
      await s.services.access.list(s.info.tenantId, { principalId: app.identity.principalId! }),
      [],
    );
    const r = await appServiceToken(s, sess);
    assert.equal(r.status, 400);
    assert.match(r.json.error_description, /no longer on this host/);
  });

  test('a session serves the app it was started for, not a new app of the same name; it ends with its app', async () => {
    // Another app's user-assigned identity, with read access to the vault.
    const other = await putIdentity(s, 'ep-reuse-other');
    await grant(s, other.properties.principalId, 'Key Vault Secrets User', vaultId);
    await systemApp('ep-reuse');
    const sess = await session(s, 'ep-reuse');
    assert.equal((await appServiceToken(s, sess)).status, 200);
    const status = () =>
      ep(s, `/control/sessions/${sess.sessionId}`, {
        headers: { authorization: `Bearer ${controlSecret(s)}` },
      });
    assert.equal((await status()).status, 200);
    // Deleted, then created again under the same name (and ARM id) with the other identity,
    // before the old session asks again.
    assert.equal((await arm(s, 'DELETE', appId(s, 'ep-reuse'))).status, 200);
    await putApp(s, 'ep-reuse', {
      identity: { type: 'UserAssigned', userAssignedIdentities: { [other.id]: {} } },
    });
    const r = await appServiceToken(s, sess, s.info.vaultResource, { client_id: other.properties.clientId });
    assert.equal(r.status, 400);
    assert.equal(r.json.access_token, undefined);
    assert.match(r.json.error_description, /no longer on this host/);
    // The session ended with its app: `latchkey run` hears it and stops its command.
    const st = await status();
    assert.deepEqual([st.status, st.json.error], [404, 'unknown_session']);
    assert.notEqual((await appServiceToken(s, sess)).status, 200);
    // A session started for the new app is served.
    const fresh = await session(s, 'ep-reuse');
    const t = await appServiceToken(s, fresh, s.info.vaultResource, { client_id: other.properties.clientId });
    assert.equal(t.status, 200);
  });

  test("a host's own certificate cannot be deleted through the directory API (managed, like a reset)", async () => {
    const [host] = await s.services.db.all<{ principal_id: string }>('SELECT principal_id FROM hosts');
    const admin = await s.adminToken();
    const path = `/api/directory/servicePrincipals/${host!.principal_id}/credentials`;
    const auth = { authorization: `Bearer ${admin}` };
    const listed = await s.request('GET', path, { headers: auth });
    assert.equal(listed.status, 200, listed.text);
    const creds = listed.json.value as { keyId: string }[];
    assert.ok(creds.length > 0, 'the host has its certificate');
    const del = await s.request('DELETE', `${path}/${creds[0]!.keyId}`, { headers: auth });
    assert.equal(del.status, 400, del.text);
    assert.match(del.json.error.message, /managed by the platform/);
    const after = await s.request('GET', path, { headers: auth });
    assert.deepEqual(after.json.value, listed.json.value, 'nothing was deleted');
    // The host still gets tokens for its apps.
    await systemApp('ep-host-kept');
    assert.equal((await appServiceToken(s, await session(s, 'ep-host-kept'))).status, 200);
  });

  test('switching the identity off (and detaching a user-assigned one) takes effect at once', async () => {
    const u = await putIdentity(s, 'ep-uai-off');
    const app = await putApp(s, 'ep-off', {
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u.id]: {} } },
    });
    await grant(s, app.identity.principalId!, 'Key Vault Secrets User', vaultId);
    const sess = await session(s, 'ep-off');
    const sys = (await appServiceToken(s, sess)).json.access_token as string;
    assert.equal((await readSecret(sys)).status, 200);
    assert.equal(
      (await appServiceToken(s, sess, s.info.vaultResource, { client_id: u.properties.clientId })).status,
      200,
    );

    const patched = await patchApp(s, 'ep-off', {
      identity: { type: 'UserAssigned', userAssignedIdentities: { [u.id]: {} } },
    });
    assert.equal(patched.identity.principalId, undefined);
    assert.equal((await readSecret(sys)).status, 401);
    assert.equal((await appServiceToken(s, sess)).status, 400);

    // Deleting the user-assigned identity detaches it everywhere.
    assert.equal((await arm(s, 'DELETE', u.id)).status, 200);
    const shown = await arm(s, 'GET', appId(s, 'ep-off'));
    assert.equal(shown.json.identity.type, 'None');
    const r = await appServiceToken(s, sess, s.info.vaultResource, { client_id: u.properties.clientId });
    assert.equal(r.status, 400);
  });
});

describe('identity endpoint: one identity selection for every protocol', () => {
  let s: TestServer;
  before(async () => {
    // Many requests in a burst: lift the endpoint's IMDS-like rate limit (tested above).
    s = await startTestServer({ identityEndpoint: { rateLimit: { perSecond: 10_000 } } });
  });
  after(async () => {
    await s?.stop();
  });

  test('every protocol (IMDS, App Service, Cloud Shell) selects identities alike; Cloud Shell reads the form', async () => {
    const u1 = await putIdentity(s, 'ep-cs-uai-1');
    const u2 = await putIdentity(s, 'ep-cs-uai-2');
    const app = await putApp(s, 'ep-cs', {
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u1.id]: {} } },
    });
    const sess = await session(s, 'ep-cs');
    const cloudShell = (fields: Record<string, string>, query = '') =>
      ep(s, `${sess.msiEndpoint}${query}`, {
        method: 'POST',
        headers: { Metadata: 'true', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ resource: s.info.vaultResource, ...fields }).toString(),
      });
    const protocols: [string, (sel: Record<string, string>) => ReturnType<typeof ep>][] = [
      ['imds', (sel) => imdsToken(s, sess, s.info.vaultResource, sel)],
      ['appService', (sel) => appServiceToken(s, sess, s.info.vaultResource, sel)],
      ['cloudShell', (sel) => cloudShell(sel)],
    ];
    const attached: Record<string, string>[] = [
      { client_id: u1.properties.clientId },
      { clientid: u1.properties.clientId },
      { object_id: u1.properties.principalId },
      { principal_id: u1.properties.principalId },
      { mi_res_id: u1.id },
      { msi_res_id: u1.id },
    ];
    const unknown: Record<string, string>[] = [
      { client_id: u2.properties.clientId },
      { client_id: '00000000-0000-0000-0000-000000000000' },
      { object_id: u2.properties.principalId },
      { msi_res_id: u2.id },
    ];
    for (const [name, ask] of protocols) {
      const sys = await ask({});
      assert.equal(sys.status, 200, `${name}: ${JSON.stringify(sys.json)}`);
      assert.equal(claimsOf(sys.json.access_token).oid, app.identity.principalId, `${name}: system-assigned`);
      for (const sel of attached) {
        const r = await ask(sel);
        assert.equal(r.status, 200, `${name} ${JSON.stringify(sel)}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.client_id, u1.properties.clientId, `${name} ${JSON.stringify(sel)}`);
        const claims = claimsOf(r.json.access_token);
        assert.equal(claims.oid, u1.properties.principalId, `${name} ${JSON.stringify(sel)}`);
        assert.equal(claims.appid, u1.properties.clientId, `${name} ${JSON.stringify(sel)}`);
      }
      for (const sel of unknown) {
        const r = await ask(sel);
        assert.equal(r.status, 400, `${name} ${JSON.stringify(sel)}`);
        assert.deepEqual(r.json, { error: 'invalid_request', error_description: 'Identity not found' });
      }
      const two = await ask({ client_id: u1.properties.clientId, mi_res_id: u1.id });
      assert.equal(two.status, 400, `${name}: two selectors`);
      assert.match(two.json.error_description, /one of client_id, object_id or mi_res_id/);
    }
    // Cloud Shell: a selector in the query counts as well; one in both places is ambiguous.
    const inQuery = await cloudShell({}, `?client_id=${u1.properties.clientId}`);
    assert.equal(inQuery.status, 200, JSON.stringify(inQuery.json));
    assert.equal(claimsOf(inQuery.json.access_token).oid, u1.properties.principalId);
    const both = await cloudShell(
      { client_id: u1.properties.clientId },
      `?object_id=${u1.properties.principalId}`,
    );
    assert.equal(both.status, 400);
  });
});

describe('identity endpoint sessions', () => {
  test('sweep drops the sessions of processes that have exited, and only those', async () => {
    const registry = createSessionRegistry();
    const child = spawn(process.execPath, ['-e', '']);
    await once(child, 'exit');
    const dead = registry.create('app', child.pid!);
    const live = registry.create('app', process.pid);
    const unowned = registry.create('app', null);
    assert.equal(registry.sweep(), 1);
    assert.equal(registry.byId(dead.id), undefined);
    assert.equal(registry.byHeader(dead.header), undefined);
    assert.ok(registry.byId(live.id), 'registry.byId(live.id)');
    assert.ok(registry.byId(unowned.id), 'registry.byId(unowned.id)');
  });
});
