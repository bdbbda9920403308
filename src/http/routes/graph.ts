import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parse } from '../validate.js';
import { applicationRoutes } from './graph/applications.js';
import { federatedCredentialRoutes } from './graph/federated-credentials.js';
import { servicePrincipalRoutes } from './graph/service-principals.js';
import { context, type GraphRouteOptions, graphOf, servicePrincipalView, userView } from './graph/shared.js';
import { userRoutes } from './graph/users.js';

const getByIds = z.object({
  ids: z.array(z.string().min(1).max(64)).max(1000),
  types: z.array(z.string().min(1).max(64)).max(10).nullish(),
});

/**
 * The part of Microsoft Graph (v1.0) that the Azure CLI uses to find directory objects:
 * `me`, users and service principals by id or by a `$filter`, `directoryObjects/getByIds`, and
 * application registrations as `az ad sp create-for-rbac` and `az ad app|sp` manage them.
 * Served at the authority's base URL, which is also the Graph resource a token is asked for
 * (`az` sends its Graph requests to the resource id).
 *
 * One file per resource under `graph/`: users, applications, service principals; the `$filter`
 * parser and the resource views are in `graph/shared.ts`.
 * Latchkey keeps an application and its service principal as one directory object, so both
 * have the same object id, and creating the service principal of an application returns it.
 * Writes go through the directory service: the same actions at `/`, the same audit records.
 * Reading needs `Microsoft.Directory/users/read` or `…/servicePrincipals/read` at `/`, as the
 * directory API does; a caller may always read itself (`/me`, or its own id).
 */
export async function graphRoutes(app: FastifyInstance, opts: GraphRouteOptions): Promise<void> {
  const g = graphOf(opts);
  userRoutes(app, g);
  servicePrincipalRoutes(app, g);
  applicationRoutes(app, g);
  federatedCredentialRoutes(app, g);

  // Users and service principals by id, the ones the caller may read.
  app.post('/v1.0/directoryObjects/getByIds', async (req) => {
    const c = await g.caller(req);
    const body = parse(getByIds, req.body);
    const types = body.types?.map((t) => t.toLowerCase().replace(/^#?microsoft\.graph\./, ''));
    const value = [];
    for (const id of new Set(body.ids.map((i) => i.toLowerCase()))) {
      const p = await g.s.principals.get(c.tenantId, id);
      if (!p) continue;
      const type = p.kind === 'user' ? 'user' : 'serviceprincipal';
      if (types && !types.includes(type) && !types.includes('directoryobject')) continue;
      if (await g.mayRead(c, p)) value.push(p.kind === 'user' ? userView(p) : servicePrincipalView(p));
    }
    return { '@odata.context': context(req, 'directoryObjects'), value };
  });
}
