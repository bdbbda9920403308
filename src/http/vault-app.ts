import type { FastifyInstance, FastifyBaseLogger as Logger } from 'fastify';
import type { Services } from '../server/services.js';
import { sendAzureError } from './errors.js';
import { createFastify, type RequestHandler } from './fastify.js';

/** The Key Vault data plane, served at `https://{vault}.{vaultDomain}`. */
export async function createVaultApp(
  services: Services,
  logger: Logger,
): Promise<{ app: FastifyInstance; handler: RequestHandler }> {
  const { app, handler } = createFastify({ logger, limits: services.config.limits });
  app.setErrorHandler((err, req, reply) => sendAzureError(err, req, reply));
  app.setNotFoundHandler((_req, reply) =>
    reply
      .code(404)
      .send({ error: { code: 'NotFound', message: 'The requested operation is not supported.' } }),
  );
  await app.ready();
  return { app, handler: handler() };
}
