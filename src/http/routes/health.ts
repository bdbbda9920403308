import type { FastifyInstance } from 'fastify';
import type { Services } from '../../server/services.js';
import { migrationsCurrent } from '../../storage/migrate.js';
import { ALL_MIGRATIONS } from '../../storage/migrations/index.js';

/** Liveness (process up) and readiness (database reachable, schema current, not shutting down). */
export async function healthRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'db' | 'lifecycle'> },
) {
  const s = opts.services;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    // Shutting down: the load balancer should stop sending while in-flight requests finish.
    if (s.lifecycle.draining) return reply.code(503).send({ status: 'draining' });
    const db = await s.db.ping();
    const schema = db && (await migrationsCurrent(s.db, ALL_MIGRATIONS));
    if (!db || !schema)
      return reply.code(503).send({ status: 'unavailable', database: db, migrations: schema });
    return { status: 'ready', database: true, migrations: true };
  });
}
