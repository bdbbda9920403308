import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyBaseLogger as Logger } from 'fastify';
import { authorizeRoutes } from '../console/authorize.js';
import { consoleRoutes } from '../console/routes.js';
import { createAuthenticator } from '../http/auth.js';
import { isOAuthPath, sendAzureError, sendOAuthError } from '../http/errors.js';
import { createFastify, type RequestHandler } from '../http/fastify.js';
import { instrumentHttp, metricsRoute } from '../http/metrics.js';
import { appRoutes } from '../http/routes/apps.js';
import { auditRoutes } from '../http/routes/audit.js';
import { authorityRoutes } from '../http/routes/authority.js';
import { certificateCaRoutes } from '../http/routes/certificate-ca.js';
import { directoryRoutes } from '../http/routes/directory.js';
import { graphRoutes } from '../http/routes/graph.js';
import { healthRoutes } from '../http/routes/health.js';
import { hostRoutes } from '../http/routes/hosts.js';
import { identityRoutes } from '../http/routes/identities.js';
import { manifestRoutes } from '../http/routes/manifest.js';
import { provisioningRoutes } from '../http/routes/provisioning.js';
import { resourceRoutes } from '../http/routes/resources.js';
import { roleRoutes } from '../http/routes/roles.js';
import { subscriptionRoutes } from '../http/routes/subscriptions.js';
import { vaultRoutes } from '../http/routes/vaults.js';
import type { Services } from './services.js';

/** The authority, management API and console: everything not addressed to a vault host. */
export async function createMainApp(
  services: Services,
  logger: Logger,
): Promise<{ app: FastifyInstance; handler: RequestHandler }> {
  const { app, handler } = createFastify({ logger, limits: services.config.limits, clock: services.clock });
  // Before any route: each route gets its request counter and latency series (/metrics).
  instrumentHttp(app, services.metrics, 'main');
  await app.register(formbody);
  // A request no route took (a body refused before the 404, e.g. `POST /./oauth2/v2.0/token` with
  // broken JSON) is answered in the shape of the protocol its path names.
  app.setErrorHandler((err, req, reply) =>
    (!req.routeOptions.url && isOAuthPath(req.url) ? sendOAuthError : sendAzureError)(err, req, reply),
  );
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: {
        code: 'NotFound',
        message: `No route for ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}.`,
      },
    }),
  );
  // A browser at the server's root is sent to the console; API clients keep the JSON 404.
  app.get('/', (req, reply) =>
    /\btext\/html\b/.test(String(req.headers.accept ?? ''))
      ? reply.redirect('/console/', 302)
      : reply.code(404).send({ error: { code: 'NotFound', message: 'No route for GET /.' } }),
  );
  const authenticate = createAuthenticator({
    verifier: services.verifier,
    principals: services.principals,
    provisioningKeys: services.provisioningKeys,
    limiter: services.principalLimiter,
  });
  await app.register(healthRoutes, { services });
  await app.register(metricsRoute, {
    metrics: services.metrics,
    ...(services.config.metricsToken ? { token: services.config.metricsToken } : {}),
  });
  await app.register(authorityRoutes, { services });
  await app.register(certificateCaRoutes, { services });
  await app.register(authorizeRoutes, { services });
  await app.register(directoryRoutes, { services, authenticate });
  await app.register(provisioningRoutes, { services, authenticate });
  await app.register(manifestRoutes, { services, authenticate });
  await app.register(subscriptionRoutes, { services, authenticate });
  await app.register(resourceRoutes, { services, authenticate });
  await app.register(graphRoutes, { services, authenticate });
  await app.register(vaultRoutes, { services, authenticate });
  await app.register(roleRoutes, { services, authenticate });
  await app.register(auditRoutes, { services, authenticate });
  await app.register(identityRoutes, { services, authenticate });
  await app.register(appRoutes, { services, authenticate });
  await app.register(hostRoutes, { services, authenticate });
  await app.register(consoleRoutes, { services, prefix: '/console' });
  await app.ready();
  return { app, handler: handler() };
}
