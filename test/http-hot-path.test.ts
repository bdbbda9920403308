// The per-request savings of issue 19 on the vault GET path keep behaviour: each test here pins what
// one saving must not change (a request's log lines, the per-address limit's refusal, ...).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import type { Caller } from '../src/access/caller.js';
import { createAccess } from '../src/access/decision.js';
import { createAuditLog } from '../src/audit/log.js';
import { DEFAULT_LIMITS } from '../src/config/index.js';
import { LatchkeyError } from '../src/errors/index.js';
import { sendAzureError } from '../src/http/errors.js';
import { createFastify } from '../src/http/fastify.js';
import { fakeClock } from '../src/lib/clock.js';
import { createChangeBus, type RelayableChangeBus } from '../src/lib/events.js';
import { openSqlite } from '../src/storage/sqlite.js';
import { createSecrets, type Secrets } from '../src/vault/secrets.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import { grant, putVault, vaultPrincipal, vaultToken } from './helpers/vault.js';

/** A pino logger whose lines are collected, and a count of the child loggers made from it. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const logger = pino({ level: 'warn' }, sink);
  const counted = { children: 0 };
  const child = logger.child.bind(logger);
  logger.child = ((bindings, options) => {
    counted.children++;
    return child(bindings, options);
  }) as typeof logger.child;
  return { logger, lines, counted };
}

describe('vault hot path: request loggers', () => {
  test('a request that logs nothing makes no child logger; one that logs is bound to its request id', async () => {
    const { logger, lines, counted } = capturingLogger();
    const { app } = createFastify({
      logger: logger as unknown as FastifyBaseLogger,
      limits: DEFAULT_LIMITS,
    });
    app.setErrorHandler((err, req, reply) => sendAzureError(err, req, reply));
    app.get('/ok', async () => ({ ok: true }));
    app.get('/boom', async () => {
      throw new Error('kaput');
    });
    await app.ready();
    const before = counted.children;
    for (let i = 0; i < 5; i++) assert.equal((await app.inject({ url: '/ok' })).statusCode, 200);
    assert.equal(counted.children, before, 'no request logged, so no child logger was made');

    const r = await app.inject({ url: '/boom' });
    assert.equal(r.statusCode, 500);
    assert.equal(counted.children, before + 1);
    await new Promise((done) => setImmediate(done));
    const line = lines.find((l) => l.msg === 'unhandled error');
    assert.ok(line, 'the unexpected error is logged');
    assert.equal(line.reqId, r.headers['x-ms-request-id'], "the line carries the request's id");
    assert.equal(line.level, 50);
    assert.equal((line.err as { message: string }).message, 'kaput');
    await app.close();
  });
});

describe('vault hot path: the common onRequest hook', () => {
  test('the per-address limit still refuses with 429 and its headers, and answers allowed requests as before', async () => {
    const { logger } = capturingLogger();
    const clock = fakeClock();
    const { app } = createFastify({
      logger: logger as unknown as FastifyBaseLogger,
      limits: { ...DEFAULT_LIMITS, perAddressRate: 1, perAddressBurst: 2 },
      clock,
    });
    app.setErrorHandler((err, req, reply) => sendAzureError(err, req, reply));
    app.get('/ok', async () => ({ ok: true }));
    await app.ready();
    const headers = { 'x-ms-client-request-id': 'client-1' };
    for (let i = 0; i < 2; i++) {
      const ok = await app.inject({ url: '/ok', headers });
      assert.equal(ok.statusCode, 200);
      assert.match(String(ok.headers['x-ms-request-id']), /^[0-9a-f-]{36}$/);
      assert.equal(ok.headers['x-ms-client-request-id'], 'client-1');
      assert.equal(ok.headers['x-content-type-options'], 'nosniff');
      assert.equal(ok.headers['strict-transport-security'], 'max-age=31536000');
    }
    const refused = await app.inject({ url: '/ok', headers });
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.json().error.code, 'Throttled');
    assert.ok(refused.headers['retry-after'], 'the refusal says when to retry');
    clock.advance(1_000);
    assert.equal((await app.inject({ url: '/ok', headers })).statusCode, 200);
    await app.close();
  });
});

describe('vault hot path: authorization and audit of a GET', () => {
  let s: TestServer;
  let vaultId: string;
  let base: string;
  const API = 'api-version=7.5';
  const get = (token: string, name: string) =>
    s.request('GET', `${base}/secrets/${name}?${API}`, { headers: { authorization: `Bearer ${token}` } });
  before(async () => {
    s = await startTestApp({ clock: fakeClock(Date.UTC(2026, 0, 1)) });
    vaultId = (await putVault(s, 'hotvault')).id;
    await putVault(s, 'hotvault2');
    base = s.vaultUrl('hotvault');
  });
  after(async () => {
    await s?.stop();
  });

  test('a removed role assignment refuses the very next GET, on this node and on another', async () => {
    const sp = await vaultPrincipal(s, 'hot-officer');
    await grant(s, sp.id, 'Key Vault Secrets Officer', vaultId);
    const token = await vaultToken(s, sp);
    const admin = await vaultPrincipal(s, 'hot-admin');
    await grant(s, admin.id, 'Key Vault Secrets Officer', vaultId);
    const put = await s.request('PUT', `${base}/secrets/held?${API}`, {
      headers: { authorization: `Bearer ${await vaultToken(s, admin)}` },
      json: { value: 'v1' },
    });
    assert.equal(put.status, 200);
    // Node B: its own access decisions (own cache) and secrets on the same store, buses linked.
    const svc = s.services;
    const busA = svc.bus as RelayableChangeBus;
    const busB = createChangeBus();
    busA.relay = (t, i) => busB.deliver(t, i);
    busB.relay = (t, i) => busA.deliver(t, i);
    const accessB = createAccess({ db: svc.db, clock: svc.clock, bus: busB });
    const nodeB: Secrets = createSecrets({
      db: svc.db,
      clock: svc.clock,
      sealer: svc.sealer,
      access: accessB,
      audit: svc.audit,
      baseUrlOf: svc.vaultBaseUrl,
      bus: busB,
    });
    const caller: Caller = { tenantId: s.info.tenantId, oid: sp.id, appId: sp.appId, kind: 'app' };
    const ctxB = async () => ({
      caller,
      meta: { requestId: 'node-b', clientIp: '127.0.0.1' },
      vault: (await svc.vaults.byName('hotvault'))!,
      baseUrl: svc.vaultBaseUrl('hotvault'),
    });
    const statusB = async () =>
      nodeB.get(await ctxB(), 'held').then(
        () => 200,
        (e) => (e instanceof LatchkeyError ? e.status : 500),
      );
    // Both nodes have the grant cached now (twice: the second from memory).
    for (let i = 0; i < 2; i++) {
      assert.equal((await get(token, 'held')).json.value, 'v1');
      assert.equal(await statusB(), 200);
    }
    const [assignment] = await svc.access.list(s.info.tenantId, { principalId: sp.id });
    await svc.access.delete(s.info.tenantId, assignment!.id);
    assert.equal((await get(token, 'held')).status, 403, 'refused at once on this node');
    assert.equal(await statusB(), 403, 'and on the other node');
    busA.relay = undefined;
  });

  test('scopes compare case-insensitively and by whole segments', async () => {
    const sp = await vaultPrincipal(s, 'hot-scopes');
    // The assignment's scope in other letter case than the vault's id.
    await grant(
      s,
      sp.id,
      'Key Vault Secrets User',
      vaultId.toUpperCase().replace('/SUBSCRIPTIONS', '/subscriptions'),
    );
    const caller: Caller = { tenantId: s.info.tenantId, oid: sp.id, appId: sp.appId, kind: 'app' };
    const action = 'Microsoft.KeyVault/vaults/secrets/getSecret/action';
    const allows = (scope: string) => s.services.access.allows(caller, action, scope, true);
    assert.equal(await allows(vaultId), true);
    assert.equal(await allows(`${vaultId.toLowerCase()}/secrets/a`), true);
    assert.equal(await allows(`${vaultId}/secrets/A`), true, 'again, from memory');
    assert.equal(await allows(`${vaultId}2`), false, 'a vault whose name starts with this one');
    assert.equal(await allows(`${vaultId}2/secrets/a`), false);
    assert.equal(await allows(vaultId.slice(0, -1)), false, 'the parent-like prefix');
    const token = await vaultToken(s, sp);
    const other = await s.request('GET', `${s.vaultUrl('hotvault2')}/secrets/x?${API}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(other.status, 403);
  });

  test('a refusal still carries its challenge; a refused read is audited', async () => {
    const r = await get('not.a.token', 'held');
    assert.equal(r.status, 401);
    const www = String(r.headers['www-authenticate']);
    assert.match(
      www,
      new RegExp(`^Bearer authorization="https://[^"]+/${s.info.tenantId}", resource="[^"]+"$`),
    );
    const nosy = await vaultPrincipal(s, 'hot-nosy');
    const refused = await get(await vaultToken(s, nosy), 'held');
    assert.equal(refused.status, 403);
    await s.services.audit.drain();
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, caller: nosy.id });
    assert.deepEqual(
      events.map((e) => [e.operation, e.status, e.target?.endsWith('/secrets/held')]),
      [['SecretGet', 403, true]],
    );
  });

  test('a SecretBundle keeps its fields and their order, optional ones only when set', async () => {
    const sp = await vaultPrincipal(s, 'hot-bundle');
    await grant(s, sp.id, 'Key Vault Secrets Officer', vaultId);
    const headers = { authorization: `Bearer ${await vaultToken(s, sp)}` };
    const nbf = Math.floor(Date.UTC(2025, 0, 1) / 1000);
    const exp = Math.floor(Date.UTC(2030, 0, 1) / 1000);
    const full = await s.request('PUT', `${base}/secrets/shaped?${API}`, {
      headers,
      json: { value: 'v', contentType: 'text/plain', tags: { a: 'b' }, attributes: { nbf, exp } },
    });
    assert.equal(full.status, 200);
    for (const r of [full, await get(headers.authorization.slice(7), 'shaped')]) {
      assert.deepEqual(Object.keys(r.json), ['value', 'contentType', 'id', 'attributes', 'tags']);
      assert.deepEqual(Object.keys(r.json.attributes), [
        'enabled',
        'nbf',
        'exp',
        'created',
        'updated',
        'recoveryLevel',
        'recoverableDays',
      ]);
      assert.deepEqual(
        { ...r.json, id: undefined, attributes: { ...r.json.attributes, created: 0, updated: 0 } },
        {
          value: 'v',
          contentType: 'text/plain',
          id: undefined,
          attributes: {
            enabled: true,
            nbf,
            exp,
            created: 0,
            updated: 0,
            recoveryLevel: 'Recoverable+Purgeable',
            recoverableDays: 90,
          },
          tags: { a: 'b' },
        },
      );
      assert.match(r.json.id, /\/secrets\/shaped\/[0-9a-f]{32}$/);
    }
    assert.equal(
      (await s.request('PUT', `${base}/secrets/plain?${API}`, { headers, json: { value: 'p' } })).status,
      200,
    );
    const plain = await get(headers.authorization.slice(7), 'plain');
    assert.deepEqual(Object.keys(plain.json), ['value', 'id', 'attributes']);
    assert.deepEqual(Object.keys(plain.json.attributes), [
      'enabled',
      'created',
      'updated',
      'recoveryLevel',
      'recoverableDays',
    ]);
    const patched = await s.request('PATCH', `${base}/secrets/plain?${API}`, {
      headers,
      json: { contentType: 'x' },
    });
    assert.deepEqual(Object.keys(patched.json), ['contentType', 'id', 'attributes'], 'no value');
  });

  test('audit.note: a failed batch reaches onError', async () => {
    const db = openSqlite(':memory:');
    await db.close();
    const log = createAuditLog({
      db,
      clock: fakeClock(0),
      macKey: Buffer.alloc(32, 1),
      headKey: Buffer.alloc(32, 2),
    });
    const heard: unknown[] = [];
    log.note({ tenantId: 't', operation: 'SecretGet', status: 200 }, (e) => heard.push(e));
    await log.drain();
    assert.equal(heard.length, 1);
  });
});
