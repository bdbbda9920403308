import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { ERROR_STATUS, LatchkeyError } from '../src/errors/index.js';
import { sendAzureError, sendOAuthError } from '../src/http/errors.js';
import { classifyStorageFault, toStorageError } from '../src/storage/errors.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

/** Every table row of docs/errors.md as code → status. */
function documentedCodes(): Map<string, number[]> {
  const rows = new Map<string, number[]>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`([A-Za-z_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line);
    if (m) rows.set(m[1]!, [...(rows.get(m[1]!) ?? []), Number(m[2])]);
  }
  return rows;
}

describe('error codes', () => {
  test('docs/errors.md lists every code in ERROR_STATUS with its status', () => {
    const documented = documentedCodes();
    const missing: string[] = [];
    const wrongStatus: string[] = [];
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      const statuses = documented.get(code);
      if (!statuses) missing.push(code);
      else if (!statuses.includes(status)) wrongStatus.push(`${code}: documented ${statuses}, is ${status}`);
    }
    assert.deepEqual(missing, [], `codes missing from docs/errors.md: ${missing.join(', ')}`);
    assert.deepEqual(wrongStatus, [], `codes documented with the wrong status: ${wrongStatus.join('; ')}`);
  });

  test('docs/errors.md documents no code that does not exist', () => {
    const unknown = [...documentedCodes().keys()].filter((c) => !(c in ERROR_STATUS));
    assert.deepEqual(unknown, [], `docs/errors.md lists unknown codes: ${unknown.join(', ')}`);
  });

  test('every status is an HTTP error status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code} → ${status}`);
    }
  });

  test('LatchkeyError carries its code, default status and an optional override', () => {
    const e = new LatchkeyError('SecretNotFound', 'no such secret');
    assert.equal(e.code, 'SecretNotFound');
    assert.equal(e.status, 404);
    assert.equal(e.message, 'no such secret');
    assert.deepEqual(e.headers, {});
    const o = new LatchkeyError('invalid_client', 'bad', { status: 400, aadCodes: [7000215] });
    assert.equal(o.status, 400);
    assert.deepEqual(o.aadCodes, [7000215]);
  });
});

describe('storage faults at the edge: no driver code above the adapters', () => {
  const sqliteFull = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  const pgUnique = Object.assign(new Error('duplicate key value violates unique constraint'), {
    code: '23505',
  });
  const app = async (shape: 'oauth' | 'azure', fail: () => unknown) => {
    const a = Fastify({ logger: false });
    a.setErrorHandler((err, req, reply) =>
      (shape === 'oauth' ? sendOAuthError : sendAzureError)(err, req, reply),
    );
    a.post('/t/oauth2/v2.0/token', async () => {
      throw fail();
    });
    await a.ready();
    return a;
  };

  test('a full store: 503 StorageFull with Retry-After (Azure shape), 503 temporarily_unavailable (OAuth shape)', async () => {
    assert.equal(classifyStorageFault(sqliteFull), 'full');
    assert.equal(
      classifyStorageFault(Object.assign(new Error('could not extend file'), { code: '53100' })),
      'full',
    );
    assert.equal(classifyStorageFault(Object.assign(new Error('write'), { code: 'ENOSPC' })), 'full');
    assert.equal(
      classifyStorageFault(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' })),
      'full',
    );
    const azure = await app('azure', () => toStorageError(sqliteFull));
    const a = await azure.inject({ method: 'POST', url: '/t/oauth2/v2.0/token' });
    assert.equal(a.statusCode, 503);
    assert.equal(a.headers['retry-after'], '30');
    assert.equal(a.json().error.code, 'StorageFull');
    assert.doesNotMatch(a.body, /SQLITE|disk is full/);
    const oauth = await app('oauth', () => toStorageError(sqliteFull));
    const o = await oauth.inject({ method: 'POST', url: '/t/oauth2/v2.0/token' });
    assert.equal(o.statusCode, 503);
    assert.equal(o.headers['retry-after'], '30');
    assert.equal(o.json().error, 'temporarily_unavailable');
    await azure.close();
    await oauth.close();
  });

  test('a unique violation: 409 Conflict (Azure shape), 409 invalid_request as before (OAuth shape)', async () => {
    const azure = await app('azure', () => toStorageError(pgUnique));
    const a = await azure.inject({ method: 'POST', url: '/t/oauth2/v2.0/token' });
    assert.equal(a.statusCode, 409);
    assert.deepEqual(a.json().error, {
      code: 'Conflict',
      message: 'The object was created or changed concurrently; retry.',
    });
    const oauth = await app('oauth', () => toStorageError(pgUnique));
    const o = await oauth.inject({ method: 'POST', url: '/t/oauth2/v2.0/token' });
    assert.equal(o.statusCode, 409);
    assert.equal(o.json().error, 'invalid_request');
    assert.match(o.json().error_description, /^The request conflicts with a concurrent change; retry\./);
    // a domain's own Conflict keeps its words on the OAuth edge
    const own = await app('oauth', () => new LatchkeyError('Conflict', 'The name is taken.'));
    assert.match(
      (await own.inject({ method: 'POST', url: '/t/oauth2/v2.0/token' })).json().error_description,
      /^The name is taken\./,
    );
    // a raw driver error no longer means anything to the edge: a plain 500
    const raw = await app('azure', () => pgUnique);
    assert.equal((await raw.inject({ method: 'POST', url: '/t/oauth2/v2.0/token' })).statusCode, 500);
    for (const x of [azure, oauth, own, raw]) await x.close();
  });

  test('a transaction PostgreSQL aborted along the way (25P02, or COMMIT answered with ROLLBACK): 503 with Retry-After in both shapes, no driver text', async () => {
    const pgAborted = Object.assign(
      new Error('current transaction is aborted, commands ignored until end of transaction block'),
      { code: '25P02' },
    );
    assert.equal(classifyStorageFault(pgAborted), 'rolledBack');
    for (const shape of ['azure', 'oauth'] as const) {
      const a = await app(shape, () => toStorageError(pgAborted));
      const r = await a.inject({ method: 'POST', url: '/t/oauth2/v2.0/token' });
      assert.equal(r.statusCode, 503, `${shape}: ${r.body}`);
      assert.equal(r.headers['retry-after'], '1', shape);
      const code = shape === 'azure' ? r.json().error.code : r.json().error;
      assert.equal(code, shape === 'azure' ? 'ServiceUnavailable' : 'temporarily_unavailable');
      assert.doesNotMatch(r.body, /25P02|transaction is aborted/, `${shape}: no driver text`);
      await a.close();
    }
  });

  test('a database that is away: every driver shape of it is 503 with Retry-After, a statement error is not', () => {
    const err = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});
    const refused = (addr: string) => err(`connect ECONNREFUSED ${addr}:5432`, 'ECONNREFUSED');
    for (const e of [
      err('terminating connection due to administrator command', '57P01'),
      err('the database system is shutting down', '57P03'),
      err('Connection terminated unexpectedly'),
      err('Connection terminated due to connection timeout'),
      err('timeout exceeded when trying to connect'),
      err('Client has encountered a connection error and is not queryable'),
      refused('127.0.0.1'),
      // happy eyeballs: one error per address tried, no code or message of its own
      new AggregateError([refused('::1'), refused('127.0.0.1')]),
    ]) {
      assert.equal(classifyStorageFault(e), 'unavailable', e.message || 'AggregateError');
      const mapped = toStorageError(e);
      assert.ok(mapped instanceof LatchkeyError && mapped.code === 'ServiceUnavailable', String(e));
      assert.equal(mapped.headers['retry-after'], '1');
    }
    for (const e of [
      err('syntax error at or near "SELEC"', '42601'),
      new AggregateError([refused('::1'), err('boom')]),
      new AggregateError([]),
    ])
      assert.equal(classifyStorageFault(e), undefined, e.message || 'AggregateError');
  });
});
