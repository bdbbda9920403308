// The key-version cache of the crypto operations (src/vault/key-record-cache.ts): after every
// change to a key, the very next sign on this node and on a second node sharing the store
// answers as from SQL. The clock is fake and not advanced between a change and the next sign,
// so no entry can expire on its own: only the invalidation makes these pass.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { LatchkeyError } from '../src/errors/index.js';
import { fakeClock } from '../src/lib/clock.js';
import { createChangeBus, type RelayableChangeBus } from '../src/lib/events.js';
import { createKeyDomain } from '../src/vault/key-domain.js';
import type { KeyCallContext } from '../src/vault/key-guard.js';
import type { KeyRecord } from '../src/vault/key-model.js';
import { createKeyRecordCache } from '../src/vault/key-record-cache.js';
import { type ServiceVault, startServiceVault } from './helpers/service-vault.js';

const DAY = 86_400_000;

describe('key-version cache: unit', () => {
  const rec = (version: string) => ({ version }) as unknown as KeyRecord;

  test('a change drops every cached version of the name, and only of that name; reads under way are not kept', () => {
    const bus = createChangeBus();
    const cache = createKeyRecordCache({ clock: fakeClock(0), bus });
    const fill = () => {
      for (const v of [undefined, 'v1', 'v2']) cache.put('vault', 'a', v, rec(v ?? 'latest'), cache.mark());
      cache.put('vault', 'ab', undefined, rec('ab'), cache.mark());
    };
    fill();
    assert.equal(cache.get('vault', 'a', 'v1')?.version, 'v1');
    assert.equal(cache.get('vault', 'a', undefined)?.version, 'latest');
    const heard: string[] = [];
    bus.relay = (_t, id) => heard.push(id);
    const mark = cache.mark();
    cache.changed('vault', 'a');
    assert.deepEqual(heard, ['vault|a'], 'a local change is relayed to the other nodes');
    for (const v of [undefined, 'v1', 'v2']) assert.equal(cache.get('vault', 'a', v), undefined);
    assert.equal(cache.get('vault', 'ab', undefined)?.version, 'ab', 'another name is kept');
    cache.put('vault', 'a', 'v1', rec('old'), mark);
    assert.equal(cache.get('vault', 'a', 'v1'), undefined, 'read before the change: not cached');
    fill();
    bus.deliver('key', 'vault|a');
    assert.equal(cache.get('vault', 'a', 'v2'), undefined, 'heard from another node');
    bus.deliver('vault', 'somevault');
    assert.equal(cache.size, 0);
    fill();
    bus.resync();
    assert.equal(cache.size, 0);
  });
});

describe('key-version cache: two nodes on one store, every change', () => {
  let sv: ServiceVault;
  let ctx: KeyCallContext;
  const clock = fakeClock(Date.UTC(2026, 0, 10, 12));
  /** Node B: its own keys services (its own caches) on the same store, its bus linked to node A's. */
  let nodeB: ReturnType<typeof createKeyDomain>;

  before(async () => {
    sv = await startServiceVault({
      clock,
      vaultName: 'keycache',
      role: 'Key Vault Administrator',
      dirPrefix: 'latchkey-key-cache-',
    });
    ctx = sv.ctx;
    const svc = sv.services;
    const busA = svc.bus as RelayableChangeBus;
    const busB = createChangeBus();
    busA.relay = (t, i) => busB.deliver(t, i);
    busB.relay = (t, i) => busA.deliver(t, i);
    nodeB = createKeyDomain({
      db: svc.db,
      clock,
      sealer: svc.sealer,
      access: svc.access,
      audit: svc.audit,
      jobs: { add: () => undefined },
      baseUrlOf: svc.vaultBaseUrl,
      bus: busB,
    });
  });
  after(async () => {
    await sv?.close();
  });

  /** The outcome of an ES256 sign on a node: the version that signed, or the error's status and inner code. */
  const sign = async (node: 'A' | 'B', name: string, version?: string) => {
    const ops = node === 'A' ? sv.services.keyOperations : nodeB.keyOperations;
    try {
      return (await ops.sign(ctx, name, version, 'ES256', randomBytes(32))).version;
    } catch (e) {
      if (!(e instanceof LatchkeyError)) throw e;
      const { inner } = e;
      return `${e.status}${inner ? ` ${inner}` : ''}`;
    }
  };
  /** Signs twice on each node (the second from the cache) and checks all four answers. */
  const expectEverywhere = async (name: string, version: string | undefined, expected: string) => {
    for (const node of ['A', 'B', 'A', 'B'] as const)
      assert.equal(await sign(node, name, version), expected, `${node}: ${name}/${version ?? 'latest'}`);
  };

  test('update (enabled, key_ops, exp, nbf), rotate, delete, recover, purge, create again, restore', async () => {
    const { keys, keyBackups } = sv.services;
    const v1 = (await keys.create(ctx, 'k', { kty: 'EC', curve: 'P-256' })).version;
    await expectEverywhere('k', v1, v1);
    await expectEverywhere('k', undefined, v1);

    await keys.update(ctx, 'k', v1, { enabled: false });
    await expectEverywhere('k', v1, '403 KeyDisabled');
    await expectEverywhere('k', undefined, '403 KeyDisabled');
    await keys.update(ctx, 'k', v1, { enabled: true });
    await expectEverywhere('k', v1, v1);

    await keys.update(ctx, 'k', v1, { keyOps: ['verify'] });
    await expectEverywhere('k', v1, '403 KeyOperationForbidden');
    await keys.update(ctx, 'k', v1, { keyOps: ['sign', 'verify'] });
    await expectEverywhere('k', v1, v1);

    await keys.update(ctx, 'k', v1, { exp: clock.now() - DAY });
    await expectEverywhere('k', v1, '403 KeyExpired');
    await keys.update(ctx, 'k', v1, { exp: null, nbf: clock.now() + DAY });
    await expectEverywhere('k', v1, '403 KeyNotYetValid');
    await keys.update(ctx, 'k', v1, { nbf: null });
    await expectEverywhere('k', undefined, v1);

    const v2 = (await keys.rotate(ctx, 'k')).version;
    await expectEverywhere('k', undefined, v2);
    await expectEverywhere('k', v1, v1);

    const blob = await keyBackups.backup(ctx, 'k');
    await keys.delete(ctx, 'k');
    await expectEverywhere('k', undefined, '404');
    await expectEverywhere('k', v1, '404');
    await keys.recover(ctx, 'k');
    await expectEverywhere('k', undefined, v2);
    await expectEverywhere('k', v1, v1);

    await keys.delete(ctx, 'k');
    await expectEverywhere('k', v1, '404');
    await keys.purge(ctx, 'k');
    await expectEverywhere('k', v1, '404');
    await keyBackups.restore(ctx, blob);
    await expectEverywhere('k', undefined, v2);
    await expectEverywhere('k', v1, v1);

    await keys.delete(ctx, 'k');
    await keys.purge(ctx, 'k');
    const v3 = (await keys.create(ctx, 'k', { kty: 'EC', curve: 'P-256' })).version;
    await expectEverywhere('k', undefined, v3);
    await expectEverywhere('k', v1, '404');

    // And a change on node B is seen on node A (and B) at once.
    await nodeB.keys.update(ctx, 'k', undefined, { enabled: false });
    await expectEverywhere('k', undefined, '403 KeyDisabled');
  });

  test("a key's parsed private key leaves node B's memory when A changes, deletes or purges it, or a vault changes", async () => {
    const { keys } = sv.services;
    const busA = sv.services.bus;
    const v1 = (await keys.create(ctx, 'parsed', { kty: 'EC', curve: 'P-256' })).version;
    const heldOnB = () => nodeB.parsedKeys.holds(ctx.vault.id, 'parsed');
    await expectEverywhere('parsed', v1, v1);
    assert.ok(heldOnB(), 'B parsed the key to sign');
    await keys.update(ctx, 'parsed', v1, { tags: { t: '1' } });
    assert.ok(!heldOnB(), 'dropped on B when A changed the key');
    await expectEverywhere('parsed', v1, v1);
    assert.ok(heldOnB());
    await keys.delete(ctx, 'parsed');
    assert.ok(!heldOnB(), 'dropped on B when A deleted the key');
    await keys.purge(ctx, 'parsed');
    assert.ok(!heldOnB(), 'not held on B after the purge');
    // A vault changed (or purged) elsewhere: B cannot tell which keys were its, so it drops all.
    const v2 = (await keys.create(ctx, 'parsed', { kty: 'EC', curve: 'P-256' })).version;
    await expectEverywhere('parsed', v2, v2);
    assert.ok(heldOnB());
    busA.publish('vault', 'some-other-vault');
    assert.ok(!heldOnB(), 'dropped on B when a vault changed');
    await expectEverywhere('parsed', v2, v2);
  });

  test('the rotation job and the purge job', async () => {
    const { keys, keyPolicies, jobs } = sv.services;
    const v1 = (await keys.create(ctx, 'auto', { kty: 'EC', curve: 'P-256' })).version;
    await keyPolicies.set(ctx, 'auto', {
      lifetimeActions: [{ trigger: { timeAfterCreate: 'P30D' }, action: { type: 'Rotate' } }],
      expiryTime: 'P60D',
    });
    clock.advance(31 * DAY);
    await expectEverywhere('auto', undefined, v1); // cached at the new time
    assert.ok(await jobs.runNow('key-rotation'));
    const v2 = (await keys.get(ctx, 'auto')).version;
    assert.notEqual(v2, v1);
    await expectEverywhere('auto', undefined, v2);

    await keys.delete(ctx, 'auto');
    clock.advance(8 * DAY); // past the vault's 7-day retention
    await expectEverywhere('auto', v2, '404');
    assert.ok(await jobs.runNow('key-purge'));
    const v3 = (await nodeB.keys.create(ctx, 'auto', { kty: 'EC', curve: 'P-256' })).version;
    await expectEverywhere('auto', undefined, v3);
  });

  test("a certificate's key: new version, disable, delete, recover, purge", async () => {
    const { certificates } = sv.services;
    const policy = { issuer: { name: 'Self' }, x509_props: { subject: 'CN=ck' }, key_props: { kty: 'EC' } };
    await certificates.create(ctx, 'ck', { policy } as never);
    const v1 = (await certificates.get(ctx, 'ck')).version;
    await expectEverywhere('ck', undefined, v1);
    await certificates.create(ctx, 'ck', { policy } as never);
    const v2 = (await certificates.get(ctx, 'ck')).version;
    await expectEverywhere('ck', undefined, v2);
    await certificates.update(ctx, 'ck', v2, { enabled: false });
    await expectEverywhere('ck', v2, '403 KeyDisabled');
    await certificates.update(ctx, 'ck', v2, { enabled: true });
    await expectEverywhere('ck', v2, v2);
    await certificates.delete(ctx, 'ck');
    await expectEverywhere('ck', v2, '404');
    await certificates.recover(ctx, 'ck');
    await expectEverywhere('ck', v2, v2);
    await certificates.delete(ctx, 'ck');
    await certificates.purge(ctx, 'ck');
    const v3 = (await sv.services.keys.create(ctx, 'ck', { kty: 'EC', curve: 'P-256' })).version;
    await expectEverywhere('ck', undefined, v3);
    await expectEverywhere('ck', v1, '404');
  });

  test("a certificate's renewal by the lifetime job", async () => {
    const { certificates, jobs } = sv.services;
    await certificates.create(ctx, 'renewed', {
      policy: {
        issuer: { name: 'Self' },
        key_props: { kty: 'EC' },
        x509_props: { subject: 'CN=renewed', validity_months: 1 },
        lifetime_actions: [{ trigger: { days_before_expiry: 10 }, action: { action_type: 'AutoRenew' } }],
      },
    } as never);
    const first = await certificates.get(ctx, 'renewed');
    clock.set(first.exp! - 10 * DAY + 1000);
    await expectEverywhere('renewed', undefined, first.version); // cached at the new time
    assert.ok(await jobs.runNow('certificate-lifetime', clock.now()));
    const renewed = (await certificates.get(ctx, 'renewed')).version;
    assert.notEqual(renewed, first.version);
    await expectEverywhere('renewed', undefined, renewed);
  });
});
