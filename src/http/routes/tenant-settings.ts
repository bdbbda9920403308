import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';

const tenantParam = z.object({ tenant: z.string().min(1).max(253) });
const federationBody = z
  .object({ allowedIssuers: z.array(z.string().min(1).max(600)).max(50).nullable() })
  .strict();

/**
 * Latchkey-specific tenant settings (no Azure counterpart), under `/api/tenants/{tenant}/settings`:
 * `federation` is the tenant's issuer allow-list, which narrows the server's (docs/federation.md).
 * `{tenant}` is the caller's own tenant, by id or domain; any other is a 404.
 */
export async function tenantSettingsRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'config' | 'tenantSettings'>; authenticate: Authenticate },
) {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);
  const path = '/api/tenants/:tenant/settings/federation';

  app.get(path, async (req, reply) => {
    const c = await caller(req);
    const { tenant } = parse(tenantParam, req.params, 'path');
    reply.header('cache-control', 'no-store');
    return s.tenantSettings.getFederation(c, tenant);
  });

  app.put(path, async (req, reply) => {
    const c = await caller(req);
    const { tenant } = parse(tenantParam, req.params, 'path');
    const body = parse(federationBody, req.body);
    reply.header('cache-control', 'no-store');
    return s.tenantSettings.setFederation(c, requestMeta(req), tenant, body.allowedIssuers);
  });
}
