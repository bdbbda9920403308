import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Caller } from '../src/access/caller.js';
import { LatchkeyError } from '../src/errors/index.js';
import { fakeClock } from '../src/lib/clock.js';
import { createChangeBus, type RelayableChangeBus } from '../src/lib/events.js';
import type { SealedSecret } from '../src/storage/vault/secret-store.js';
import { createSecretCache } from '../src/vault/secret-cache.js';
import { createSecrets, type Secrets } from '../src/vault/secrets.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import { grant, putVault, vaultPrincipal, vaultToken } from './helpers/vault.js';

const API = 'api-version=7.5';

describe('secret cache: unit', () => {
  const row = (version: string) => ({ version }) as unknown as SealedSecret;

  test('a read under way while a change happened is not cached', () => {
    const cache = createSecretCache({ clock: fakeClock(0) });
    const mark = cache.mark();
    cache.changed('v', 's');
    cache.put('v', 's', row('old'), mark);
    assert.equal(cache.get('v', 's'), undefined);
    cache.put('v', 's', row('new'), cache.mark());
    assert.equal(cache.get('v', 's')?.version, 'new');
  });

  test('bounded: the least recently used goes first; entries expire after maxAgeMs', () => {
    const clock = fakeClock(0);
    const cache = createSecretCache({ clock, max: 2, maxAgeMs: 1000 });
    cache.put('v', 'a', row('a'), cache.mark());
    cache.put('v', 'b', row('b'), cache.mark());
    assert.ok(cache.get('v', 'a'), 'a is now the most recently used');
    cache.put('v', 'c', row('c'), cache.mark());
    assert.equal(cache.size, 2);
    assert.equal(cache.get('v', 'b'), undefined, 'b was the least recently used');
    assert.ok(cache.get('v', 'a'), "cache.get('v', 'a')");
    clock.advance(1000);
    assert.equal(cache.get('v', 'a'), undefined, 'stale after a second');
  });

  test('the bus: a change, a vault change or a resync heard from another node drops entries', () => {
    const bus = createChangeBus();
    const cache = createSecretCache({ clock: fakeClock(0), bus });
    const fill = () => {
      cache.put('v', 'a', row('a'), cache.mark());
      cache.put('v', 'b', row('b'), cache.mark());
    };
    fill();
    bus.deliver('secret', 'v|a');
    assert.equal(cache.get('v', 'a'), undefined);
    assert.ok(cache.get('v', 'b'), "cache.get('v', 'b')");
    bus.deliver('vault', 'somevault');
    assert.equal(cache.size, 0);
    fill();
    bus.resync();
    assert.equal(cache.size, 0);
    const heard: string[] = [];
    bus.relay = (_t, id) => heard.push(id);
    cache.changed('v', 'a');
    assert.deepEqual(heard, ['v|a'], 'a local change is relayed to the other nodes');
  });
});

describe('secret cache: two nodes on one store', () => {
  let s: TestServer;
  let officer: string;
  let nosy: string;
  let base: string;
  /** Node B: its own secrets service (its own cache) on the same store, its bus linked to node A's. */
  let nodeB: Secrets;
  let ctxB: () => Promise<Parameters<Secrets['get']>[0]>;
  const as = (token: string, method: string, path: string, json?: unknown) =>
    s.request(method, `${base}${path}?${API}`, {
      headers: { authorization: `Bearer ${token}` },
      ...(json === undefined ? {} : { json }),
    });
  const getB = async (name: string) => {
    try {
      const r = await nodeB.get(await ctxB(), name);
      return { status: 200, value: r.value, enabled: r.enabled, exp: r.exp };
    } catch (e) {
      if (e instanceof LatchkeyError) return { status: e.status, code: e.code, message: e.message };
      throw e;
    }
  };

  before(async () => {
    s = await startTestApp({ clock: fakeClock(Date.UTC(2026, 0, 1)) });
    const v = await putVault(s, 'cachevault');
    const sp = await vaultPrincipal(s, 'cache-officer');
    await grant(s, sp.id, 'Key Vault Secrets Officer', v.id);
    officer = await vaultToken(s, sp);
    nosy = await vaultToken(s, await vaultPrincipal(s, 'cache-nosy'));
    base = s.vaultUrl('cachevault');
    const busA = s.services.bus as RelayableChangeBus;
    const busB = createChangeBus();
    busA.relay = (t, i) => busB.deliver(t, i);
    busB.relay = (t, i) => busA.deliver(t, i);
    const svc = s.services;
    nodeB = createSecrets({
      db: svc.db,
      clock: svc.clock,
      sealer: svc.sealer,
      access: svc.access,
      audit: svc.audit,
      baseUrlOf: svc.vaultBaseUrl,
      bus: busB,
    });
    const caller: Caller = { tenantId: s.info.tenantId, oid: sp.id, appId: sp.appId, kind: 'app' };
    ctxB = async () => ({
      caller,
      meta: { requestId: 'node-b', clientIp: '127.0.0.1' },
      vault: (await svc.vaults.byName('cachevault'))!,
      baseUrl: svc.vaultBaseUrl('cachevault'),
    });
  });
  after(async () => {
    await s?.stop();
  });

  test('a change on node A is seen by the next GET on node B: set, disable, expire, delete, recover', async () => {
    assert.equal((await as(officer, 'PUT', '/secrets/shared', { value: 'one' })).status, 200);
    assert.equal((await getB('shared')).value, 'one');
    assert.equal((await getB('shared')).value, 'one', 'now from node B cache');
    assert.equal((await as(officer, 'PUT', '/secrets/shared', { value: 'two' })).status, 200);
    assert.equal((await getB('shared')).value, 'two', 'a new version');
    // Disabled: refused on both nodes, never served from either cache.
    assert.equal((await as(officer, 'GET', '/secrets/shared')).json.value, 'two', 'cached on node A too');
    assert.equal(
      (await as(officer, 'PATCH', '/secrets/shared', { attributes: { enabled: false } })).status,
      200,
    );
    assert.deepEqual(
      { ...(await getB('shared')), message: undefined },
      { status: 403, code: 'Forbidden', message: undefined },
    );
    assert.equal((await as(officer, 'GET', '/secrets/shared')).status, 403);
    assert.equal(
      (await as(officer, 'PATCH', '/secrets/shared', { attributes: { enabled: true } })).status,
      200,
    );
    assert.equal((await getB('shared')).value, 'two');
    // Expired: readable, as Azure (the attributes are the new ones, not the cached ones).
    const exp = Math.floor(Date.UTC(2025, 0, 1) / 1000);
    assert.equal((await as(officer, 'PATCH', '/secrets/shared', { attributes: { exp } })).status, 200);
    assert.equal((await getB('shared')).exp, exp * 1000);
    assert.equal((await as(officer, 'GET', '/secrets/shared')).json.attributes.exp, exp);
    // Deleted: 404 on both; recovered: back.
    assert.equal((await as(officer, 'DELETE', '/secrets/shared')).status, 200);
    assert.equal((await getB('shared')).status, 404);
    assert.equal((await as(officer, 'GET', '/secrets/shared')).status, 404);
    assert.equal((await as(officer, 'POST', '/deletedsecrets/shared/recover')).status, 200);
    assert.equal((await getB('shared')).value, 'two');
    // Purged, then set again: the new value.
    assert.equal((await as(officer, 'DELETE', '/secrets/shared')).status, 200);
    assert.equal((await as(officer, 'DELETE', '/deletedsecrets/shared')).status, 204);
    assert.equal((await as(officer, 'PUT', '/secrets/shared', { value: 'three' })).status, 200);
    assert.equal((await getB('shared')).value, 'three');
    // And the other way round: a change on node B is seen on node A.
    assert.equal((await as(officer, 'GET', '/secrets/shared')).json.value, 'three');
    await nodeB.set(await ctxB(), 'shared', { value: 'four' });
    assert.equal((await as(officer, 'GET', '/secrets/shared')).json.value, 'four');
  });

  test('authorization comes first: a refused caller gets the same answer, cached or not', async () => {
    assert.equal((await as(officer, 'PUT', '/secrets/private', { value: 'hidden' })).status, 200);
    const answer = async (name: string) => {
      const r = await as(nosy, 'GET', `/secrets/${name}`);
      return { status: r.status, error: r.json.error };
    };
    // Cold: nothing of it is cached yet.
    const cold = await answer('private');
    assert.equal(cold.status, 403);
    // Warm: the officer's GET caches the latest version on node A.
    assert.equal((await as(officer, 'GET', '/secrets/private')).json.value, 'hidden');
    assert.equal((await as(officer, 'GET', '/secrets/private')).json.value, 'hidden');
    assert.deepEqual(await answer('private'), cold);
    // And the same as for a name that does not exist (but for the scope the message names).
    const missing = await answer('nosuchsecret');
    assert.equal(
      missing.error.message.replace('/secrets/nosuchsecret', '/secrets/private'),
      cold.error.message,
    );
    assert.deepEqual(
      { ...missing, error: { ...missing.error, message: '' } },
      { ...cold, error: { ...cold.error, message: '' } },
    );
  });
});
