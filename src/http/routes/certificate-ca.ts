import type { FastifyInstance } from 'fastify';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';

/**
 * `GET /{tenant}/pki/ca.pem`: the tenant's own CA certificate (issuer `Latchkey`, PEM), public
 * like the tenant's signing keys, so anyone can verify the certificates it issued
 * (`openssl verify -CAfile ca.pem leaf.pem`). The tenant is its id or a domain name, as in the
 * authority's paths. 404 until the tenant's CA has issued a certificate (a GET never makes one).
 */
export async function certificateCaRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'tenants' | 'certificates'> },
): Promise<void> {
  const s = opts.services;
  app.get('/:tenant/pki/ca.pem', async (req, reply) => {
    const seg = (req.params as { tenant: string }).tenant;
    const tenant = seg.length <= 253 ? await s.tenants.find(seg) : undefined;
    const pem = tenant && (await s.certificates.caCertificatePem(tenant.id));
    if (!pem)
      throw new LatchkeyError(
        'NotFound',
        `No certificate authority for tenant '${seg.slice(0, 64)}': it is made when the tenant's first certificate with issuer 'Latchkey' is created.`,
      );
    return reply
      .header('content-type', 'application/x-pem-file')
      .header('cache-control', 'max-age=300, public')
      .send(pem);
  });
}
