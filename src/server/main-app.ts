import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyPluginAsync, FastifyBaseLogger as Logger } from 'fastify';
import { authorizeRoutes } from '../console/authorize.js';
import { type Authenticate, createAuthenticator } from '../http/auth.js';
import { isOAuthPath, sendAzureError, sendOAuthError } from '../http/errors.js';
import { metricsRoute } from '../http/metrics.js';
import { appRoutes } from '../http/routes/apps.js';
import { auditRoutes } from '../http/routes/audit.js';
import { authorityRoutes } from '../http/routes/authority.js';
import { certificateCaAdminRoutes, certificateCaRoutes } from '../http/routes/certificate-ca.js';
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
import { tenantSettingsRoutes } from '../http/routes/tenant-settings.js';
import { vaultRoutes } from '../http/routes/vaults.js';
import { createServedApp, type ServedApp } from '../http/served-app.js';
import { lazyConsole } from './console-app.js';
import type { Services } from './services.js';

/** The authority, management API and console: everything not addressed to a vault host. */
export function createMainApp(services: Services, logger: Logger): Promise<ServedApp> {
  return createServedApp(services, logger, 'main', (app) => mainRoutes(app, services, logger));
}

/** The route modules that authenticate their callers themselves (each names the audience it takes). */
const AUTHENTICATED_ROUTES: FastifyPluginAsync<{ services: Services; authenticate: Authenticate }>[] = [
  directoryRoutes,
  provisioningRoutes,
  manifestRoutes,
  subscriptionRoutes,
  resourceRoutes,
  graphRoutes,
  vaultRoutes,
  roleRoutes,
  auditRoutes,
  identityRoutes,
  appRoutes,
  hostRoutes,
  tenantSettingsRoutes,
  certificateCaAdminRoutes,
];

/** The main app's hooks and routes (see {@link createMainApp}). */
async function mainRoutes(app: FastifyInstance, services: Services, logger: Logger): Promise<void> {
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
  for (const routes of AUTHENTICATED_ROUTES) await app.register(routes, { services, authenticate });
  // The console: built on its first request (src/server/console-app.ts).
  await app.register(lazyConsole, { services, logger, prefix: '/console' });
}
