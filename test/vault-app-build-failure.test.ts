import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { createVaultApp } from '../src/http/vault-app.js';
import type { ChangeBus } from '../src/lib/events.js';
import { createLogger } from '../src/server/logger.js';
import { startTestApp, type TestServer } from './helpers/server.js';

// The vault app is built on the first request to a vault host, and a failed build is tried again
// by the next request (src/server/listen.ts). A failed build must leave nothing behind: before,
// each failure left the token cache's change-bus subscriptions in place (one more per retry).
let s: TestServer;
before(async () => {
  s = await startTestApp();
});
after(async () => {
  await s.close();
});

/** The services' bus, counting the subscriptions held through it. */
function countingBus(bus: ChangeBus) {
  let held = 0;
  const track = (unsubscribe: () => void) => {
    held++;
    let done = false;
    return () => {
      if (!done) held--;
      done = true;
      unsubscribe();
    };
  };
  const counted: ChangeBus = {
    publish: (topic, id) => bus.publish(topic, id),
    subscribe: (topic, fn) => track(bus.subscribe(topic, fn)),
    onResync: (fn) => track(bus.onResync(fn)),
  };
  return { bus: counted, held: () => held };
}

const silent = createLogger('silent' as never) as unknown as FastifyBaseLogger;

/** Builds the vault app `times` times with reading the service `failing` throwing; the subscriptions left. */
async function failingBuilds(failing: string, times: number): Promise<number> {
  const counting = countingBus(s.services.bus);
  const broken = new Proxy(s.services, {
    get(target, prop, receiver) {
      if (prop === 'bus') return counting.bus;
      if (prop === failing) throw new Error(`injected failure reading ${failing}`);
      return Reflect.get(target, prop, receiver);
    },
  });
  for (let i = 0; i < times; i++) await assert.rejects(createVaultApp(broken, silent), /injected failure/);
  return counting.held();
}

test('a vault app whose build fails leaves no change-bus subscription behind, however often it is retried', async () => {
  // Fails while the app is built, after the token cache has subscribed: the authenticator reads
  // the per-principal limiter right after the cache is made.
  assert.equal(await failingBuilds('principalLimiter', 5), 0, 'subscriptions left by failed builds');
});

test('a build that fails inside a registered route plugin (Fastify has started loading) leaves nothing either', async () => {
  // The certificate routes read their service when Fastify loads the plugin, after the hooks and
  // the secret and key routes are in: the failure comes out of `register`, not out of our code.
  assert.equal(await failingBuilds('certificates', 3), 0, 'subscriptions left by failed builds');
});

test('a vault app that is built and closed leaves the bus as it found it', async () => {
  const services = s.services;
  const counting = countingBus(services.bus);
  const withBus = new Proxy(services, {
    get: (target, prop, receiver) => (prop === 'bus' ? counting.bus : Reflect.get(target, prop, receiver)),
  });
  const built = await createVaultApp(withBus, silent);
  assert.ok(counting.held() > 0, 'the built app listens on the bus');
  await built.app.close();
  assert.equal(counting.held(), 0);
  await built.app.close(); // a second close (shutdown after a failed start) is harmless
  assert.equal(counting.held(), 0);
});
