// The per-request savings of issue 19 on the vault GET path keep behaviour: each test here pins what
// one saving must not change (a request's log lines, the per-address limit's refusal, ...).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { DEFAULT_LIMITS } from '../src/config/index.js';
import { sendAzureError } from '../src/http/errors.js';
import { createFastify } from '../src/http/fastify.js';
import { fakeClock } from '../src/lib/clock.js';

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
