import type { FastifyInstance, FastifyBaseLogger as Logger } from 'fastify';
import { consoleSessionsOf } from '../console/session.js';
import { sendAzureError } from '../http/errors.js';
import { createServedApp, type ServedApp } from '../http/served-app.js';
import type { Services } from './services.js';

/**
 * The web console under `/console`, built on its first request instead of at start: its ~30
 * modules and ~140 routes cost about a sixth of a restart (docs/performance.md, cold start),
 * and most starts (CI, a developer's `latchkey up`) never open it.
 *
 * Registered in the main app with the prefix `/console`: every request under it (any method)
 * passes the main app's `onRequest` hook (the per-address rate limit, counted once, in the main
 * app's bucket), then is handed, unparsed, to the console's own Fastify app, built once (with
 * `@fastify/formbody` and the console's routes, hooks, error and not-found pages, exactly as
 * they were in the main app) and then reused. The console app counts its routes for /metrics
 * under `app="main"`, as before; the two forwarding routes here are not counted.
 */
export async function lazyConsole(
  app: FastifyInstance,
  opts: { services: Services; logger: Logger },
): Promise<void> {
  const { services, logger } = opts;
  // The sessions, and the job that prunes them, exist from the start (jobs start before the
  // first request).
  const sessions = consoleSessionsOf(services);
  let built: Promise<ServedApp> | undefined;
  const consoleApp = () => {
    built ??= buildConsoleApp(services, logger, sessions).catch((e: unknown) => {
      built = undefined; // the next request tries again
      throw e;
    });
    return built;
  };
  app.addHook('onClose', async () => {
    const c = await built?.catch(() => undefined);
    await c?.app.close();
  });
  // An error before the hand-over (the rate limit's 429, the console failing to load) gets the
  // console's error page, as it did when the console's routes were the main app's.
  app.setErrorHandler(async (err, req, reply) => {
    let page: typeof import('../console/routes.js').sendConsoleError;
    try {
      page = (await import('../console/routes.js')).sendConsoleError;
    } catch {
      return sendAzureError(err, req, reply);
    }
    return page(err, req, reply);
  });
  app.addHook('onRequest', async (req, reply) => {
    const c = await consoleApp();
    reply.hijack();
    c.handler(req.raw, reply.raw);
  });
  const unreachable = () => {
    throw new Error('the console app answers every request under /console');
  };
  const config = { forwarded: true };
  app.all('/', { config }, unreachable);
  app.all('/*', { config }, unreachable);
}

async function buildConsoleApp(
  services: Services,
  logger: Logger,
  sessions: ReturnType<typeof consoleSessionsOf>,
): Promise<ServedApp> {
  const [{ default: formbody }, { consoleRoutes }] = await Promise.all([
    import('@fastify/formbody'),
    import('../console/routes.js'),
  ]);
  return createServedApp(
    services,
    logger,
    'main',
    async (app) => {
      await app.register(formbody);
      await app.register(consoleRoutes, { services, sessions, prefix: '/console' });
    },
    { perAddressLimit: false },
  );
}
