import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DIRECTORY_ACTIONS } from '../../../access/roles.js';
import { LatchkeyError } from '../../../errors/index.js';
import { requestMeta } from '../../request.js';
import { parse } from '../../validate.js';
import { findApplication } from './applications.js';
import { context, filterOf, type Graph, idParam, lower, notFound, servicePrincipalView } from './shared.js';

// Schemas are built once (zod compiles each new schema on its first parse: ~85 µs a request when built per request).
const appIdBody = z.object({ appId: z.string().min(1).max(64) }).passthrough();

/**
 * Graph service principals (applications' and managed identities'). Latchkey keeps an
 * application and its service principal as one directory object, so both have the same object
 * id, and creating the service principal of an application returns it.
 */
export function servicePrincipalRoutes(app: FastifyInstance, g: Graph): void {
  const { s, caller, mayRead } = g;

  app.get('/v1.0/servicePrincipals', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.read, '/');
    const f = filterOf(req, ['servicePrincipalNames', 'appId', 'displayName', 'id']);
    const all = (await s.principals.list(c.tenantId)).filter((p) => p.kind !== 'user');
    const value = all.filter((p) =>
      f({
        servicePrincipalNames: lower(...servicePrincipalView(p).servicePrincipalNames),
        appId: lower(p.appId),
        displayName: lower(p.displayName),
        id: [p.id],
      }),
    );
    return { '@odata.context': context(req, 'servicePrincipals'), value: value.map(servicePrincipalView) };
  });

  app.get('/v1.0/servicePrincipals/:id', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const p = await s.principals.get(c.tenantId, id.toLowerCase());
    if (!p || p.kind === 'user' || !(await mayRead(c, p))) throw notFound(id);
    return { '@odata.context': context(req, 'servicePrincipals/$entity'), ...servicePrincipalView(p) };
  });

  // The service principal of an application: in Latchkey it exists with the application.
  app.post('/v1.0/servicePrincipals', async (req, reply) => {
    const c = await caller(req);
    const { appId } = parse(appIdBody, req.body);
    await s.access.require(c, DIRECTORY_ACTIONS.write, '/');
    const p = await s.principals.byAppId(c.tenantId, appId.toLowerCase());
    if (p?.kind !== 'servicePrincipal')
      throw new LatchkeyError(
        'Request_BadRequest',
        `The appId '${appId.slice(0, 64)}' of the object referenced does not reference a valid application object.`,
      );
    reply.code(201);
    return { '@odata.context': context(req, 'servicePrincipals/$entity'), ...servicePrincipalView(p) };
  });

  app.delete('/v1.0/servicePrincipals/:id', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    await s.directory.delete(c, requestMeta(req), (await findApplication(g, c, id)).id);
    return reply.code(204).send();
  });
}
