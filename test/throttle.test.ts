import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthThrottle } from '../src/authority/throttle.js';
import { DEFAULT_LIMITS } from '../src/config/index.js';
import { fakeClock } from '../src/lib/clock.js';
import { openDatabase } from '../src/storage/open.js';
import type { Database } from '../src/storage/port.js';

/**
 * The authentication throttle with its shared count: two throttles on one database stand for
 * two nodes (test/scaleout.test.ts does the same with three real nodes on PostgreSQL).
 */
describe('authentication throttle shared through the database', () => {
  let db: Database;
  const clock = fakeClock(Date.UTC(2026, 10, 22, 12));
  const limits = {
    ...DEFAULT_LIMITS,
    authFailureLimit: 4,
    authFailureWindowMs: 60_000,
    authFailureSlowAfter: 2,
  };
  before(async () => {
    db = await openDatabase('sqlite::memory:');
  });
  after(() => db?.close());

  const refused = (t: ReturnType<typeof createAuthThrottle>, key: string) => {
    try {
      t.check([key]);
      return false;
    } catch (e) {
      return (e as { status?: number }).status === 429;
    }
  };

  test('failures on one node count on the other; the window ends; prune forgets', async () => {
    const a = createAuthThrottle({ clock, limits, db });
    const b = createAuthThrottle({ clock, limits, db });
    const key = 'c:tenant:client-1';
    await a.fail([key]);
    await a.fail([key]);
    await a.fail([key]);
    assert.equal(refused(b, key), false, 'b has seen nothing yet');
    // b's first failure brings the shared count to the limit: b refuses from now on, a too after its next.
    const delay = await b.fail([key]);
    assert.equal(delay, (4 - 2) * limits.authFailureDelayMs, 'the slow-down follows the shared count');
    assert.equal(refused(b, key), true);
    assert.equal(refused(a, key), false);
    await a.fail([key]);
    assert.equal(refused(a, key), true);
    // Addresses get five times the budget.
    for (let i = 0; i < 19; i++) await a.fail(['ip:192.0.2.1']);
    assert.equal(refused(a, 'ip:192.0.2.1'), false);
    await b.fail(['ip:192.0.2.1']);
    assert.equal(refused(b, 'ip:192.0.2.1'), true);

    clock.advance(60_000);
    assert.equal(refused(a, key), false, 'the window ended');
    await b.fail([key]);
    const row = await db.get<{ count: number }>('SELECT count FROM auth_failures WHERE key = $1', [key]);
    assert.equal(Number(row?.count), 1, 'a failure after the window starts a new one');
    clock.advance(60_000);
    assert.ok((await a.prune()) >= 2, '(await a.prune()) >= 2');
    assert.equal((await db.all('SELECT * FROM auth_failures')).length, 0);
  });

  test('a long key (a 16 KiB client id) is kept as its kind and a hash, and still counts', async () => {
    const t = createAuthThrottle({ clock, limits, db });
    const long = `c:tenant:${'x'.repeat(16_000)}`;
    const other = `c:tenant:${'x'.repeat(15_999)}y`;
    for (let i = 0; i < 4; i++) await t.fail([long]);
    assert.equal(refused(t, long), true);
    assert.equal(refused(t, other), false, 'another long key has its own count');
    const rows = await db.all<{ key: string }>("SELECT key FROM auth_failures WHERE key LIKE 'c:#%'");
    assert.equal(rows.length, 1);
    assert.match(rows[0]!.key, /^c:#[0-9a-f]{64}$/);
  });

  test('a success clears the client’s count where this node saw failures', async () => {
    const a = createAuthThrottle({ clock, limits, db });
    const key = 'u:tenant:alice';
    await a.fail([key]);
    await a.fail([key]);
    // The request does not wait for the shared row; the test waits for exactly that write.
    await a.succeed(key);
    assert.equal((await db.all('SELECT * FROM auth_failures WHERE key = $1', [key])).length, 0);
  });

  test('without the shared table the node still counts in memory (and says why)', async () => {
    const broken = await openDatabase('sqlite::memory:');
    await broken.run('DROP TABLE auth_failures');
    const warned: string[] = [];
    const t = createAuthThrottle({ clock, limits, db: broken, log: { warn: (_o, m) => warned.push(m) } });
    for (let i = 0; i < 4; i++) await t.fail(['c:t:x']);
    assert.equal(refused(t, 'c:t:x'), true);
    assert.equal(warned.length, 4);
    assert.match(warned[0]!, /shared failure count could not be written/);
    await broken.close();
  });
});

describe('authentication throttle: attempts in flight (guard)', () => {
  const clock = fakeClock(Date.UTC(2026, 11, 7, 12));
  const limits = {
    ...DEFAULT_LIMITS,
    authFailureLimit: 3,
    authFailureWindowMs: 60_000,
    authFailureSlowAfter: 10,
  };

  test('each attempt in flight counts as a failure until it settles; a success gives its slot back', async () => {
    const t = createAuthThrottle({ clock, limits });
    const keys = ['u:tenant:alice', 'ip:192.0.2.9'];
    const gates: (() => void)[] = [];
    const open = () => new Promise<void>((r) => gates.push(r));
    const results = Array.from({ length: 5 }, () =>
      t.guard(keys, open).then(
        () => 'ok',
        (e: { status?: number }) => String(e.status),
      ),
    );
    // The first three hold the user's three slots; the other two are refused at once.
    assert.equal(gates.length, 3);
    assert.deepEqual(await Promise.all(results.slice(3)), ['429', '429']);
    // They succeed (no failure counted): their slots come back.
    for (const g of gates) g();
    assert.deepEqual(await Promise.all(results.slice(0, 3)), ['ok', 'ok', 'ok']);
    await t.guard(keys, async () => undefined);
    // Failures inside the guard count as before: at the limit, refused.
    for (let i = 0; i < 3; i++)
      await t.guard(keys, async () => {
        await t.fail(keys);
      });
    await assert.rejects(
      t.guard(keys, async () => undefined),
      (e: { status?: number }) => e.status === 429,
    );
    // An attempt that throws gives its slot back too.
    const other = ['u:tenant:bob'];
    for (let i = 0; i < 5; i++)
      await assert.rejects(
        t.guard(other, async () => {
          throw new Error('storage down');
        }),
        /storage down/,
      );
    await t.guard(other, async () => undefined);
  });
});
