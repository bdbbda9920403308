import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { DEFAULT_LIMITS } from '../src/config/index.js';
import { parseLimitFlags } from '../src/config/limits.js';
import { runCli } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { putVault, vaultPrincipal, vaultToken } from './helpers/vault.js';

/** Opens a raw TLS connection to the test server, writes `data`, and collects what comes back until close. */
function rawExchange(
  s: TestServer,
  data: string,
  waitMs: number,
): Promise<{ text: string; closed: boolean; ms: number }> {
  const port = Number(new URL(s.info.authority).port);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let text = '';
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: s.ca }, () =>
      sock.write(data),
    );
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text, closed: false, ms: Date.now() - t0 });
    }, waitMs);
    sock.setEncoding('utf8').on('data', (c: string) => {
      text += c;
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      if (text) resolve({ text, closed: true, ms: Date.now() - t0 });
      else reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true, ms: Date.now() - t0 });
    });
  });
}

describe('--limit flag parsing', () => {
  test('kebab-case names map to the Limits fields and values are validated', () => {
    assert.deepEqual(parseLimitFlags(['body-bytes=65536', 'per-principal-rate=0', 'json-depth=10']), {
      bodyBytes: 65536,
      perPrincipalRate: 0,
      jsonDepth: 10,
    });
    assert.deepEqual(parseLimitFlags([]), {});
    assert.throws(() => parseLimitFlags(['nope=1']), /invalid --limit "nope=1"/);
    assert.throws(() => parseLimitFlags(['body-bytes=abc']), /invalid --limit/);
    assert.throws(() => parseLimitFlags(['body-bytes']), /invalid --limit/);
    assert.throws(() => parseLimitFlags(['body-bytes=10']), /invalid --limit body-bytes/);
    assert.throws(() => parseLimitFlags(['json-depth=100000']), /invalid --limit json-depth/);
  });

  test('every Limits field has a flag', () => {
    const parsed = parseLimitFlags(
      Object.keys(DEFAULT_LIMITS).map(
        (k) =>
          `${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=${DEFAULT_LIMITS[k as keyof typeof DEFAULT_LIMITS]}`,
      ),
    );
    assert.deepEqual(parsed, { ...DEFAULT_LIMITS });
  });

  test('`latchkey up --limit` with a bad value fails fast with one line and exit 2', async () => {
    const r = await runCli(['up', '--limit', 'body-bytes=1', '--port', '0', '--data-dir', '/nonexistent/x'], {
      configDir: '/nonexistent/cfg',
      timeoutMs: 15_000,
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /invalid --limit body-bytes/);
  });
});

describe('protective limits (in-process server with small limits)', () => {
  let s: TestServer;
  let adminToken: string;
  let spToken: string;
  const LIMITS = {
    bodyBytes: 8192,
    headerBytes: 4096,
    jsonDepth: 8,
    requestTimeoutMs: 1500,
    perPrincipalRate: 1,
    perPrincipalBurst: 6,
    perAddressRate: 0,
  };

  before(async () => {
    s = await startTestServer({ limits: LIMITS, identityPort: null });
    adminToken = await s.adminToken();
    await putVault(s, 'limits');
    spToken = await vaultToken(s, await vaultPrincipal(s, 'limits-flood'));
  });
  after(async () => {
    await s?.stop();
  });

  test('a body over body-bytes → 413 with an Azure error, and nothing is created', async () => {
    const r = await s.request('POST', '/api/directory/servicePrincipals', {
      headers: { authorization: `Bearer ${adminToken}` },
      json: { displayName: 'x', pad: 'p'.repeat(LIMITS.bodyBytes) },
    });
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json.error.code, 'PayloadTooLarge');
    const ok = await s.request('POST', '/api/directory/servicePrincipals', {
      headers: { authorization: `Bearer ${adminToken}` },
      json: { displayName: 'small-enough', credential: null },
    });
    assert.equal(ok.status, 201, ok.text);
  });

  test('headers over header-bytes → 431', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 60; i++) headers[`x-pad-${i}`] = 'h'.repeat(100);
    const r = await s.request('GET', '/healthz', { headers });
    assert.equal(r.status, 431);
    const ok = await s.request('GET', '/healthz', { headers: { 'x-pad': 'h'.repeat(1000) } });
    assert.equal(ok.status, 200);
  });

  test('JSON nested deeper than json-depth → 400 BadParameter (both apps)', async () => {
    let deep: unknown = 'v';
    for (let i = 0; i < 20; i++) deep = { a: deep };
    const r = await s.request('POST', '/api/directory/servicePrincipals', {
      headers: { authorization: `Bearer ${adminToken}` },
      json: { displayName: 'deep', extra: deep },
    });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /nested too deeply/);
    const v = await s.request('PUT', `${s.vaultUrl('limits')}/secrets/deep?api-version=7.5`, {
      headers: {
        authorization: `Bearer ${await s.adminToken(s.info.vaultResource)}`,
        'content-type': 'application/json',
      },
      body: `{"value":"x","tags":${'['.repeat(50)}${']'.repeat(50)}}`,
    });
    assert.equal(v.status, 400, v.text);
  });

  test('a request slower than request-timeout-ms is answered 408 and closed', async () => {
    // Headers never finish (slowloris).
    const slowHeaders = await rawExchange(
      s,
      'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n',
      8000,
    );
    assert.ok(slowHeaders.closed, 'connection closed');
    assert.match(slowHeaders.text, /^HTTP\/1\.1 408 /);
    assert.ok(slowHeaders.ms >= 1000 && slowHeaders.ms < 7000, `closed after ${slowHeaders.ms} ms`);
    // Body never finishes.
    const slowBody = await rawExchange(
      s,
      'POST /api/directory/servicePrincipals HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"displayName":',
      8000,
    );
    assert.ok(slowBody.closed, 'connection closed');
    assert.match(slowBody.text, /^HTTP\/1\.1 408 /);
  });

  test('a per-principal flood → 429 Throttled with Retry-After; other principals unaffected', async () => {
    const url = `${s.vaultUrl('limits')}/secrets?api-version=7.5`;
    const statuses: number[] = [];
    let throttled: Awaited<ReturnType<TestServer['request']>> | undefined;
    for (let i = 0; i < 12; i++) {
      const r = await s.request('GET', url, { headers: { authorization: `Bearer ${spToken}` } });
      statuses.push(r.status);
      if (r.status === 429) throttled ??= r;
    }
    assert.ok(throttled, `statuses ${statuses.join(',')}`);
    assert.equal(throttled.json.error.code, 'Throttled');
    assert.match(String(throttled.headers['retry-after']), /^\d+$/);
    assert.ok(Number(throttled.headers['retry-after']) >= 1, "Number(throttled.headers['retry-after']) >= 1");
    // The flood was this principal's, not the address's.
    const other = await s.request('GET', '/api/account', {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    assert.equal(other.status, 200, other.text);
  });
});

describe('per-address rate limit and connection limit', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      limits: { perAddressRate: 1, perAddressBurst: 15, maxConnections: 3 },
      identityPort: null,
    });
  });
  after(async () => {
    await s?.stop();
  });

  test('more connections than max-connections: the extra one is dropped', async () => {
    s.agent.destroy();
    const port = Number(new URL(s.info.authority).port);
    const open = (): Promise<{ sock: tls.TLSSocket; ok: boolean }> =>
      new Promise((resolve) => {
        const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: s.ca });
        sock.once('secureConnect', () => resolve({ sock, ok: true }));
        sock.once('error', () => resolve({ sock, ok: false }));
        sock.once('close', () => resolve({ sock, ok: false }));
      });
    const held = [await open(), await open(), await open()];
    assert.deepEqual(
      held.map((h) => h.ok),
      [true, true, true],
    );
    const extra = await open();
    assert.equal(extra.ok, false, 'the fourth connection is refused');
    for (const h of held) h.sock.destroy();
    extra.sock.destroy();
    await new Promise((r) => setTimeout(r, 100));
  });

  test('a per-address flood → 429 with Retry-After', async () => {
    const statuses: number[] = [];
    let throttled: Awaited<ReturnType<TestServer['request']>> | undefined;
    for (let i = 0; i < 25; i++) {
      const r = await s.request('GET', '/healthz');
      statuses.push(r.status);
      if (r.status === 429) throttled ??= r;
    }
    assert.ok(throttled, `statuses ${statuses.join(',')}`);
    assert.equal(throttled.json.error.code, 'Throttled');
    assert.ok(Number(throttled.headers['retry-after']) >= 1, "Number(throttled.headers['retry-after']) >= 1");
    assert.ok(
      statuses.slice(0, 10).every((x) => x === 200),
      'statuses.slice(0, 10).every((x) => x === 200)',
    );
  });
});
