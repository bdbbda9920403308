import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { callerEvent } from '../../access/caller.js';
import { DIRECTORY_ACTIONS } from '../../access/roles.js';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';

const CRL_CACHE = 'max-age=300, public';

/** PEM of a DER CRL. */
const crlPem = (der: Buffer) =>
  `-----BEGIN X509 CRL-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END X509 CRL-----\n`;

/**
 * The tenant's own CA (issuer `Latchkey`), public like the tenant's signing keys, so anyone can
 * verify the certificates it issued. The tenant is its id or a domain name, as in the
 * authority's paths; everything is 404 until the tenant's CA has issued a certificate (a GET
 * never makes one).
 *
 * - `GET /{tenant}/pki/ca.pem`: the chain bundle (PEM): the current CA, then the older
 *   generations whose certificates have not all expired (`openssl verify -CAfile ca.pem leaf.pem`).
 * - `GET /{tenant}/pki/crl`: the current CA's CRL (DER, `application/pkix-crl`);
 *   `GET /{tenant}/pki/crl/{generation}`: a generation's (the CRL distribution point its
 *   certificates carry); `GET /{tenant}/pki/crl.pem`: the CRLs of every published generation
 *   (PEM, for `openssl verify -crl_check -CRLfile`).
 */
export async function certificateCaRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'tenants' | 'certificates'> },
): Promise<void> {
  const s = opts.services;
  const tenantOf = async (req: FastifyRequest) => {
    const seg = (req.params as { tenant: string }).tenant;
    const tenant = seg.length <= 253 ? await s.tenants.find(seg) : undefined;
    return { seg, id: tenant?.id };
  };
  const noCa = (seg: string) =>
    new LatchkeyError(
      'NotFound',
      `No certificate authority for tenant '${seg.slice(0, 64)}': it is made when the tenant's first certificate with issuer 'Latchkey' is created.`,
    );
  const send = (reply: FastifyReply, type: string, body: string | Buffer) =>
    reply.header('content-type', type).header('cache-control', CRL_CACHE).send(body);

  app.get('/:tenant/pki/ca.pem', async (req, reply) => {
    const t = await tenantOf(req);
    const pem = t.id && (await s.certificates.caCertificatePem(t.id));
    if (!pem) throw noCa(t.seg);
    return send(reply, 'application/x-pem-file', pem);
  });
  app.get('/:tenant/pki/crl', async (req, reply) => {
    const t = await tenantOf(req);
    const der = t.id && (await s.certificates.ca.crl(t.id));
    if (!der) throw noCa(t.seg);
    return send(reply, 'application/pkix-crl', der);
  });
  app.get('/:tenant/pki/crl/:generation', async (req, reply) => {
    const t = await tenantOf(req);
    const g = (req.params as { generation: string }).generation;
    const der =
      t.id && /^[1-9][0-9]{0,5}$/.test(g) ? await s.certificates.ca.crl(t.id, Number(g)) : undefined;
    if (!der) throw new LatchkeyError('NotFound', `No CA generation '${g.slice(0, 16)}' for this tenant.`);
    return send(reply, 'application/pkix-crl', der);
  });
  app.get('/:tenant/pki/crl.pem', async (req, reply) => {
    const t = await tenantOf(req);
    const crls = t.id ? await s.certificates.ca.publishedCrls(t.id) : [];
    if (!crls.length) throw noCa(t.seg);
    return send(reply, 'application/x-pem-file', crls.map(crlPem).join(''));
  });
}

/**
 * The tenant CA's management (management API audience, the caller's own tenant only):
 * `GET /api/pki/ca` lists its generations (any member who may read the directory);
 * `POST /api/pki/ca/rotate` rolls it (`Microsoft.Latchkey/certificateAuthority/rotate/action` at
 * the tenant root: a tenant Owner), audited as `CertificateAuthorityRotate`.
 */
// duplicate-ok: every authenticated route module has this Fastify plugin signature; the routes differ
export async function certificateCaAdminRoutes(
  app: FastifyInstance,
  opts: {
    services: Pick<Services, 'access' | 'audit' | 'certificates' | 'config'>;
    authenticate: Authenticate;
  },
): Promise<void> {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);
  app.get('/api/pki/ca', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.read, '/');
    return { value: await s.certificates.ca.generations(c.tenantId) };
  });
  app.post('/api/pki/ca/rotate', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.rotateCertificateAuthority, '/');
    const g = await s.certificates.ca.rotate(c.tenantId);
    await s.audit.record(
      callerEvent(c, requestMeta(req), {
        operation: 'CertificateAuthorityRotate',
        target: `/${c.tenantId}/pki/ca/${g.generation}`,
        status: 200,
        details: { generation: g.generation, sha256: g.sha256 },
      }),
    );
    return g;
  });
}
