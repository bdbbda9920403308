import type { FastifyInstance, FastifyBaseLogger as Logger } from 'fastify';
import type { Services } from '../server/services.js';
import { createFastify, type RequestHandler } from './fastify.js';
import { instrumentHttp } from './metrics.js';

/** One of the server's apps: the Fastify instance, and the handler a listener routes requests to by Host. */
export interface ServedApp {
  app: FastifyInstance;
  handler: RequestHandler;
}

/**
 * Builds one of the server's apps (`main`: authority, management API, console; `vault`: the Key
 * Vault data plane): a Fastify instance with the server's limits and clock whose every route is
 * counted and timed for /metrics (instrumented before `build` adds any), then ready.
 */
export async function createServedApp(
  services: Pick<Services, 'config' | 'clock' | 'metrics'>,
  logger: Logger,
  name: 'main' | 'vault',
  build: (app: FastifyInstance) => Promise<void>,
  opts: { perAddressLimit?: boolean } = {},
): Promise<ServedApp> {
  const { app, handler } = createFastify({
    logger,
    limits: services.config.limits,
    clock: services.clock,
    ...opts,
  });
  instrumentHttp(app, services.metrics, name);
  try {
    await build(app);
    await app.ready();
  } catch (e) {
    // A failed build (the vault app is built on first use and retried) must leave nothing behind:
    // closing runs the onClose hooks of what was built so far (change-bus subscriptions).
    await app.close().catch(() => undefined);
    throw e;
  }
  return { app, handler: handler() };
}
