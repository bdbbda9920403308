import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import { createCertificates } from '../../vault/certificates.js';
import { isObjectName } from '../../vault/model.js';
import { vaultContext } from '../vault-context.js';
import { nameOf, versionOf } from './object-routes.js';

const empty = { value: [], nextLink: null };

/** A path's certificate name, checked before it is echoed in a message. */
const certName = (req: FastifyRequest) => {
  const n = nameOf(req);
  if (!isObjectName(n)) throw new LatchkeyError('BadParameter', 'The certificate name is not valid.');
  return n;
};

/**
 * The certificates paths of the data plane until certificates are stored (vault/certificates.ts):
 * authorized reads answer empty lists and 404 `CertificateNotFound`; anything else is 400
 * `BadParameter` naming the gap, never the 404 "operation not supported" a client reads as missing.
 */
export async function certificateRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'access'> },
): Promise<void> {
  const certificates = createCertificates({ access: opts.services.access });
  const list = async (req: FastifyRequest) => {
    await certificates.list(vaultContext(req));
    return empty;
  };
  app.get('/certificates', list);
  app.get('/deletedcertificates', list);
  app.get('/certificates/issuers', list);
  app.get('/certificates/:name/versions', async (req) => {
    certName(req);
    return list(req);
  });
  app.get('/certificates/:name', (req) => certificates.get(vaultContext(req), certName(req)));
  app.get('/certificates/:name/:version', (req) =>
    certificates.get(vaultContext(req), certName(req), versionOf(req).slice(0, 32)),
  );
  app.get('/deletedcertificates/:name', (req) => certificates.getDeleted(vaultContext(req), certName(req)));
  const unsupported = async () => {
    throw new LatchkeyError(
      'BadParameter',
      'Certificates are not supported by this Latchkey yet: a vault holds none (lists are empty).',
    );
  };
  const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
  for (const url of ['/certificates/*', '/deletedcertificates/*'])
    app.route({ method: [...methods], url, handler: unsupported });
}
