import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ProcessProbe } from '../src/identity-endpoint/session-processes.js';
import { createSessionRegistry, SessionStoreError } from '../src/identity-endpoint/sessions.js';
import { fakeClock } from '../src/lib/clock.js';
import { appServiceToken, claimsOf, identityStateDir, putApp, session } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** One well-formed session record of a version 1 file (no app row id). */
const V1_RECORD = {
  idHash: 'a'.repeat(64),
  headerHash: 'b'.repeat(64),
  app: 'web',
  pid: null,
  mark: null,
  createdAt: 1,
  expiresAt: 9_999_999_999_999,
};

/** A process table the test decides: pid → its current mark (absent: not running). */
function fakeProcesses(): ProcessProbe & { table: Map<number, string> } {
  const table = new Map<number, string>();
  return {
    table,
    mark: (pid) => table.get(pid) ?? null,
    alive: (pid, mark) => table.has(pid) && (mark === null || table.get(pid) === mark),
  };
}

describe('identity endpoint sessions: kept across restarts in the state dir', () => {
  let root: string;
  let n = 0;
  /** A fresh 0700 dir and the session file in it. */
  const fresh = () => {
    const dir = join(root, `s${n++}`);
    mkdirSync(dir, { mode: 0o700 });
    return join(dir, 'sessions.json');
  };
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'latchkey-sessions-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a session survives a reload: found by either secret, bound to its app', () => {
    const file = fresh();
    const clock = fakeClock(1_800_000_000_000);
    const processes = fakeProcesses();
    processes.table.set(4242, 'boot:1');
    processes.table.set(4343, 'boot:2');
    const a = createSessionRegistry({ file, hostId: 'h1', clock, processes });
    const web = a.create('Web-App', 4242);
    const api = a.create('api', 4343);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(
      readdirSync(join(file, '..')).filter((f) => f.endsWith('.tmp')),
      [],
      'no temp file left behind',
    );

    const b = createSessionRegistry({ file, hostId: 'h1', clock, processes });
    assert.deepEqual(b.loaded, { kept: 2, dropped: 0 });
    assert.equal(b.byHeader(web.header)?.app, 'Web-App');
    assert.equal(b.byHeader(web.header)?.appKey, 'web-app');
    assert.equal(b.byId(web.id)?.app, 'Web-App');
    assert.equal(b.byHeader(api.header)?.app, 'api');
    assert.equal(b.byId(api.id)?.app, 'api');
    // One secret is never the other, and one session's secret never finds another's session.
    assert.equal(b.byId(web.header), undefined);
    assert.equal(b.byHeader(web.id), undefined);
    assert.notEqual(b.byHeader(web.header)?.key, b.byHeader(api.header)?.key);
    // Unknown secrets are unknown (also with the hot-path memo warm).
    assert.equal(b.byHeader(`${web.header}x`), undefined);
    assert.equal(b.byId('0'.repeat(32)), undefined);
    assert.equal(b.byHeader('x'.repeat(10_000)), undefined);
  });

  test('the file holds no usable secret: digests only, nothing a workload presents', () => {
    const file = fresh();
    const reg = createSessionRegistry({ file, hostId: 'h1', processes: fakeProcesses() });
    const made = [reg.create('web', null), reg.create('api', null)];
    const text = readFileSync(file, 'utf8');
    for (const s of made) {
      assert.ok(!text.includes(s.id), 'the session id (IMDS prefix) is not in the file');
      assert.ok(!text.includes(s.header), 'the identity header is not in the file');
      assert.ok(!text.includes(Buffer.from(s.header, 'base64url').toString('hex')), 'nor its hex');
    }
    const parsed = JSON.parse(text) as { sessions: Record<string, unknown>[] };
    for (const r of parsed.sessions) {
      assert.deepEqual(Object.keys(r).sort(), [
        'app',
        'appRowId',
        'createdAt',
        'expiresAt',
        'headerHash',
        'idHash',
        'mark',
        'pid',
      ]);
      assert.match(String(r.idHash), /^[0-9a-f]{64}$/);
      assert.match(String(r.headerHash), /^[0-9a-f]{64}$/);
    }
    // Presenting what the file holds gets nothing.
    const again = createSessionRegistry({ file, hostId: 'h1', processes: fakeProcesses() });
    for (const r of parsed.sessions) {
      assert.equal(again.byHeader(String(r.headerHash)), undefined);
      assert.equal(again.byId(String(r.idHash).slice(0, 32)), undefined);
      assert.equal(again.byHeader(String(r.idHash)), undefined);
    }
  });

  test('an ended session leaves the file: deleted, its process gone, or its pid reused', () => {
    const file = fresh();
    const processes = fakeProcesses();
    for (const p of [10, 11, 12]) processes.table.set(p, `boot:${p}`);
    const reg = createSessionRegistry({ file, hostId: 'h1', processes });
    const gone = reg.create('web', 10);
    const reused = reg.create('web', 11);
    const ended = reg.create('web', 12);
    const idHashes = () =>
      (JSON.parse(readFileSync(file, 'utf8')) as { sessions: { idHash: string }[] }).sessions.length;
    assert.equal(idHashes(), 3);

    assert.equal(reg.delete(ended.id), true);
    assert.equal(reg.delete(ended.id), false);
    assert.equal(reg.byHeader(ended.header), undefined);
    assert.equal(idHashes(), 2, 'a deleted session leaves the file at once');

    processes.table.delete(10); // `latchkey run` exited without ending its session (kill -9)
    processes.table.set(11, 'boot:another-process'); // the pid now names another process
    assert.equal(reg.sweep(), 2);
    assert.equal(reg.byHeader(gone.header), undefined);
    assert.equal(reg.byHeader(reused.header), undefined);
    assert.equal(idHashes(), 0);
    assert.equal(createSessionRegistry({ file, hostId: 'h1', processes }).size, 0);
  });

  test('a reload drops the sessions whose process is gone (a reboot, a kill -9 while the endpoint was down)', () => {
    const file = fresh();
    const processes = fakeProcesses();
    processes.table.set(20, 'boot-1:5');
    processes.table.set(21, 'boot-1:6');
    const reg = createSessionRegistry({ file, hostId: 'h1', processes });
    const live = reg.create('web', 20);
    const dead = reg.create('web', 21);
    // The endpoint is down; one workload ends. After a reboot the same pid would carry another mark.
    processes.table.delete(21);
    const after = createSessionRegistry({ file, hostId: 'h1', processes });
    assert.deepEqual(after.loaded, { kept: 1, dropped: 1 });
    assert.equal(after.byHeader(live.header)?.app, 'web');
    assert.equal(after.byHeader(dead.header), undefined);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { sessions: unknown[] }).sessions.length, 1);
  });

  test('the real process probe: a session ends with its process, and a pid with another start time is not it', async () => {
    const file = fresh();
    const reg = createSessionRegistry({ file, hostId: 'h1' });
    const child = spawn(process.execPath, ['-e', 'process.stdin.resume()'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const pid = child.pid!;
    const mine = reg.create('web', process.pid);
    const theirs = reg.create('web', pid);
    assert.equal(reg.sweep(), 0);
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin.end();
    await exited;
    assert.equal(reg.sweep(), 1, 'the exited process’s session is swept');
    assert.equal(reg.byHeader(theirs.header), undefined);
    assert.equal(reg.byHeader(mine.header)?.app, 'web');
    if (process.platform === 'linux') {
      // The same pid, another start time: what a reused pid looks like after a reboot.
      const f = JSON.parse(readFileSync(file, 'utf8')) as { sessions: { mark: string | null }[] };
      assert.match(String(f.sessions[0]!.mark), /^[0-9a-f-]+:\d+$/);
      f.sessions[0]!.mark = `${f.sessions[0]!.mark}1`;
      writeFileSync(file, JSON.stringify(f), { mode: 0o600 });
      const reloaded = createSessionRegistry({ file, hostId: 'h1' });
      assert.deepEqual(reloaded.loaded, { kept: 0, dropped: 1 });
    }
  });

  test('expiry is kept and enforced after a reload (sessions without a process), on a fake clock', () => {
    const file = fresh();
    const clock = fakeClock(1_800_000_000_000);
    const processes = fakeProcesses();
    const opts = { file, hostId: 'h1', clock, processes, unboundMs: 60_000 };
    const reg = createSessionRegistry(opts);
    const s = reg.create('web', null);
    assert.equal(s.session.expiresAt, 1_800_000_060_000);
    clock.advance(59_999);
    const b = createSessionRegistry(opts);
    assert.equal(b.byHeader(s.header)?.app, 'web', 'not yet');
    clock.advance(1);
    assert.equal(b.byHeader(s.header), undefined, 'expired, in a reloaded registry');
    assert.equal(b.size, 0);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { sessions: unknown[] }).sessions.length, 0);
    // And a reload after the expiry does not bring it back (the file said when it ends).
    const file2 = fresh();
    const c = createSessionRegistry({ ...opts, file: file2 });
    const t = c.create('web', null);
    clock.advance(60_000);
    const d = createSessionRegistry({ ...opts, file: file2 });
    assert.deepEqual(d.loaded, { kept: 0, dropped: 1 });
    assert.equal(d.byId(t.id), undefined);
  });

  test("a session keeps its app's row id; a version 1 session is bound on first use; endWhere ends sessions", () => {
    const file = fresh();
    const processes = fakeProcesses();
    const reg = createSessionRegistry({ file, hostId: 'h1', processes });
    const bound = reg.create('web', null, undefined, 'row-1');
    assert.equal(bound.session.appRowId, 'row-1');
    const stored = () =>
      JSON.parse(readFileSync(file, 'utf8')) as { version: number; sessions: { appRowId: string | null }[] };
    assert.deepEqual([stored().version, stored().sessions[0]!.appRowId], [2, 'row-1']);
    assert.equal(createSessionRegistry({ file, hostId: 'h1', processes }).byId(bound.id)?.appRowId, 'row-1');

    // A version 1 file (before session 18): its sessions load unbound, and `bind` records the app once.
    const old = fresh();
    writeFileSync(
      old,
      JSON.stringify({
        version: 1,
        hostId: 'h1',
        sessions: [V1_RECORD],
      }),
      { mode: 0o600 },
    );
    const v1 = createSessionRegistry({ file: old, hostId: 'h1', processes });
    const [legacy] = v1.list();
    assert.equal(legacy?.appRowId, null);
    v1.bind(legacy!, 'row-7');
    v1.bind(legacy!, 'row-8'); // bound once: a later call changes nothing
    assert.equal(legacy?.appRowId, 'row-7');
    assert.equal(createSessionRegistry({ file: old, hostId: 'h1', processes }).list()[0]?.appRowId, 'row-7');

    // endWhere: the sessions it picks end, in memory and in the file.
    const other = reg.create('api', null, undefined, 'row-2');
    assert.equal(
      reg.endWhere((x) => x.appRowId === 'row-1'),
      1,
    );
    assert.equal(reg.byId(bound.id), undefined);
    assert.equal(reg.byHeader(bound.header), undefined);
    assert.equal(reg.byId(other.id)?.app, 'api');
    assert.deepEqual(
      stored().sessions.map((x) => x.appRowId),
      ['row-2'],
    );
    assert.equal(
      reg.endWhere(() => false),
      0,
    );
  });

  test('another host’s sessions are not reloaded', () => {
    const file = fresh();
    const processes = fakeProcesses();
    processes.table.set(30, 'x');
    const s = createSessionRegistry({ file, hostId: 'host-a', processes }).create('web', 30);
    const b = createSessionRegistry({ file, hostId: 'host-b', processes });
    assert.deepEqual(b.loaded, { kept: 0, dropped: 1 });
    assert.equal(b.byHeader(s.header), undefined);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { hostId: string }).hostId, 'host-b');
  });

  test('a file that cannot be trusted stops the start with a clear error', () => {
    const refused = (file: string, code: string, message: RegExp) =>
      assert.throws(
        () => createSessionRegistry({ file, hostId: 'h1', processes: fakeProcesses() }),
        (e: unknown) => {
          assert.ok(e instanceof SessionStoreError, String(e));
          assert.equal(e.code, code);
          assert.match(e.message, message);
          assert.ok(e.message.includes(file), 'the message names the file');
          return true;
        },
      );
    const write = (text: string, mode = 0o600) => {
      const f = fresh();
      writeFileSync(f, text, { mode });
      chmodSync(f, mode);
      return f;
    };
    const good = (sessions: unknown[]) => JSON.stringify({ version: 1, hostId: 'h1', sessions });
    const rec = V1_RECORD;
    refused(write('{"version":1,"hostId":"h1","sessions":['), 'corrupt', /is corrupt \(not JSON\)/);
    refused(write(''), 'corrupt', /not JSON/);
    refused(
      write(JSON.stringify({ version: 3, hostId: 'h1', sessions: [] })),
      'corrupt',
      /unknown version 3/,
    );
    // Version 1 records have no app row id; version 2 records must have one (or null).
    refused(write(good([{ ...rec, appRowId: null }])), 'corrupt', /malformed/);
    const v2 = (sessions: unknown[]) => JSON.stringify({ version: 2, hostId: 'h1', sessions });
    refused(write(v2([rec])), 'corrupt', /malformed/);
    refused(write(v2([{ ...rec, appRowId: 'x y' }])), 'corrupt', /malformed/);
    assert.equal(
      createSessionRegistry({ file: write(v2([{ ...rec, appRowId: null }])), hostId: 'h1' }).size,
      1,
    );
    refused(write(good([{ ...rec, idHash: 'A'.repeat(64) }])), 'corrupt', /session 0 is malformed/);
    refused(write(good([{ ...rec, app: 'web\nx' }])), 'corrupt', /malformed/);
    refused(write(good([{ ...rec, header: 'raw-secret' }])), 'corrupt', /malformed/);
    refused(
      write(good([rec, { ...rec, headerHash: 'c'.repeat(64) }])),
      'corrupt',
      /session 1 is a duplicate/,
    );
    refused(write(good([rec]), 0o644), 'unsafe', /open to other users \(mode 644; it must be 600\)/);
    refused(write(good([rec]), 0o620), 'unsafe', /mode 620/);
    const big = write(' '.repeat(8 * 1024 * 1024 + 1));
    refused(big, 'too_large', /larger than/);
    const link = fresh();
    symlinkSync(write(good([rec])), link);
    refused(link, 'unsafe', /not a regular file/);
    if (process.getuid?.() === 0) {
      const foreign = write(good([rec]));
      chownSync(foreign, 65534, 65534);
      refused(foreign, 'unsafe', /owned by uid 65534, not by this user \(uid 0\)/);
    }
    const many = write(good([rec, { ...rec, idHash: 'c'.repeat(64), headerHash: 'd'.repeat(64) }]));
    assert.throws(
      () => createSessionRegistry({ file: many, hostId: 'h1', max: 1, processes: fakeProcesses() }),
      /holds 2 sessions \(at most 1\)/,
    );
    // A well-formed file loads.
    assert.equal(createSessionRegistry({ file: write(good([rec])), hostId: 'h1' }).size, 1);
  });

  test('bounded: no session past the limit, and none left behind when the file cannot be written', () => {
    const file = fresh();
    const reg = createSessionRegistry({ file, hostId: 'h1', max: 2, processes: fakeProcesses() });
    reg.create('web', null);
    reg.create('web', null);
    assert.throws(
      () => reg.create('web', null),
      (e: unknown) => e instanceof SessionStoreError && e.code === 'too_many',
    );
    const gone = fresh();
    const lost = createSessionRegistry({ file: gone, hostId: 'h1', processes: fakeProcesses() });
    rmSync(join(gone, '..'), { recursive: true });
    assert.throws(
      () => lost.create('web', null),
      (e: unknown) => e instanceof SessionStoreError && e.code === 'unwritable',
    );
    assert.equal(lost.size, 0, 'a session that could not be recorded is not served');
  });
});

/**
 * A request on a new connection (fetch would reuse a keep-alive socket that the stopped endpoint
 * closed, and fail with "other side closed" before the request reaches the new one).
 */
function onNewConnection(
  url: string,
  headers: Record<string, string>,
  method = 'GET',
  // biome-ignore lint/suspicious/noExplicitAny: endpoint bodies are narrowed by the assertions that read them
): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => {
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {}
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('latchkey up restarted on the same data dir: workloads keep their sessions', () => {
  let dataDir: string;
  let s: TestServer | undefined;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'latchkey-sessions-up-'));
  });
  after(async () => {
    await s?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('tokens after the restart, each session still bound to its own app; the file leaks nothing; an ended one stays ended', async () => {
    s = await startTestServer({ dataDir });
    const port = Number(new URL(s.info.identityEndpoint!).port);
    const appA = await putApp(s, 'keep-a', { identity: { type: 'SystemAssigned' } });
    const appB = await putApp(s, 'keep-b', { identity: { type: 'SystemAssigned' } });
    const a = await session(s, 'keep-a');
    const b = await session(s, 'keep-b');
    const ended = await session(s, 'keep-a');
    for (const [sess, app] of [
      [a, appA],
      [b, appB],
    ] as const) {
      const t = await appServiceToken(s, sess);
      assert.equal(t.status, 200, JSON.stringify(t.json));
      assert.equal(claimsOf(t.json.access_token).oid, app.identity.principalId);
    }

    await s.stop();
    s = undefined;
    s = await startTestServer({ dataDir, identityPort: port });
    assert.equal(s.info.identityEndpoint, `http://127.0.0.1:${port}`);

    for (const [sess, app] of [
      [a, appA],
      [b, appB],
    ] as const) {
      const q = new URLSearchParams({ resource: s.info.vaultResource });
      const viaHeader = await onNewConnection(`${sess.identityEndpoint}?api-version=2019-08-01&${q}`, {
        'x-identity-header': sess.identityHeader,
      });
      assert.equal(viaHeader.status, 200, `App Service after the restart: ${JSON.stringify(viaHeader.json)}`);
      assert.equal(claimsOf(viaHeader.json.access_token).oid, app.identity.principalId);
      const viaImds = await onNewConnection(
        `${sess.imdsAuthorityHost}/metadata/identity/oauth2/token/?api-version=2018-02-01&${q}`,
        { metadata: 'true' },
      );
      assert.equal(viaImds.status, 200, `IMDS after the restart: ${JSON.stringify(viaImds.json)}`);
      assert.equal(claimsOf(viaImds.json.access_token).oid, app.identity.principalId);
    }
    // keep-a's session cannot reach keep-b's identity.
    const cross = await onNewConnection(
      `${a.identityEndpoint}?${new URLSearchParams({ 'api-version': '2019-08-01', resource: s.info.vaultResource, principal_id: appB.identity.principalId! })}`,
      { 'x-identity-header': a.identityHeader },
    );
    assert.equal(cross.status, 400);
    assert.equal(cross.json.error_description, 'Identity not found');

    // Nothing in the endpoint's state dir is a secret a workload presents.
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d, { withFileTypes: true }))
        f.isDirectory() ? walk(join(d, f.name)) : files.push(join(d, f.name));
    };
    walk(identityStateDir(s));
    assert.ok(
      files.some((f) => f.endsWith('sessions.json')),
      "files.some((f) => f.endsWith('sessions.json'))",
    );
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const sess of [a, b, ended])
        assert.ok(
          !text.includes(sess.sessionId) && !text.includes(sess.identityHeader),
          `${f} holds a session secret`,
        );
    }

    // A session ended after the restart is refused, and gone from the file.
    const secret = readFileSync(join(identityStateDir(s), 'control.secret'), 'utf8').trim();
    const control = `${s.info.identityEndpoint}/control/sessions`;
    const auth = { authorization: `Bearer ${secret}` };
    const del = await onNewConnection(`${control}/${ended.sessionId}`, auth, 'DELETE');
    assert.equal(del.status, 204);
    const refused = await onNewConnection(
      `${ended.identityEndpoint}?api-version=2019-08-01&resource=${encodeURIComponent(s.info.vaultResource)}`,
      { 'x-identity-header': ended.identityHeader },
    );
    assert.equal(refused.status, 401);
    const known = await onNewConnection(`${control}/${ended.sessionId}`, auth);
    assert.equal(known.status, 404);
    assert.equal(known.json.error, 'unknown_session');
    const still = await onNewConnection(`${control}/${a.sessionId}`, auth);
    assert.equal(still.status, 200);
    assert.equal(still.json.app, 'keep-a');
    const file = JSON.parse(readFileSync(join(identityStateDir(s), 'sessions.json'), 'utf8')) as {
      sessions: unknown[];
    };
    assert.equal(file.sessions.length, 2);
  });
});
