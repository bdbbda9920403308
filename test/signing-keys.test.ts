import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { findRole } from '../src/access/roles.js';
import type { Principal } from '../src/authority/principals.js';
import { MAX_PUBLISHED_KEYS, MIN_ROTATION_INTERVAL_MS } from '../src/authority/signing-keys.js';
import { LatchkeyError } from '../src/errors/index.js';
import { fakeClock } from '../src/lib/clock.js';
import { loadDevConfig } from '../src/server/dev.js';
import { createServices, type Services } from '../src/server/services.js';
import { createServicePrincipal, secretTokenRequest } from './helpers/authority.js';
import { startTestApp, type TestServer } from './helpers/server.js';

const MINUTE = 60_000;

describe('signing-key rotation over HTTP', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestApp();
  });
  after(async () => {
    await s?.stop();
  });

  const jwksKids = async (): Promise<string[]> =>
    (await s.request('GET', `/${s.info.tenantId}/discovery/v2.0/keys`)).json.keys.map(
      (k: { kid: string }) => k.kid,
    );
  const freshAdminToken = async (): Promise<string> => {
    const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'password',
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        username: s.admin.userName,
        password: s.admin.password,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    assert.equal(r.status, 200, r.text);
    return r.json.access_token;
  };
  const rotate = (token?: string) =>
    s.request('POST', '/api/authority/signingKeys/rotate', {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  const account = (token: string) =>
    s.request('GET', '/api/account', { headers: { authorization: `Bearer ${token}` } });

  test('rotate: JWKS has both keys, old tokens still verify, new tokens use the new kid, keys are sealed', async () => {
    const oldToken = await freshAdminToken();
    const oldKid = decodeProtectedHeader(oldToken).kid!;
    assert.deepEqual(await jwksKids(), [oldKid]);
    const oldPrivate = (await s.services.signingKeys.active()).privateKey;

    const r = await rotate(oldToken);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.previous, oldKid);
    const newKid = r.json.kid as string;
    assert.notEqual(newKid, oldKid);

    const kids = await jwksKids();
    assert.deepEqual([...kids].sort(), [newKid, oldKid].sort());
    assert.equal(kids[0], newKid, 'the current key is listed first');

    // a token signed before the rotation still works
    assert.equal((await account(oldToken)).status, 200);
    // new tokens (user and app) carry the new kid and work
    const newToken = await freshAdminToken();
    assert.equal(decodeProtectedHeader(newToken).kid, newKid);
    assert.equal((await account(newToken)).status, 200);
    const app = await createServicePrincipal(s, { displayName: 'after-rotation' }, newToken);
    const appToken = await secretTokenRequest(s, { appId: app.appId, secret: app.secret! });
    assert.equal(decodeProtectedHeader(appToken.json.access_token).kid, newKid);

    // private keys are sealed at rest: neither row holds its key's DER or JWK d
    const newPrivate = (await s.services.signingKeys.active()).privateKey;
    const rows = await s.services.db.all<{
      kid: string;
      private_sealed: Buffer;
      public_jwk: string;
      state: string;
    }>('SELECT kid, private_sealed, public_jwk, state FROM signing_keys');
    const byKid = new Map(rows.map((x) => [x.kid, x]));
    assert.equal(byKid.get(newKid)!.state, 'active');
    assert.equal(byKid.get(oldKid)!.state, 'previous');
    for (const [kid, key] of [
      [oldKid, oldPrivate],
      [newKid, newPrivate],
    ] as [string, KeyObject][]) {
      const row = byKid.get(kid)!;
      const der = key.export({ format: 'der', type: 'pkcs8' });
      const d = key.export({ format: 'jwk' }).d!;
      assert.ok(!row.private_sealed.includes(der), `${kid}: DER not in the row`);
      assert.ok(!row.private_sealed.includes(Buffer.from(d, 'base64url')), `${kid}: d not in the row`);
      assert.ok(!row.private_sealed.includes(Buffer.from(d)), `${kid}: JWK d not in the row`);
      assert.ok(!row.public_jwk.includes(d), '!row.public_jwk.includes(d)');
      assert.equal(JSON.parse(row.public_jwk).d, undefined);
    }

    // the rotation is audited
    await s.services.audit.drain();
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, operation: 'SigningKeyRotate' });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.target, newKid);
  });

  test('rotation needs authentication and the rotate permission', async () => {
    const before = await jwksKids();
    const none = await rotate();
    assert.equal(none.status, 401);
    const app = await createServicePrincipal(s, { displayName: 'no-role' });
    const t = await secretTokenRequest(
      s,
      { appId: app.appId, secret: app.secret! },
      `${s.info.managementResource}/.default`,
    );
    const denied = await rotate(t.json.access_token);
    assert.equal(denied.status, 403, denied.text);
    assert.equal(denied.json.error.code, 'Forbidden');
    // a vault-audience admin token is not a management token
    const vaultToken = await s.adminToken(s.info.vaultResource);
    assert.equal((await rotate(vaultToken)).status, 401);
    assert.deepEqual(await jwksKids(), before);
  });

  test('a second rotation within the minimum interval is refused: 429 with Retry-After, JWKS unchanged', async () => {
    // The first test rotated moments ago.
    const before = await jwksKids();
    const again = await rotate(await s.adminToken());
    assert.equal(again.status, 429, again.text);
    assert.equal(again.json.error.code, 'Throttled');
    const wait = Number(again.headers['retry-after']);
    assert.ok(wait > 0 && wait <= MIN_ROTATION_INTERVAL_MS / 1000, String(wait));
    assert.deepEqual(await jwksKids(), before);
  });

  test("another tenant's Owner may not rotate the installation's signing keys", async () => {
    const other = await s.services.tenants.create({ displayName: 'Other', domain: 'other-keys.example' });
    const owner = await s.services.principals.createUser(other.id, {
      userName: 'owner@other-keys.example',
      displayName: 'Other owner',
      password: 'other-owner-password',
    });
    await s.services.access.create(other.id, {
      principalId: owner.id,
      role: findRole('Owner')!,
      scope: '/',
      createdBy: 'test',
    });
    const t = await s.request('POST', `/${other.id}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'password',
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        username: 'owner@other-keys.example',
        password: 'other-owner-password',
        scope: `${s.info.managementResource}/.default`,
      },
    });
    assert.equal(t.status, 200, t.text);
    const before = await jwksKids();
    const r = await rotate(t.json.access_token);
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.error.code, 'Forbidden');
    assert.match(r.json.error.message, /default tenant/);
    assert.deepEqual(await jwksKids(), before);
  });

  test('GET /api/authority/signingKeys lists the public keys for an administrator', async () => {
    const r = await s.request('GET', '/api/authority/signingKeys', {
      headers: { authorization: `Bearer ${await s.adminToken()}` },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.json.keys.map((k: { kid: string }) => k.kid),
      await jwksKids(),
    );
    for (const k of r.json.keys) assert.equal(k.d, undefined);
  });
});

describe('signing-key overlap with a fake clock', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-keys-'));
  const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'));
  let services: Services;
  let principal: Principal;
  let base: string;
  let overlapMs: number;

  before(async () => {
    const { config } = await loadDevConfig({
      dataDir,
      host: '127.0.0.1',
      port: 8443,
      logLevel: 'silent',
      // a short configured overlap: the authority still keeps old keys for the longest token's life
      token: { minSeconds: 5400, maxSeconds: 5400, rotationOverlapSeconds: 60 },
    });
    services = await createServices(config, { clock });
    const tenant = await services.tenants.create({ displayName: 'Keys', domain: 'keys.example' });
    principal = await services.principals.createServicePrincipal(tenant.id, { displayName: 'keys-app' });
    base = services.issuerBases()[0]!;
    overlapMs = (5400 + 300) * 1000;
  });
  after(async () => {
    await services?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const issue = async () =>
    (
      await services.issuer.issue({
        issuerBase: base,
        principal,
        clientId: principal.appId!,
        audience: services.vaultResource,
        authMethod: '1',
      })
    ).accessToken;
  const verify = (token: string) => services.verifier.verify(token, [services.vaultResource]);
  const kids = async () => (await services.signingKeys.jwks()).keys.map((k) => k.kid);

  test('the old key stays published for the longest token lifetime, then leaves JWKS and stops verifying', async () => {
    clock.advance(MIN_ROTATION_INTERVAL_MS);
    const oldKey = await services.signingKeys.active();
    const oldToken = await issue();
    assert.equal(decodeProtectedHeader(oldToken).kid, oldKey.kid);

    const { kid: newKid, previous } = await services.signingKeys.rotate();
    assert.equal(previous, oldKey.kid);
    assert.deepEqual(await kids(), [newKid, oldKey.kid]);
    assert.equal(decodeProtectedHeader(await issue()).kid, newKid);

    // just before the old token expires (90 min after issue), it still verifies
    clock.advance(5400 * 1000 - 2 * MINUTE);
    assert.equal((await verify(oldToken)).oid, principal.id);
    assert.deepEqual(await kids(), [newKid, oldKey.kid]);

    // past the overlap the old key is gone from JWKS, and a token it signs is refused
    clock.advance(overlapMs - (5400 * 1000 - 2 * MINUTE) + MINUTE);
    const now = Math.floor(clock.now() / 1000);
    const late = await new SignJWT({
      aud: services.vaultResource,
      iss: `${base}/${principal.tenantId}/v2.0`,
      iat: now,
      nbf: now,
      exp: now + 3600,
      sub: principal.id,
      oid: principal.id,
      tid: principal.tenantId,
    })
      .setProtectedHeader({ alg: oldKey.alg, typ: 'JWT', kid: oldKey.kid })
      .sign(oldKey.privateKey);
    // (checked before anything else reloads the keys: the verifier must not trust a stale cache)
    await assert.rejects(
      verify(late),
      (e: unknown) => e instanceof LatchkeyError && /unknown key/.test(e.message),
    );
    assert.deepEqual(await kids(), [newKid]);
    // tokens of the current key keep working
    assert.equal((await verify(await issue())).oid, principal.id);
  });

  test('retired keys are deleted at the next rotation; the active key survives a restart', async () => {
    const { kid } = await services.signingKeys.rotate();
    const rows = await services.db.all<{ kid: string; state: string }>(
      'SELECT kid, state FROM signing_keys ORDER BY created_at',
    );
    // the key retired in the previous test is gone; the one just replaced is 'previous'
    assert.equal(rows.length, 2);
    assert.deepEqual(
      rows.map((r) => r.state),
      ['previous', 'active'],
    );
    assert.equal(rows[1]!.kid, kid);
    const token = await issue();
    await services.close();
    const { config } = await loadDevConfig({ dataDir, host: '127.0.0.1', port: 8443, logLevel: 'silent' });
    services = await createServices(config, { clock });
    assert.equal((await services.signingKeys.active()).kid, kid);
    assert.equal((await verify(token)).oid, principal.id);
  });
});

describe('signing-key rotation is bounded (fake clock)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-keys-bound-'));
  const clock = fakeClock(Date.parse('2032-01-01T00:00:00Z'));
  let services: Services;
  // The default overlap: the longest token (90 min) plus 5 min, at least two hours.
  const overlapMs = 2 * 3600 * 1000;

  before(async () => {
    const { config } = await loadDevConfig({ dataDir, host: '127.0.0.1', port: 8443, logLevel: 'silent' });
    services = await createServices(config, { clock });
  });
  after(async () => {
    await services?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const kids = async () => (await services.signingKeys.jwks()).keys.map((k) => k.kid);
  const throttled = (retryAfter?: number) => (e: unknown) =>
    e instanceof LatchkeyError &&
    e.code === 'Throttled' &&
    e.status === 429 &&
    (retryAfter === undefined || e.headers['Retry-After'] === String(retryAfter));

  test('a minimum interval between rotations, and at most MAX_PUBLISHED_KEYS keys in JWKS', async () => {
    // The first rotation after the first start is not delayed.
    await services.signingKeys.rotate();
    assert.equal((await kids()).length, 2);
    // A burst of rotations: refused, JWKS unchanged.
    clock.advance(MINUTE);
    for (let i = 0; i < 20; i++)
      await assert.rejects(services.signingKeys.rotate(), throttled(MIN_ROTATION_INTERVAL_MS / 1000 - 60));
    assert.equal((await kids()).length, 2);
    // One rotation per interval, until the cap of published keys.
    const start = clock.now() - MINUTE;
    while ((await kids()).length < MAX_PUBLISHED_KEYS) {
      clock.advance(MIN_ROTATION_INTERVAL_MS);
      await services.signingKeys.rotate();
    }
    clock.advance(MIN_ROTATION_INTERVAL_MS);
    // The oldest published key (the first one, retired at the first rotation) leaves at its overlap's end.
    const waitS = (start + overlapMs - clock.now()) / 1000;
    await assert.rejects(services.signingKeys.rotate(), throttled(waitS));
    assert.equal((await kids()).length, MAX_PUBLISHED_KEYS);
    clock.advance(waitS * 1000);
    await services.signingKeys.rotate();
    assert.equal((await kids()).length, MAX_PUBLISHED_KEYS);
    // Many hours of attempts every minute: JWKS never grows past the cap.
    let made = 0;
    for (let i = 0; i < 300; i++) {
      clock.advance(MINUTE);
      try {
        await services.signingKeys.rotate();
        made += 1;
      } catch (e) {
        assert.ok(throttled()(e), 'throttled()(e)');
      }
      assert.ok((await kids()).length <= MAX_PUBLISHED_KEYS, '(await kids()).length <= MAX_PUBLISHED_KEYS');
    }
    assert.ok(made <= 300 / (MIN_ROTATION_INTERVAL_MS / MINUTE), String(made));
  });
});

describe('scheduled signing-key rotation (job signing-key-rotation)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-keys-sched-'));
  const clock = fakeClock(Date.parse('2031-01-01T00:00:00Z'));
  let services: Services;
  const DAY = 86_400_000;

  before(async () => {
    const { config } = await loadDevConfig({
      dataDir,
      host: '127.0.0.1',
      port: 8443,
      logLevel: 'silent',
      limits: { signingKeyMaxAgeSeconds: 7 * 86_400 },
    });
    services = await createServices(config, { clock });
  });
  after(async () => {
    await services?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the job replaces the active key once it reaches its maximum age, once, and audits it', async () => {
    assert.ok(
      services.jobs.names().includes('signing-key-rotation'),
      "services.jobs.names().includes('signing-key-rotation')",
    );
    const first = (await services.signingKeys.active()).kid;
    // Younger than the maximum age: nothing happens.
    clock.advance(6 * DAY);
    assert.equal(await services.jobs.runNow('signing-key-rotation'), true);
    assert.equal((await services.signingKeys.active()).kid, first);
    // Past it: a new active key; the old one stays published for the overlap.
    clock.advance(2 * DAY);
    assert.equal(await services.jobs.runNow('signing-key-rotation'), true);
    const second = (await services.signingKeys.active()).kid;
    assert.notEqual(second, first);
    const kids = (await services.signingKeys.jwks()).keys.map((k) => k.kid);
    assert.deepEqual(kids.sort(), [first, second].sort());
    // Running again at once (another node, a retry) does not rotate a second time.
    assert.equal(await services.signingKeys.rotateIfOlderThan(7 * DAY), undefined);
    assert.equal((await services.signingKeys.active()).kid, second);
    await services.audit.drain();
    const events = await services.db.all<{ target: string; details: string; caller_kind: string }>(
      "SELECT target, details, caller_kind FROM audit_events WHERE operation = 'SigningKeyRotate'",
    );
    assert.equal(events.length, 1);
    assert.equal(events[0]!.target, second);
    assert.equal(events[0]!.caller_kind, 'system');
    assert.deepEqual(JSON.parse(events[0]!.details), { previous: first, scheduled: true });
  });

  test('the maximum age is a checked limit; 0 turns the job off', async () => {
    const { parseLimitFlags } = await import('../src/config/limits.js');
    assert.deepEqual(parseLimitFlags(['signing-key-max-age-seconds=0']), { signingKeyMaxAgeSeconds: 0 });
    assert.throws(() => parseLimitFlags(['signing-key-max-age-seconds=59']), /at least 3600/);
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-keys-off-'));
    const { config } = await loadDevConfig({
      dataDir: dir,
      host: '127.0.0.1',
      port: 8443,
      logLevel: 'silent',
      limits: { signingKeyMaxAgeSeconds: 0 },
    });
    const off = await createServices(config, { clock });
    try {
      assert.ok(
        !off.jobs.names().includes('signing-key-rotation'),
        "!off.jobs.names().includes('signing-key-rotation')",
      );
    } finally {
      await off.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('issued tokens are standard JWS (signed with node:crypto, verified by jose against JWKS)', () => {
  for (const alg of ['ES256', 'RS256'] as const) {
    test(alg, async () => {
      const dir = mkdtempSync(join(tmpdir(), `latchkey-jws-${alg}-`));
      const { config } = await loadDevConfig({
        dataDir: dir,
        host: '127.0.0.1',
        port: 8443,
        logLevel: 'silent',
        token: { signingAlg: alg },
      });
      const services = await createServices(config);
      try {
        const tenant = await services.tenants.create({ displayName: 'JWS', domain: `jws-${alg}.example` });
        const principal = await services.principals.createServicePrincipal(tenant.id, { displayName: 'jws' });
        const base = services.issuerBases()[0]!;
        const { accessToken, claims } = await services.issuer.issue({
          issuerBase: base,
          principal,
          clientId: principal.appId!,
          audience: services.vaultResource,
          authMethod: '1',
        });
        const header = decodeProtectedHeader(accessToken);
        assert.equal(header.alg, alg);
        assert.equal(header.typ, 'JWT');
        const jwks = createLocalJWKSet(await services.signingKeys.jwks());
        const { payload } = await jwtVerify(accessToken, jwks, {
          algorithms: [alg],
          audience: services.vaultResource,
          issuer: claims.iss,
        });
        assert.equal(payload.oid, principal.id);
        assert.deepEqual(payload, { ...claims });
        // One flipped bit in the signature and it no longer verifies.
        const [h, p, sig] = accessToken.split('.') as [string, string, string];
        const bad = Buffer.from(sig, 'base64url');
        bad[0]! ^= 1;
        await assert.rejects(jwtVerify(`${h}.${p}.${bad.toString('base64url')}`, jwks));
      } finally {
        await services.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
