// The storage's async-context tracking (src/storage/tx-scope.ts, createTxContext): on Node 20 an
// enabled AsyncLocalStorage turns on V8's promise hooks, and every promise of the process pays for
// them. It must be on only while a transaction that needs it is open, and never for an `explicit`
// transaction (the audit log's batches, a client assertion's jti). node:test turns promise hooks
// on in its own process, so each dialect runs in a child (test/fixtures/tx-context-child.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { REPO_ROOT } from './helpers/cli.js';
import { createTestSchema } from './helpers/postgres.js';

const runChild = (dialect: 'sqlite' | 'postgres', where: string): Record<string, unknown> => {
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'test', 'fixtures', 'tx-context-child.ts'), dialect, where],
    { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
};

const expected = (dialect: 'sqlite' | 'postgres') => ({
  atStart: false,
  insideTransaction: true,
  currentInside: true,
  afterTransaction: false,
  insideExplicit: false,
  currentInsideExplicit: false,
  explicitRolledBack: true,
  ...(dialect === 'postgres' ? { oneOfTwoEnded: true } : {}),
  bothEnded: false,
  auditBatch: [false],
  auditBatchWritten: true,
  groupExplicit: [false, false],
  // SQLite: both writes share one batch, which the second makes tracked. (On PostgreSQL each is its
  // own transaction, and whether they overlap is the pool's timing: not asked.)
  ...(dialect === 'sqlite' ? { groupMixed: [true, true] } : {}),
  assertionJti: [false],
  assertionReplayRefused: true,
  atEnd: false,
});

describe('async-context tracking is on only while a transaction needs it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-txctx-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('SQLite', () => {
    assert.deepEqual(runChild('sqlite', join(dir, 'ctx.db')), expected('sqlite'));
  });

  test('PostgreSQL', async () => {
    const schema = await createTestSchema();
    try {
      assert.deepEqual(runChild('postgres', schema.url), expected('postgres'));
    } finally {
      await schema.drop();
    }
  });
});
