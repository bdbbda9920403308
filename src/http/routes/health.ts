import type { FastifyInstance } from 'fastify';
import type { Services } from '../../server/services.js';
import { migrationsCurrent } from '../../storage/migrate.js';
import { ALL_MIGRATIONS } from '../../storage/migrations/index.js';

/**
 * Liveness (process up) and readiness (database reachable, schema current, store writable — not
 * full —, not shutting down).
 */
export async function healthRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'db' | 'lifecycle' | 'writeHealth'> },
) {
  const s = opts.services;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    // Shutting down: the load balancer should stop sending while in-flight requests finish.
    if (s.lifecycle.draining) return reply.code(503).send({ status: 'draining' });
    const db = await s.db.ping();
    const schema = db && (await migrationsCurrent(s.db, ALL_MIGRATIONS));
    // A full disk: 503 until a write (a request's, or the probe this check runs) commits again.
    const writable = db && (await s.writeHealth.check());
    if (!db || !schema || !writable)
      return reply.code(503).send({ status: 'unavailable', database: db, migrations: schema, writable });
    return { status: 'ready', database: true, migrations: true, writable: true };
  });
}
