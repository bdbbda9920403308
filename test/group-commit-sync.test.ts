// The group commit's fsync off the event loop (src/storage/sqlite.ts `syncOffLoop`), seen from
// the system calls of a child process under strace: a batch's write is answered only after an
// fdatasync of the write-ahead log that follows the batch's last write to it, that sync runs on a
// thread other than the event loop's, and a read issued while the batch is open answers (and
// sees the write) only after the sync too.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { REPO_ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-gc-sync-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// strace installed and allowed to trace here (ptrace may be refused in a container).
const hasStrace = spawnSync('strace', ['-f', '-o', '/dev/null', 'true']).status === 0;

// CI installs strace and sets LATCHKEY_REQUIRE_STRACE=1 (.ci/run): there a missing strace fails
// this test instead of skipping it.
describe('group commit: the durable sync (SQLite, strace)', {
  skip:
    !hasStrace &&
    process.env.LATCHKEY_REQUIRE_STRACE !== '1' &&
    'strace not installed or not allowed to trace',
}, () => {
  test('the WAL is fdatasynced after the batch wrote it, off the event loop, before the answer and before an outside read', () => {
    const db = join(dir, 'sync.db');
    const trace = join(dir, 'trace.txt');
    const child = spawnSync(
      'strace',
      [
        '-f',
        '-y',
        '-s',
        '16',
        '-e',
        'trace=pwrite64,write,fsync,fdatasync',
        '-o',
        trace,
        process.execPath,
        '--import',
        'tsx',
        join(REPO_ROOT, 'test', 'fixtures', 'group-commit-sync-child.ts'),
        db,
      ],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /READ 1\nACK\n|ACK\nREAD 1\n/, 'the read saw the committed write');
    const lines = readFileSync(trace, 'utf8').split('\n');
    const at = (re: RegExp, from = 0) => lines.findIndex((l, i) => i >= from && re.test(l));
    const tidOf = (i: number) => Number(/^(\d+)/.exec(lines[i] ?? '')?.[1]);
    const start = at(/write\(1<[^>]*>, "START/);
    const ack = at(/write\(1<[^>]*>, "ACK/);
    const readAt = at(/write\(1<[^>]*>, "READ/);
    assert.ok(start >= 0 && ack > start && readAt > start, 'the child announced its steps');
    const main = tidOf(start); // writeSync on the event loop's thread
    const walWrites = lines
      .map((l, i) => ({ l, i }))
      .filter(({ l, i }) => i > start && i < ack && /pwrite64\(\d+<[^>]*-wal>/.test(l));
    assert.ok(walWrites.length > 0, 'the batch wrote the write-ahead log');
    const lastWalWrite = walWrites.at(-1)!.i;
    // The sync's call and its result (strace splits them when another thread logs in between).
    const call = at(/(fdatasync|fsync)\(\d+<[^>]*-wal>/, lastWalWrite);
    assert.ok(
      call > lastWalWrite && call < ack,
      'the log was synced after its last write, before the answer',
    );
    const tid = tidOf(call);
    const done = /\)\s+= 0$/.test(lines[call]!)
      ? call
      : lines.findIndex((l, i) => i > call && tidOf(i) === tid && /resumed>.*\)\s+= 0$/.test(l));
    assert.ok(done > 0 && done < ack, 'the sync succeeded before the answer');
    assert.ok(done < readAt, 'the outside read answered only after the sync');
    assert.notEqual(tid, main, 'the sync ran on another thread than the event loop');
  });
});
