import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';

const idParam = z.object({ id: z.string().min(1).max(64) });
const createBody = z.object({
  displayName: z.string().min(1).max(120).optional(),
  scopes: z.array(z.string().min(1).max(64)).min(1).max(20),
  expiresInSeconds: z
    .number()
    .int()
    .min(1)
    .max(10 * 365 * 86_400),
  maxUses: z.number().int().min(1).max(1_000_000).nullable().optional(),
  allowedCidrs: z.array(z.string().min(1).max(64)).max(20).optional(),
  resourceGroup: z.string().min(1).max(300).nullable().optional(),
});
const rotateBody = z.object({
  graceSeconds: z
    .number()
    .int()
    .min(0)
    .max(7 * 86_400),
  expiresInSeconds: z
    .number()
    .int()
    .min(1)
    .max(10 * 365 * 86_400)
    .optional(),
});

/** Provisioning keys: create (value shown once), list, show, rotate with grace, revoke. */
export async function provisioningRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'config' | 'provisioningKeys'>; authenticate: Authenticate },
) {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);

  app.post('/api/provisioning/keys', async (req, reply) => {
    const c = await caller(req);
    const b = parse(createBody, req.body);
    const r = await s.provisioningKeys.create(c, requestMeta(req), {
      scopes: b.scopes,
      expiresInSeconds: b.expiresInSeconds,
      ...(b.displayName ? { displayName: b.displayName } : {}),
      ...(b.maxUses !== undefined ? { maxUses: b.maxUses } : {}),
      ...(b.allowedCidrs ? { allowedCidrs: b.allowedCidrs } : {}),
      ...(b.resourceGroup !== undefined ? { resourceGroup: b.resourceGroup } : {}),
    });
    reply.code(201).header('cache-control', 'no-store');
    return r;
  });
  app.get('/api/provisioning/keys', async (req) => ({
    value: await s.provisioningKeys.list(await caller(req)),
  }));
  app.get('/api/provisioning/keys/:id', async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    return s.provisioningKeys.show(await caller(req), id);
  });
  app.post('/api/provisioning/keys/:id/rotate', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const b = parse(rotateBody, req.body);
    const r = await s.provisioningKeys.rotate(c, requestMeta(req), id, {
      graceSeconds: b.graceSeconds,
      ...(b.expiresInSeconds ? { expiresInSeconds: b.expiresInSeconds } : {}),
    });
    reply.code(201).header('cache-control', 'no-store');
    return r;
  });
  app.post('/api/provisioning/keys/:id/revoke', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    return s.provisioningKeys.revoke(c, requestMeta(req), id);
  });
}
