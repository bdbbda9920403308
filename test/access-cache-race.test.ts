import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Caller } from '../src/access/caller.js';
import { createAccess } from '../src/access/decision.js';
import { findRole } from '../src/access/roles.js';
import { fakeClock } from '../src/lib/clock.js';
import { createChangeBus } from '../src/lib/events.js';
import type { Database } from '../src/storage/port.js';

// The role-assignment cache of the decision point (src/access/decision.ts) against a read of the
// assignments that is under way while an assignment is removed: on PostgreSQL a read is a round
// trip, and its answer (taken before the removal committed) comes back after it.
describe('role-assignment cache: a read under way while an assignment is removed', () => {
  const tenantId = '11111111-1111-4111-8111-111111111111';
  const caller: Caller = { tenantId, oid: '22222222-2222-4222-8222-222222222222', appId: null, kind: 'app' };
  const scope = `/subscriptions/33333333-3333-4333-8333-333333333333`;
  const action = 'Microsoft.KeyVault/vaults/read';
  const row = {
    id: '44444444-4444-4444-8444-444444444444',
    tenant_id: tenantId,
    principal_id: caller.oid,
    role_id: findRole('Reader')!.id,
    scope,
    created_at: 0,
    created_by: null,
  };

  /** A database whose assignment reads take what is stored when they start and answer when released. */
  function slowStore() {
    let stored = [row];
    let held: (() => void) | undefined;
    let holding = false;
    const db = {
      dialect: 'postgres',
      async all(sql: string) {
        assert.match(sql, /FROM role_assignments WHERE principal_id/);
        const snapshot = stored;
        if (holding) await new Promise<void>((r) => (held = r));
        return snapshot;
      },
    } as unknown as Database; // only `all` is used by the assignment reads
    return {
      db,
      remove: () => (stored = []),
      hold: () => (holding = true),
      release: () => {
        holding = false;
        held?.();
      },
    };
  }
  const tick = () => new Promise((r) => setImmediate(r));

  test('a removal heard during the read: the read answers its request, and is not kept for the next', async () => {
    const store = slowStore();
    const bus = createChangeBus();
    const access = createAccess({ db: store.db, clock: fakeClock(), bus });
    store.hold();
    const underWay = access.allows(caller, action, scope);
    await tick();
    // The removal commits (on this node or another) and its notification arrives.
    store.remove();
    bus.deliver('roleAssignment', caller.oid);
    store.release();
    assert.equal(await underWay, true, 'the request under way decides on what it read');
    assert.equal(await access.allows(caller, action, scope), false, 'the next request is refused at once');
  });

  test('a removal not heard (a lost notification): the read is kept at most a second from when it started', async () => {
    const store = slowStore();
    const clock = fakeClock();
    const access = createAccess({ db: store.db, clock, bus: createChangeBus() });
    store.hold();
    const underWay = access.allows(caller, action, scope);
    await tick();
    store.remove(); // committed, but no notification comes
    clock.advance(400); // a slow answer
    store.release();
    assert.equal(await underWay, true);
    clock.advance(601); // 1,001 ms after the read started (and the removal committed)
    assert.equal(await access.allows(caller, action, scope), false, 'granted past the 1 s bound');
  });
});
