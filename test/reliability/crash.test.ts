import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT } from 'jose';
import type { ReadyInfo } from '../../src/server/up.js';
import { selfSignedRsaCert, type TestCertificate } from '../helpers/certs.js';
import { startUpProcess, type UpProcess } from '../helpers/cli.js';
import {
  adminToken,
  clientToken,
  FULL,
  type HttpClient,
  httpClient,
  provisionVaultWriter,
  size,
  sleep,
} from './lib.js';

/**
 * Crash safety: a real `latchkey up` child process is killed with SIGKILL at a
 * random moment while clients write secrets and get tokens with client assertions
 * (or while signing keys rotate); after each restart every acknowledged write
 * must be there intact, every acknowledged assertion's jti must still be spent
 * (a replay is refused), the audit chain must verify, and the database must pass
 * SQLite's integrity check. Writes are group-committed (src/storage/group-commit.ts):
 * this is what proves that no caller is answered before the batch holding its write
 * is durable.
 */
const WRITE_CYCLES = size(3, 20);
const ROTATE_CYCLES = size(3, 20);
const WRITERS = size(4, 8);
/** The kill lands at a random moment in this window after the writers start (ms). */
const KILL_WINDOW: [number, number] = size([150, 700], [100, 1500]);

interface Acked {
  name: string;
  value: string;
  version: string;
}

describe(`crash safety: kill -9 during writes and rotations (${FULL ? 'full' : 'short'})`, () => {
  let root: string;
  let dataDir: string;
  let configDir: string;
  let proc: UpProcess | undefined;
  let client: HttpClient | undefined;
  let info: ReadyInfo;
  let ca: string;
  let admin: { userName: string; password: string };
  let writer: { id: string; appId: string; secret: string };
  let cert: TestCertificate;
  const acked: Acked[] = [];
  /** Client assertions whose token request was answered 200: their jti is spent for good. */
  const spent: string[] = [];

  const assertion = () => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      aud: `${info.authority}/${info.tenantId}/oauth2/v2.0/token`,
      iss: writer.appId,
      sub: writer.appId,
      jti: randomUUID(),
      nbf: now,
      exp: now + 600,
    })
      .setProtectedHeader({ alg: 'PS256', typ: 'JWT', 'x5t#S256': cert.x5tS256 })
      .sign(createPrivateKey(cert.keyPem));
  };
  const assertionToken = (c: HttpClient, jwt: string) =>
    c.request('POST', `/${info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: writer.appId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: jwt,
        scope: `${info.vaultResource}/.default`,
      },
    });

  const start = async () => {
    // Rotations as fast as they go (the limits that bound them are tested in signing-keys.test.ts).
    proc = await startUpProcess({
      dataDir,
      configDir,
      args: [
        '--no-identity',
        '--limit',
        'signing-key-rotation-interval-seconds=0',
        '--limit',
        'signing-key-max-published=1000',
        // The verification reads every acknowledged write back as fast as it can: the per-principal
        // limit would answer 429, which the check would report as a lost write.
        '--limit',
        'per-principal-rate=0',
        // The replays of acknowledged assertions are refused on purpose, hundreds of them.
        '--limit',
        'auth-failure-limit=1000000',
        '--limit',
        'auth-failure-slow-after=1000000',
      ],
    });
    info = proc.info;
    ca ??= readFileSync(info.caCertPath, 'utf8');
    client = httpClient(info.authority, ca);
    return client;
  };
  const kill = async () => {
    proc?.child.kill('SIGKILL');
    const r = await proc?.exited;
    client?.close();
    proc = undefined;
    client = undefined;
    return r;
  };
  const vaultUrl = (path: string) =>
    `${info.vaultUrlTemplate.replace('{name}', 'crashvault')}${path}${path.includes('?') ? '&' : '?'}api-version=7.5`;

  /** Every acknowledged write is readable at its version with its value; the chain and the file are sound. */
  const verifyState = async (c: HttpClient, label: string) => {
    const token = await clientToken(c, info, writer);
    const auth = { authorization: `Bearer ${token}` };
    let i = 0;
    const worker = async () => {
      while (i < acked.length) {
        const a = acked[i++]!;
        const r = await c.request('GET', vaultUrl(`/secrets/${a.name}/${a.version}`), { headers: auth });
        assert.notEqual(r.status, 429, `${label}: throttled while verifying (not a lost write): ${r.text}`);
        assert.equal(
          r.status,
          200,
          `${label}: acknowledged ${a.name}/${a.version} lost: ${r.status} ${r.text}`,
        );
        assert.equal(r.json.value, a.value, `${label}: ${a.name}/${a.version} value changed`);
        assert.ok(
          String(r.json.id).endsWith(`/secrets/${a.name}/${a.version}`),
          "String(r.json.id).endsWith('/secrets/{a.name}/{a.version}')",
        );
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    // Every acknowledged assertion stays spent: its jti is recorded for the vault, and a replay is refused.
    // (The restarted server may listen on another port, so the replay's audience can be stale too: the
    // stored jti is the proof, the refused replay the end-to-end check.)
    const dbFile = new Database(join(dataDir, 'latchkey.db'), { readonly: true, fileMustExist: true });
    try {
      const has = dbFile.prepare('SELECT 1 FROM used_assertions WHERE jti_hash = ?');
      for (const jwt of spent) {
        const { jti } = decodeJwt(jwt);
        const hash = createHash('sha256')
          .update(`${writer.appId}\n${jti}\n${info.vaultResource.toLowerCase()}`)
          .digest('base64url');
        assert.ok(has.get(hash), `${label}: the jti of an acknowledged assertion was lost`);
      }
    } finally {
      dbFile.close();
    }
    let j = 0;
    const replayer = async () => {
      while (j < spent.length) {
        const r = await assertionToken(c, spent[j++]!);
        assert.equal(r.status, 401, `${label}: an acknowledged assertion was accepted again: ${r.text}`);
      }
    };
    await Promise.all([replayer(), replayer()]);
    const at = await adminToken(c, info, admin);
    const v = await c.request('POST', '/api/audit/verify', { headers: { authorization: `Bearer ${at}` } });
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.ok, true, `${label}: audit chain broken: ${v.text}`);
    const db = new Database(join(dataDir, 'latchkey.db'), { readonly: true, fileMustExist: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `${label}: integrity_check`);
    } finally {
      db.close();
    }
  };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'latchkey-crash-'));
    dataDir = join(root, 'data');
    configDir = join(root, 'config');
    const c = await start();
    admin = JSON.parse(readFileSync(info.adminCredentialsPath, 'utf8'));
    const at = await adminToken(c, info, admin);
    writer = await provisionVaultWriter(c, info, at, 'crashvault');
    cert = await selfSignedRsaCert('crash-assertions');
    const added = await c.request('POST', `/api/directory/servicePrincipals/${writer.id}/credentials`, {
      headers: { authorization: `Bearer ${at}` },
      json: { type: 'AsymmetricX509Cert', certificate: cert.certPem, append: true },
    });
    assert.equal(added.status, 201, added.text);
  });
  after(async () => {
    await kill();
    rmSync(root, { recursive: true, force: true });
  });

  test(`${WRITE_CYCLES} kill -9 cycles during secret writes lose no acknowledged write`, async (t) => {
    let attempts = 0;
    let unacked = 0;
    for (let cycle = 0; cycle < WRITE_CYCLES; cycle++) {
      const c = client ?? (await start());
      if (cycle > 0) await verifyState(c, `before cycle ${cycle}`);
      const token = await clientToken(c, info, writer);
      let stop = false;
      const unexpected: string[] = [];
      const write = async (w: number) => {
        for (let k = 0; !stop; k++) {
          const name = `w${w}-${k % 7}`;
          const value = `v-${cycle}-${w}-${k}-${randomUUID()}`;
          attempts++;
          try {
            const r = await c.request('PUT', vaultUrl(`/secrets/${name}`), {
              headers: { authorization: `Bearer ${token}` },
              json: { value, contentType: 'text/plain', tags: { cycle: String(cycle) } },
            });
            if (r.status === 200) {
              const version = String(r.json.id).split('/').pop()!;
              acked.push({ name, value, version });
            } else if (!stop) unexpected.push(`${r.status} ${r.text.slice(0, 120)}`);
          } catch {
            unacked++; // the connection died with the process: not acknowledged, no promise made
            return;
          }
        }
      };
      const assertions = async () => {
        while (!stop) {
          const jwt = await assertion();
          attempts++;
          try {
            const r = await assertionToken(c, jwt);
            if (r.status === 200) spent.push(jwt);
            else if (!stop) unexpected.push(`assertion ${r.status} ${r.text.slice(0, 120)}`);
          } catch {
            unacked++;
            return;
          }
        }
      };
      const writers = [...Array.from({ length: WRITERS }, (_, w) => write(w)), assertions(), assertions()];
      await sleep(KILL_WINDOW[0] + Math.random() * (KILL_WINDOW[1] - KILL_WINDOW[0]));
      const ackedBefore = acked.length;
      const exit = await kill();
      stop = true;
      await Promise.all(writers);
      assert.equal(exit?.signal, 'SIGKILL');
      assert.deepEqual(unexpected, [], 'every answered write succeeded');
      assert.ok(acked.length >= ackedBefore, 'acked.length >= ackedBefore');
    }
    const c = await start();
    await verifyState(c, 'after the last cycle');
    t.diagnostic(
      `crash/writes: cycles=${WRITE_CYCLES} write and assertion attempts=${attempts} acknowledged writes=${acked.length} acknowledged assertions=${spent.length} cut off by the kill=${unacked}`,
    );
    assert.ok(acked.length >= WRITE_CYCLES, 'the writers got writes acknowledged');
    assert.ok(spent.length >= WRITE_CYCLES, 'assertions were acknowledged');
  });

  test(`${ROTATE_CYCLES} kill -9 cycles during signing-key rotation leave a usable active key`, async (t) => {
    let rotations = 0;
    let tokens = 0;
    for (let cycle = 0; cycle < ROTATE_CYCLES; cycle++) {
      const c = client ?? (await start());
      await verifyTokens(c);
      const at = await adminToken(c, info, admin);
      let stop = false;
      const unexpected: string[] = [];
      const rotate = async () => {
        while (!stop) {
          try {
            const r = await c.request('POST', '/api/authority/signingKeys/rotate', {
              headers: { authorization: `Bearer ${at}` },
            });
            if (r.status === 200) rotations++;
            else if (!stop) unexpected.push(`rotate ${r.status} ${r.text.slice(0, 120)}`);
          } catch {
            return;
          }
        }
      };
      const issue = async () => {
        while (!stop) {
          try {
            await clientToken(c, info, writer);
            tokens++;
          } catch (e) {
            if (!stop && !/ECONNRESET|socket hang up|ECONNREFUSED/.test(String(e)))
              unexpected.push(String(e));
            return;
          }
        }
      };
      const loops = [rotate(), rotate(), issue(), issue()];
      await sleep(KILL_WINDOW[0] + Math.random() * (KILL_WINDOW[1] - KILL_WINDOW[0]));
      await kill();
      stop = true;
      await Promise.all(loops);
      assert.deepEqual(unexpected, []);
    }
    const c = await start();
    await verifyTokens(c);
    await verifyState(c, 'after rotations');
    t.diagnostic(
      `crash/rotation: cycles=${ROTATE_CYCLES} rotations acknowledged=${rotations} tokens issued=${tokens}`,
    );
    assert.ok(rotations > 0, 'rotations happened');
  });

  /** After a restart: JWKS publishes the active key, a fresh token verifies against it and works at the vault. */
  async function verifyTokens(c: HttpClient) {
    const jwks = await c.request('GET', `/${info.tenantId}/discovery/v2.0/keys`);
    assert.equal(jwks.status, 200, jwks.text);
    assert.ok(jwks.json.keys.length >= 1, 'jwks.json.keys.length >= 1');
    const token = await clientToken(c, info, writer);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks.json), {
      audience: info.vaultResource,
    });
    assert.ok(
      jwks.json.keys.some((k: { kid: string }) => k.kid === protectedHeader.kid),
      'jwks.json.keys.some((k: { kid: string }) => k.kid === protectedHeader.kid)',
    );
    assert.equal(payload.tid, info.tenantId);
    const r = await c.request('GET', vaultUrl('/secrets?maxresults=1'), {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(r.status, 200, r.text);
  }
});
