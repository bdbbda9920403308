import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DIRECTORY_ACTIONS } from '../../../access/roles.js';
import { LatchkeyError } from '../../../errors/index.js';
import { requestMeta } from '../../request.js';
import { parse } from '../../validate.js';
import { context, filterOf, type Graph, idParam, lower, notFound, userView } from './shared.js';

/** Graph users: `me`, the list with `$filter`, one by id or name, and `revokeSignInSessions`. */
export function userRoutes(app: FastifyInstance, g: Graph): void {
  const { s, caller, mayRead } = g;

  app.get('/v1.0/me', async (req) => {
    const c = await caller(req);
    const p = c.kind === 'user' ? await s.principals.get(c.tenantId, c.oid) : undefined;
    if (!p) {
      throw new LatchkeyError('BadRequest', '/me request is only valid with delegated authentication flow.');
    }
    return { '@odata.context': context(req, 'users/$entity'), ...userView(p) };
  });

  app.get('/v1.0/users', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.usersRead, '/');
    const f = filterOf(req, ['userPrincipalName', 'displayName', 'id', 'mail']);
    const all = await s.principals.list(c.tenantId, 'user');
    const value = all.filter((p) =>
      f({ userPrincipalName: lower(p.userName), displayName: lower(p.displayName), id: [p.id], mail: [] }),
    );
    return { '@odata.context': context(req, 'users'), value: value.map(userView) };
  });

  app.get('/v1.0/users/:id', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const p =
      (await s.principals.resolve(c.tenantId, id)) ??
      (await s.principals.byUserName(c.tenantId, id.toLowerCase()))?.principal;
    if (p?.kind !== 'user' || !(await mayRead(c, p))) throw notFound(id);
    return { '@odata.context': context(req, 'users/$entity'), ...userView(p) };
  });

  /**
   * `revokeSignInSessions`: ends a user's refresh tokens and console sessions. A user may revoke
   * their own (`/me`); another user's needs `Microsoft.Directory/users/write` at `/`.
   */
  const revoked = (req: FastifyRequest) => ({
    '@odata.context': context(req, 'Edm.Boolean'),
    value: true,
  });
  app.post('/v1.0/me/revokeSignInSessions', async (req) => {
    const c = await caller(req);
    if (c.kind !== 'user')
      throw new LatchkeyError('BadRequest', '/me request is only valid with delegated authentication flow.');
    await s.directory.users.revokeSignInSessions(c, requestMeta(req), c.oid);
    return revoked(req);
  });
  app.post('/v1.0/users/:id/revokeSignInSessions', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    try {
      await s.directory.users.revokeSignInSessions(c, requestMeta(req), id);
    } catch (e) {
      if (e instanceof LatchkeyError && e.code === 'PrincipalNotFound') throw notFound(id);
      throw e;
    }
    return revoked(req);
  });
}
