// Client addresses behind a load balancer: PROXY protocol (v1, v2) and X-Forwarded-For from trusted
// proxies only; what the per-address limit and the audit log see.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { forwardedClient, parseProxyHeader } from '../src/http/client-address.js';
import { fakeClock } from '../src/lib/clock.js';
import { cidrList } from '../src/lib/ip.js';
import { loadProductionConfig } from '../src/server/production.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** The 16 bytes of an IPv6 address written with at most one `::`. */
function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
}

/** A PROXY protocol v2 header: PROXY (or LOCAL) over TCP4 or TCP6, with optional TLV bytes. */
function v2(src: string | null, tlv: Buffer = Buffer.alloc(0)): Buffer {
  if (src === null) return Buffer.concat([V2_SIG, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const six = net.isIPv6(src);
  const addr = (a: string) => (six ? ipv6Bytes(a) : Buffer.from(a.split('.').map(Number)));
  const block = Buffer.concat([
    addr(src),
    addr(six ? '2001:db8::1' : '10.0.0.1'),
    Buffer.from([0x13, 0x88, 0x01, 0xbb]),
    tlv,
  ]);
  const head = Buffer.from([0x21, six ? 0x21 : 0x11, block.length >> 8, block.length & 0xff]);
  return Buffer.concat([V2_SIG, head, block]);
}

describe('PROXY protocol header parsing', () => {
  test('v1: TCP4, TCP6 and UNKNOWN', () => {
    const four = Buffer.from('PROXY TCP4 203.0.113.9 10.0.0.1 51000 443\r\nrest');
    assert.deepEqual(parseProxyHeader(four), { status: 'ok', length: 43, address: '203.0.113.9' });
    const six = Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n');
    assert.deepEqual(parseProxyHeader(six), { status: 'ok', length: six.length, address: '2001:db8::7' });
    const unknown = Buffer.from('PROXY UNKNOWN\r\n');
    assert.deepEqual(parseProxyHeader(unknown), { status: 'ok', length: 15, address: null });
  });

  test('v1: incomplete until the CRLF; malformed lines are refused', () => {
    const line = 'PROXY TCP4 203.0.113.9 10.0.0.1 51000 443\r\n';
    for (let i = 1; i < line.length; i++)
      assert.equal(parseProxyHeader(Buffer.from(line.slice(0, i))).status, 'incomplete', `at ${i}`);
    for (const bad of [
      'PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n', // family mismatch
      'PROXY TCP4 203.0.113.9 10.0.0.1 1\r\n', // a field short
      'PROXY TCP4 203.0.113.9 10.0.0.1 1 99999\r\n', // port out of range
      'PROXY UDP4 203.0.113.9 10.0.0.1 1 2\r\n',
      'PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}`, // no CRLF within 107 bytes
    ])
      assert.equal(parseProxyHeader(Buffer.from(bad)).status, 'invalid', bad);
  });

  test('v2: TCP4 with TLVs, TCP6, LOCAL; byte-by-byte incomplete; bad version and lengths', () => {
    const tlv = Buffer.from([0x02, 0x00, 0x05, ...Buffer.from('hello')]); // PP2_TYPE_AUTHORITY
    const four = Buffer.concat([v2('192.0.2.44', tlv), Buffer.from([0x16, 0x03])]);
    const r = parseProxyHeader(four);
    assert.deepEqual(r, { status: 'ok', length: four.length - 2, address: '192.0.2.44' });
    for (let i = 1; i < four.length - 2; i++)
      assert.equal(parseProxyHeader(four.subarray(0, i)).status, 'incomplete', `at ${i}`);
    assert.deepEqual(parseProxyHeader(v2('2001:db8::7')), {
      status: 'ok',
      length: 52,
      address: '2001:db8::7',
    });
    assert.deepEqual(parseProxyHeader(v2(null)), { status: 'ok', length: 16, address: null });

    const badVersion = v2('192.0.2.44');
    badVersion[12] = 0x11;
    assert.equal(parseProxyHeader(badVersion).status, 'invalid');
    const tooLong = v2('192.0.2.44');
    tooLong.writeUInt16BE(4000, 14);
    assert.equal(parseProxyHeader(tooLong).status, 'invalid');
    const short = Buffer.concat([V2_SIG, Buffer.from([0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4])]);
    assert.equal(parseProxyHeader(short).status, 'invalid');
  });

  test('a connection that starts with anything else (a TLS ClientHello) is refused', () => {
    assert.equal(parseProxyHeader(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])).status, 'invalid');
    assert.equal(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')).status, 'invalid');
  });
});

describe('X-Forwarded-For', () => {
  const trusted = cidrList(['127.0.0.1', '10.0.0.0/8']);
  test('read from the right through trusted hops only; ignored from an untrusted peer', () => {
    assert.equal(forwardedClient('127.0.0.1', '198.51.100.4', trusted), '198.51.100.4');
    assert.equal(forwardedClient('127.0.0.1', '6.6.6.6, 198.51.100.4, 10.1.2.3', trusted), '198.51.100.4');
    assert.equal(forwardedClient('::ffff:127.0.0.1', '198.51.100.4', trusted), '198.51.100.4');
    assert.equal(forwardedClient('192.0.2.1', '198.51.100.4', trusted), '192.0.2.1', 'spoofed');
    assert.equal(forwardedClient('127.0.0.1', undefined, trusted), '127.0.0.1');
    assert.equal(forwardedClient('127.0.0.1', 'garbage, 10.1.2.3', trusted), '10.1.2.3');
    assert.equal(forwardedClient('127.0.0.1', ['198.51.100.4', '10.0.0.9'], trusted), '198.51.100.4');
  });
});

describe('server configuration', () => {
  test('--trusted-proxy entries are checked; --proxy-protocol needs them', () => {
    const base = { host: '0.0.0.0', port: 443 };
    const problems = (o: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => {
      try {
        loadProductionConfig({ ...base, ...o }, env);
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    };
    assert.match(
      problems({ trustedProxies: ['10.0.0.0/33'] }),
      /--trusted-proxy: '10\.0\.0\.0\/33' has an invalid prefix length/,
    );
    assert.match(problems({ trustedProxies: ['10.0.0.0/'] }), /--trusted-proxy: .*invalid prefix length/);
    assert.match(
      problems({}, { LATCHKEY_TRUSTED_PROXIES: '10.0.0.1,lb.example' }),
      /'lb\.example' is not a CIDR range/,
    );
    assert.match(problems({ proxyProtocol: true }), /--proxy-protocol needs --trusted-proxy/);
    assert.doesNotMatch(
      problems({ trustedProxies: ['10.0.0.0/8', '2001:db8::/32'], proxyProtocol: true }),
      /proxy/i,
    );
  });
});

/** One HTTP/1.1 request over TLS on a fresh TCP connection that first sends `preamble`. */
function rawRequest(
  server: TestServer,
  preamble: Buffer | null,
  path: string,
  headers: Record<string, string> = {},
  host = 'localhost',
  o: { method?: string; form?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
  const port = Number(new URL(server.info.authority).port);
  const body = o.form ? new URLSearchParams(o.form).toString() : '';
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, '127.0.0.1', () => {
      if (preamble) raw.write(preamble);
      const t = tls.connect({ socket: raw, ca: server.ca, servername: 'localhost' }, () => {
        const lines = [`${o.method ?? 'GET'} ${path} HTTP/1.1`, `Host: ${host}:${port}`, 'Connection: close'];
        if (o.form)
          lines.push('Content-Type: application/x-www-form-urlencoded', `Content-Length: ${body.length}`);
        for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
        t.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
      });
      const chunks: Buffer[] = [];
      t.on('data', (c: Buffer) => chunks.push(c));
      t.on('error', reject);
      t.on('close', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
        if (!status) reject(new Error('no HTTP response'));
        else resolve({ status: Number(status[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
      });
    });
    raw.on('error', reject);
  });
}

/**
 * The client address the audit log recorded for a VaultNotFound at `vaultName`. The vault app
 * queues the event before it answers, so draining the group commit makes it readable (no polling).
 */
async function auditedAddress(server: TestServer, vaultName: string): Promise<string | null> {
  await server.services.audit.drain();
  const events = await server.services.audit.list({
    tenantId: server.admin.tenantId,
    operation: 'VaultNotFound',
  });
  return events.find((x) => x.target?.startsWith(`https://${vaultName}.`))?.clientIp ?? null;
}

const limits = { perAddressRate: 1, perAddressBurst: 3 };
// Frozen time: a bucket refills only when a test says so (on a loaded machine a real second
// passed between requests and refilled it).
const clock = () => fakeClock(Date.now());

describe('behind a proxy sending X-Forwarded-For', () => {
  let server: TestServer;
  let direct: TestServer;
  before(async () => {
    server = await startTestServer({
      identityPort: null,
      limits,
      clock: clock(),
      proxies: { trusted: ['127.0.0.1'], via: 'x-forwarded-for' },
    });
    direct = await startTestServer({ identityPort: null, limits, clock: clock() });
  });
  after(async () => {
    await server?.stop();
    await direct?.stop();
  });

  test('each forwarded client has its own per-address budget', async () => {
    const a = { 'X-Forwarded-For': '198.51.100.1' };
    for (let i = 0; i < 3; i++) assert.equal((await rawRequest(server, null, '/healthz', a)).status, 200);
    assert.equal((await rawRequest(server, null, '/healthz', a)).status, 429);
    const b = { 'X-Forwarded-For': '198.51.100.2' };
    assert.equal((await rawRequest(server, null, '/healthz', b)).status, 200);
  });

  test('the audit log names the forwarded client, through trusted hops', async () => {
    const token = await server.adminToken(server.services.vaultResource);
    const auth = { authorization: `Bearer ${token}` };
    const path = '/secrets/x?api-version=7.5';
    const host = (n: string) => `${n}.vault.localhost`;
    await rawRequest(server, null, path, { ...auth, 'X-Forwarded-For': '198.51.100.3' }, host('xffone'));
    assert.equal(await auditedAddress(server, 'xffone'), '198.51.100.3');
    await rawRequest(
      server,
      null,
      path,
      { ...auth, 'X-Forwarded-For': '203.0.113.50, 127.0.0.1' },
      host('xfftwo'),
    );
    assert.equal(await auditedAddress(server, 'xfftwo'), '203.0.113.50');
  });

  test('without --trusted-proxy the header is ignored: one address, one budget, the peer audited', async () => {
    // The token request spends one of the peer's 3 requests; two more, whatever they claim, and it is spent.
    const token = await direct.adminToken(direct.services.vaultResource);
    for (const client of ['198.51.100.10', '198.51.100.11'])
      assert.equal((await rawRequest(direct, null, '/healthz', { 'X-Forwarded-For': client })).status, 200);
    const spoofed = await rawRequest(direct, null, '/healthz', { 'X-Forwarded-For': '198.51.100.99' });
    assert.equal(spoofed.status, 429);
    // The data plane has its own per-address budget.
    await rawRequest(
      direct,
      null,
      '/secrets/x?api-version=7.5',
      { authorization: `Bearer ${token}`, 'X-Forwarded-For': '198.51.100.3' },
      'xffdirect.vault.localhost',
    );
    assert.equal(await auditedAddress(direct, 'xffdirect'), '127.0.0.1');
  });
});

describe('behind a proxy sending the PROXY protocol (TLS passthrough)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      identityPort: null,
      limits,
      clock: clock(),
      proxies: { trusted: ['127.0.0.1'], via: 'proxy-protocol' },
    });
  });
  after(async () => server?.stop());

  const v1 = (src: string) => Buffer.from(`PROXY TCP4 ${src} 10.0.0.1 51000 443\r\n`);

  test('v1 and v2 clients each have their own per-address budget', async () => {
    for (let i = 0; i < 3; i++)
      assert.equal((await rawRequest(server, v1('192.0.2.10'), '/healthz')).status, 200);
    assert.equal((await rawRequest(server, v1('192.0.2.10'), '/healthz')).status, 429);
    assert.equal((await rawRequest(server, v2('192.0.2.11'), '/healthz')).status, 200);
    // A balancer's own health check (v2 LOCAL) speaks for the balancer.
    assert.equal((await rawRequest(server, v2(null), '/healthz')).status, 200);
  });

  test('the audit log names the client of the PROXY header (IPv4 and IPv6)', async () => {
    // The token too comes through the "balancer" (the helper's direct requests would be cut off).
    const got = await rawRequest(
      server,
      v2('192.0.2.12'),
      `/${server.admin.tenantId}/oauth2/v2.0/token`,
      {},
      'localhost',
      {
        method: 'POST',
        form: {
          grant_type: 'password',
          client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
          username: server.admin.userName,
          password: server.admin.password,
          scope: `${server.services.vaultResource}/.default`,
        },
      },
    );
    assert.equal(got.status, 200);
    const token = (JSON.parse(got.body) as { access_token: string }).access_token;
    const auth = { authorization: `Bearer ${token}` };
    const path = '/secrets/x?api-version=7.5';
    await rawRequest(server, v1('192.0.2.20'), path, auth, 'ppone.vault.localhost');
    assert.equal(await auditedAddress(server, 'ppone'), '192.0.2.20');
    await rawRequest(server, v2('2001:db8::7'), path, auth, 'pptwo.vault.localhost');
    assert.equal(await auditedAddress(server, 'pptwo'), '2001:db8::7');
  });

  test('a trusted proxy that sends no header, or a malformed one, is cut off before TLS', async () => {
    await assert.rejects(rawRequest(server, null, '/healthz'));
    await assert.rejects(rawRequest(server, Buffer.from('PROXY TCP4 nonsense\r\n'), '/healthz'));
    // The listener still serves well-formed connections.
    assert.equal((await rawRequest(server, v1('192.0.2.30'), '/healthz')).status, 200);
  });
});
