import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Caller } from '../src/access/caller.js';
import { createAccess } from '../src/access/decision.js';
import { findRole } from '../src/access/roles.js';
import { createPrincipals } from '../src/authority/principals.js';
import { createSigningKeys } from '../src/authority/signing-keys.js';
import { createTenants } from '../src/authority/tenants.js';
import { createSealer } from '../src/crypto/envelope.js';
import { generateRootKeyText, parseRootKey } from '../src/crypto/root-key.js';
import { createChangeCache } from '../src/lib/change-cache.js';
import { fakeClock } from '../src/lib/clock.js';
import { createChangeBus } from '../src/lib/events.js';
import { dataKeyStore } from '../src/storage/crypto/data-key-store.js';
import { openDatabase } from '../src/storage/open.js';
import type { Database } from '../src/storage/port.js';
import { createVaultLookup } from '../src/vault/vault-lookup.js';

const tick = () => new Promise((r) => setImmediate(r));

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
      current: () => undefined,
      async all(sql: string) {
        assert.match(sql, /FROM role_assignments WHERE principal_id/);
        const snapshot = stored;
        if (holding) await new Promise<void>((r) => (held = r));
        return snapshot;
      },
    } as unknown as Database; // only `all` (and `current`) are used by the assignment reads
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

/**
 * `db` whose `method` reads (of SQL matching `sql`) answer with what they read only when released,
 * while `hold()` is in force: a read that a change overtakes.
 */
function gated(db: Database, method: 'get' | 'all', sql: RegExp) {
  let holding = false;
  let held: (() => void) | undefined;
  const wrapped = new Proxy(db, {
    get(target, prop) {
      if (prop === method)
        return async (text: string, params?: unknown[]) => {
          const r = await target[method](text, params as never);
          if (holding && sql.test(text)) await new Promise<void>((res) => (held = res));
          return r;
        };
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return {
    db: wrapped,
    hold: () => (holding = true),
    release: () => {
      holding = false;
      held?.();
    },
  };
}

// The same for the principal state read by request authentication (src/authority/principals.ts):
// a principal disabled while its state is being read must not be served from memory afterwards.
describe('principal state cache: a read under way while the principal is disabled', () => {
  test('a disable heard during the read: the next authentication sees it', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      const clock = fakeClock();
      const tenant = await createTenants({ db, clock }).create({ displayName: 'T', domain: 't.example' });
      const other = createPrincipals({ db, clock, bus: createChangeBus() }); // another node
      const sp = await other.createServicePrincipal(tenant.id, { displayName: 'sp' });
      const g = gated(db, 'get', /FROM principals/);
      const bus = createChangeBus();
      const principals = createPrincipals({ db: g.db, clock, bus });
      g.hold();
      const underWay = principals.current(sp.id);
      await tick();
      await other.setEnabled(tenant.id, sp.id, false);
      bus.deliver('principal', sp.id);
      g.release();
      assert.equal((await underWay)?.enabled, true, 'the request under way decides on what it read');
      assert.equal((await principals.current(sp.id))?.enabled, false, 'the next one sees the disable');
    } finally {
      await db.close();
    }
  });
});

/** A `vaults` row as the store reads it (vault1; access policies, or RBAC when `policies` is null). */
const vaultRow = (policies: unknown[] | null) => ({
  id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/vault1',
  name: 'vault1',
  name_lower: 'vault1',
  tenant_id: '11111111-1111-4111-8111-111111111111',
  subscription_id: 's',
  resource_group: 'rg',
  location: 'local',
  sku: 'standard',
  enable_rbac_authorization: policies === null ? 1 : 0,
  soft_delete_retention_days: 90,
  enable_purge_protection: 0,
  access_policies: JSON.stringify(policies ?? []),
  tags: '{}',
  deleted_at: null,
  scheduled_purge_at: null,
  created_at: 0,
  updated_at: 0,
});

// And the vault lookup by host (src/vault/vault-lookup.ts): access policies, RBAC mode, deletion.
describe('vault lookup: a read under way while the vault changes', () => {
  test('an access policy removed during the read: the next request sees the vault without it', async () => {
    const granted = [{ tenantId: 't', objectId: 'o', permissions: { secrets: ['get'] } }];
    let stored = vaultRow(granted);
    let held: (() => void) | undefined;
    let holding = true;
    const db = {
      dialect: 'postgres',
      current: () => undefined,
      async get() {
        const snapshot = stored;
        if (holding) await new Promise<void>((r) => (held = r));
        return snapshot;
      },
    } as unknown as Database; // only `get` (and `current`) are used by the lookup
    const bus = createChangeBus();
    const byName = createVaultLookup(db, fakeClock(), bus);
    const underWay = byName('vault1');
    await tick();
    stored = vaultRow([]);
    bus.deliver('vault', 'vault1');
    holding = false;
    held?.();
    assert.equal((await underWay)?.accessPolicies.length, 1, 'the request under way decides on what it read');
    assert.equal((await byName('vault1'))?.accessPolicies.length, 0, 'the next one sees the change');
  });
});

// The shared cache behind the secret, credential, tenant and client caches (src/lib/change-cache.ts).
describe('change cache: an entry is aged from when its read started', () => {
  test('a slow read of a row changed meanwhile (notification lost) is kept at most maxAge from its start', () => {
    const clock = fakeClock();
    const cache = createChangeCache<string>({ clock, max: 10, maxAgeMs: 1_000 });
    const mark = cache.mark(); // the read starts (the row is changed just after, unheard)
    clock.advance(400); // ...and answers late
    cache.put('k', 'old', mark);
    clock.advance(599);
    assert.equal(cache.get('k'), 'old', 'fresh 999 ms after the read started');
    clock.advance(2);
    assert.equal(cache.get('k'), undefined, 'kept past 1 s after the read started');
  });
});

// The token signing keys (src/authority/signing-keys.ts): another node's rotation heard while this
// node re-reads the keys must not be hidden by that re-read for the next 10 s.
describe('signing keys: a reload under way while another node rotates', () => {
  test('the next call after the notification uses the new active key', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      const sealer = await createSealer(dataKeyStore(db), parseRootKey(generateRootKeyText()));
      const clock = fakeClock();
      const g = gated(db, 'all', /FROM signing_keys/);
      const opts = { sealer, clock, alg: 'RS256' as const, overlapSeconds: 3600 };
      const bus = createChangeBus();
      const keys = createSigningKeys({ db: g.db, bus, ...opts });
      const other = createSigningKeys({ db, bus: createChangeBus(), ...opts }); // another node
      await keys.init();
      await other.init();
      const first = (await keys.active()).kid;
      clock.advance(10_001); // due for its periodic re-read
      g.hold();
      const underWay = keys.active();
      await tick();
      const { kid } = await other.rotate();
      bus.deliver('signingKey', kid);
      g.release();
      assert.equal((await underWay).kid, first, 'the call under way signs with what it read');
      assert.equal((await keys.active()).kid, kid, 'the next one signs with the new key');
    } finally {
      await db.close();
    }
  });
});

// A read made inside a transaction sees that transaction's uncommitted rows; a rollback publishes
// no change that would drop what it cached (a manifest that grants a role, then fails and rolls
// back, left the grant in the decision point's cache: requests behind it were served with it).
describe('caches and transactions: what a transaction read is not kept after it rolls back', () => {
  test('role assignments: granted inside the transaction, refused after its rollback', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      const clock = fakeClock();
      const bus = createChangeBus();
      const tenant = await createTenants({ db, clock }).create({ displayName: 'T', domain: 't.example' });
      const sp = await createPrincipals({ db, clock, bus }).createServicePrincipal(tenant.id, {
        displayName: 'sp',
      });
      const access = createAccess({ db, clock, bus });
      const caller: Caller = { tenantId: tenant.id, oid: sp.id, appId: sp.appId, kind: 'app' };
      const scope = '/subscriptions/33333333-3333-4333-8333-333333333333';
      const action = 'Microsoft.KeyVault/vaults/read';
      await assert.rejects(
        db.transaction(async () => {
          await access.create(tenant.id, { principalId: sp.id, role: findRole('Reader')!, scope });
          assert.equal(
            await access.allows(caller, action, scope),
            true,
            'the transaction sees its own grant',
          );
          throw new Error('a later step fails: roll back');
        }),
        /roll back/,
      );
      assert.equal(await access.allows(caller, action, scope), false, 'no grant after the rollback');
    } finally {
      await db.close();
    }
  });

  test('the shared change cache: a mark taken inside a transaction is never kept', () => {
    let inside = true;
    const cache = createChangeCache<string>({
      clock: fakeClock(),
      max: 10,
      maxAgeMs: 1_000,
      inTransaction: () => inside,
    });
    cache.put('k', 'uncommitted', cache.mark());
    assert.equal(cache.get('k'), undefined);
    inside = false;
    cache.put('k', 'committed', cache.mark());
    assert.equal(cache.get('k'), 'committed');
  });
});

// Cached entries age on the monotonic clock: a wall-clock step back (NTP, a VM resumed) must not
// keep a changed row (its notification lost) past the one-second bound.
describe('caches and clock steps: entries age on the monotonic clock', () => {
  test('the change cache, the vault lookup and the principal state: a step back keeps nothing longer', async () => {
    const clock = fakeClock();
    const cache = createChangeCache<string>({ clock, max: 10, maxAgeMs: 1_000 });
    cache.put('k', 'v', cache.mark());
    clock.set(clock.now() - 3_600_000); // the wall clock steps back an hour
    clock.advance(1_001);
    assert.equal(cache.get('k'), undefined, 'the change cache');

    let reads = 0;
    const db = {
      dialect: 'postgres',
      current: () => undefined,
      async get() {
        reads++;
        return vaultRow(null);
      },
    } as unknown as Database;
    const byName = createVaultLookup(db, clock, createChangeBus());
    const real = await openDatabase('sqlite::memory:');
    try {
      const tenant = await createTenants({ db: real, clock }).create({
        displayName: 'T',
        domain: 't.example',
      });
      const principals = createPrincipals({ db: real, clock, bus: createChangeBus() });
      const sp = await principals.createServicePrincipal(tenant.id, { displayName: 'sp' });
      assert.equal((await principals.current(sp.id))?.enabled, true);
      await createPrincipals({ db: real, clock, bus: createChangeBus() }).setEnabled(tenant.id, sp.id, false); // unheard
      clock.set(clock.now() - 3_600_000);
      clock.advance(1_001);
      assert.equal((await principals.current(sp.id))?.enabled, false, 'the principal state');
    } finally {
      await real.close();
    }
    await byName('vault1');
    await byName('vault1');
    assert.equal(reads, 1, 'an active vault is served from memory within the second');
    const before = reads;
    clock.set(clock.now() - 3_600_000);
    clock.advance(1_001);
    await byName('vault1');
    assert.equal(reads, before + 1, 'the vault lookup reads again');
  });
});
