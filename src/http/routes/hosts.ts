import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { hostView } from '../../management/hosts.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';
import { armCaller, armResourceRoutes } from './arm-request.js';

const PROVIDER = 'providers/Microsoft.Latchkey/hosts';
const hostBody = z.object({
  properties: z.object({ certificate: z.string().min(1).max(16_384).optional() }).optional(),
});
const certBody = z.object({ certificate: z.string().min(1).max(16_384) });
const hostParams = z.object({
  hostId: z.string().min(1).max(64),
  principalId: z.string().min(1).max(64).optional(),
  keyId: z.string().min(1).max(64).optional(),
  app: z.string().min(1).max(64).optional(),
});

/**
 * Hosts: ARM management by administrators (`Microsoft.Latchkey/hosts`), and
 * the API a host's identity endpoint calls as the host itself (`/api/hosts/{hostId}/...`).
 */
export async function hostRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'config' | 'hostAgent' | 'hosts'>; authenticate: Authenticate },
) {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);
  const arm = armCaller(opts.authenticate, s.config.managementResource, '2023-01-31');

  armResourceRoutes(app, {
    provider: PROVIDER,
    caller: arm,
    view: hostView,
    put: async (c, meta, at, body) => {
      const b = parse(hostBody, body);
      const certificate = b.properties?.certificate;
      const r = await s.hosts.createOrUpdate(c, meta, { ...at, ...(certificate ? { certificate } : {}) });
      const v = hostView(r.host);
      // The registered certificate's key id: the enrolling agent keeps it to remove the certificate when it rolls.
      const credential = r.credential
        ? { keyId: r.credential.keyId, endDateTime: r.credential.endDateTime }
        : null;
      return { created: r.created, view: { ...v, properties: { ...v.properties, credential } } };
    },
    get: s.hosts.get,
    delete: s.hosts.delete,
    list: s.hosts.list,
  });

  // ---- called by the host's endpoint, authenticated as the host ----
  const api = s.hostAgent;
  const params = (req: FastifyRequest) => parse(hostParams, req.params, 'path');
  /** The identity a `/api/hosts/{hostId}/identities/{principalId}/...` path names. */
  const served = (p: z.infer<typeof hostParams>) => ({ hostId: p.hostId, principalId: p.principalId! });
  app.get('/api/hosts/:hostId/identities', async (req, reply) => {
    const c = await caller(req);
    reply.header('cache-control', 'no-store');
    return api.manifest(c, params(req).hostId);
  });
  app.get('/api/hosts/:hostId/apps/:app/settings', async (req, reply) => {
    const c = await caller(req);
    const p = params(req);
    reply.header('cache-control', 'no-store');
    return { settings: await api.appSettings(c, requestMeta(req), p.hostId, p.app!) };
  });
  app.get('/api/hosts/:hostId/certificates', async (req) => {
    const c = await caller(req);
    return { value: await api.listOwnCertificates(c, params(req).hostId) };
  });
  app.post('/api/hosts/:hostId/certificates', async (req, reply) => {
    const c = await caller(req);
    const b = parse(certBody, req.body);
    return reply
      .code(201)
      .send(await api.addOwnCertificate(c, requestMeta(req), params(req).hostId, b.certificate));
  });
  app.delete('/api/hosts/:hostId/certificates/:keyId', async (req, reply) => {
    const c = await caller(req);
    const p = params(req);
    await api.deleteOwnCertificate(c, requestMeta(req), p.hostId, p.keyId!);
    return reply.code(204).send();
  });
  app.get('/api/hosts/:hostId/identities/:principalId/certificates', async (req) => {
    const c = await caller(req);
    const p = params(req);
    return { value: await api.listIdentityCertificates(c, served(p)) };
  });
  app.post('/api/hosts/:hostId/identities/:principalId/certificates', async (req, reply) => {
    const c = await caller(req);
    const p = params(req);
    const b = parse(certBody, req.body);
    return reply
      .code(201)
      .send(await api.addIdentityCertificate(c, requestMeta(req), served(p), b.certificate));
  });
  app.delete('/api/hosts/:hostId/identities/:principalId/certificates/:keyId', async (req, reply) => {
    const c = await caller(req);
    const p = params(req);
    await api.deleteIdentityCertificate(c, requestMeta(req), served(p), p.keyId!);
    return reply.code(204).send();
  });
}
