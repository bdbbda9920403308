// The `secrets` bench compares Latchkey's secret GET with a "floor" server that does only the work no
// design can skip (bench/servers/secrets-server.ts). The comparison means something only while the floor
// answers what Latchkey answers: same status, same SecretBundle shape and value, same headers. No timing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ChildServer, REPO_ROOT, spawnBenchServer } from '../bench/lib.js';

const SCRIPT = join(REPO_ROOT, 'bench', 'servers', 'secrets-server.ts');
const PATH = '/secrets/bench-secret?api-version=7.5';

function request(port: number, host: string, method: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; json: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          method,
          path: PATH,
          headers: { host, ...headers },
          rejectUnauthorized: false,
          servername: 'localhost',
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    },
  );
}

/** The header names an answer carries, without those every node:http answer has. */
const headerNames = (h: Record<string, unknown>) =>
  Object.keys(h)
    .filter((k) => !['date', 'connection', 'keep-alive', 'transfer-encoding'].includes(k))
    .sort();

describe('bench floor server (no timing)', () => {
  let dataDir: string;
  let latchkey: ChildServer<{ port: number; vaultHost: string; token: string }>;
  let reference: Awaited<ReturnType<typeof request>>;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'latchkey-floor-test-'));
    latchkey = await spawnBenchServer(SCRIPT, ['latchkey', dataDir, '1']);
    const { port, vaultHost, token } = latchkey.info;
    const auth = { authorization: `Bearer ${token}` };
    const set = await request(
      port,
      vaultHost,
      'PUT',
      { ...auth, 'content-type': 'application/json' },
      JSON.stringify({ value: 's'.repeat(1024) }),
    );
    assert.equal(set.status, 200);
    reference = await request(port, vaultHost, 'GET', auth);
    assert.equal(reference.status, 200);
  });

  after(async () => {
    await latchkey?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  for (const processes of [1, 2]) {
    test(`in ${processes} process(es) it answers what Latchkey answers: status, bundle shape, value, headers`, async () => {
      const floor = await spawnBenchServer<{ port: number }>(SCRIPT, [
        'floor',
        dataDir,
        '1024',
        String(processes),
      ]);
      try {
        const { vaultHost, token } = latchkey.info;
        // Several requests on fresh connections: with 2 processes, both workers answer some of them.
        for (let i = 0; i < 4; i++) {
          const got = await request(floor.info.port, vaultHost, 'GET', { authorization: `Bearer ${token}` });
          assert.equal(got.status, 200);
          assert.equal(got.json.value, reference.json.value, 'the floor decrypts the same 1 KiB value');
          assert.deepEqual(Object.keys(got.json).sort(), Object.keys(reference.json).sort());
          assert.deepEqual(
            Object.keys(got.json.attributes as object).sort(),
            Object.keys(reference.json.attributes as object).sort(),
          );
          assert.match(
            String(got.json.id),
            new RegExp(`^https://${vaultHost}/secrets/bench-secret/[0-9a-f]{32}$`),
          );
          assert.deepEqual(headerNames(got.headers), headerNames(reference.headers));
          assert.equal(got.headers['content-type'], reference.headers['content-type']);
        }
      } finally {
        assert.equal(await floor.stop(), 0, 'the floor server exits cleanly on SIGTERM');
      }
    });
  }
});
