import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { userIdentityView } from '../../management/identities.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';
import { armPath, requireApiVersion, tagsSchema } from './arm-request.js';

const PROVIDER = 'providers/Microsoft.ManagedIdentity/userAssignedIdentities';
const body = z.object({ location: z.string().min(1).max(64).optional(), tags: tagsSchema });

/** ARM: user-assigned managed identities (`Microsoft.ManagedIdentity/userAssignedIdentities`). */
export async function identityRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'config' | 'scopes' | 'userIdentities'>; authenticate: Authenticate },
) {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);
  const one = `/subscriptions/:sub/resourceGroups/:rg/${PROVIDER}/:name`;

  app.put(one, async (req, reply) => {
    const c = await caller(req);
    requireApiVersion(req);
    const { sub, rg, name } = armPath(req);
    const b = parse(body, req.body);
    const r = await s.userIdentities.createOrUpdate(c, requestMeta(req), {
      subscriptionId: sub,
      resourceGroup: rg,
      name,
      ...(b.location ? { location: b.location } : {}),
      ...(b.tags ? { tags: b.tags } : {}),
    });
    return reply.code(r.created ? 201 : 200).send(userIdentityView(r.identity));
  });

  app.get(one, async (req) => {
    const c = await caller(req);
    requireApiVersion(req);
    const { sub, rg, name } = armPath(req);
    return userIdentityView(await s.userIdentities.get(c, sub, rg, name));
  });

  app.delete(one, async (req, reply) => {
    const c = await caller(req);
    requireApiVersion(req);
    const { sub, rg, name } = armPath(req);
    const deleted = await s.userIdentities.delete(c, requestMeta(req), sub, rg, name);
    return reply.code(deleted ? 200 : 204).send();
  });

  app.get(`/subscriptions/:sub/resourceGroups/:rg/${PROVIDER}`, async (req) => {
    const c = await caller(req);
    requireApiVersion(req);
    const { sub, rg } = armPath(req);
    await s.scopes.resourceGroup(c.tenantId, sub, rg);
    return { value: (await s.userIdentities.list(c, sub, rg)).map(userIdentityView) };
  });

  app.get(`/subscriptions/:sub/${PROVIDER}`, async (req) => {
    const c = await caller(req);
    requireApiVersion(req);
    const { sub } = parse(z.object({ sub: z.string().min(1).max(64) }), req.params, 'path');
    return { value: (await s.userIdentities.list(c, sub)).map(userIdentityView) };
  });
}
