import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { federatedCredentialView } from '../../management/federated-credentials.js';
import { userIdentityView } from '../../management/identities.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';
import { armCaller, armPath, armResourceRoutes, tagsSchema } from './arm-request.js';

const PROVIDER = 'providers/Microsoft.ManagedIdentity/userAssignedIdentities';
const identityBody = z.object({ location: z.string().min(1).max(64).optional(), tags: tagsSchema });
/** A federated identity credential's body; the domain validates the values (docs/federation.md). */
const ficBody = z.object({
  properties: z.object({
    issuer: z.string().max(600),
    subject: z.string().max(600),
    audiences: z.array(z.string().max(600)).max(20),
    description: z.string().max(600).optional(),
  }),
});
const ficParams = z.object({
  sub: z.string().min(1).max(64),
  rg: z.string().min(1).max(90),
  name: z.string().min(1).max(128),
  fic: z.string().min(1).max(128),
});

/** ARM: user-assigned managed identities (`Microsoft.ManagedIdentity/userAssignedIdentities`). */
export async function identityRoutes(
  app: FastifyInstance,
  opts: {
    services: Pick<
      Services,
      'config' | 'readableScopes' | 'scopes' | 'userIdentities' | 'federatedCredentials'
    >;
    authenticate: Authenticate;
  },
) {
  const s = opts.services;
  const caller = armCaller(opts.authenticate, s.config.managementResource, '2023-01-31');
  const one = `/subscriptions/:sub/resourceGroups/:rg/${PROVIDER}/:name`;

  armResourceRoutes(app, {
    provider: PROVIDER,
    caller,
    view: userIdentityView,
    put: async (c, meta, at, body) => {
      const b = parse(identityBody, body);
      const r = await s.userIdentities.createOrUpdate(c, meta, {
        ...at,
        ...(b.location ? { location: b.location } : {}),
        ...(b.tags ? { tags: b.tags } : {}),
      });
      return { created: r.created, view: userIdentityView(r.identity) };
    },
    get: s.userIdentities.get,
    delete: s.userIdentities.delete,
    list: s.userIdentities.list,
    groupExists: (c, sub, rg) => s.readableScopes.listable(c, sub, rg),
  });

  // Federated identity credentials (`.../userAssignedIdentities/{name}/federatedIdentityCredentials`).
  const fics = `${one}/federatedIdentityCredentials`;
  const ficPath = (req: FastifyRequest) => {
    const p = parse(ficParams, req.params, 'path');
    return { sub: p.sub, rg: p.rg, identity: p.name, name: p.fic };
  };
  app.put(`${fics}/:fic`, async (req, reply) => {
    const c = await caller(req);
    const b = parse(ficBody, req.body);
    const r = await s.federatedCredentials.createOrUpdate(c, requestMeta(req), ficPath(req), b.properties);
    return reply.code(r.created ? 201 : 200).send(federatedCredentialView(r.credential));
  });
  app.get(`${fics}/:fic`, async (req) => {
    const c = await caller(req);
    return federatedCredentialView(await s.federatedCredentials.get(c, ficPath(req)));
  });
  app.delete(`${fics}/:fic`, async (req, reply) => {
    const c = await caller(req);
    const deleted = await s.federatedCredentials.delete(c, requestMeta(req), ficPath(req));
    return reply.code(deleted ? 200 : 204).send();
  });
  app.get(fics, async (req) => {
    const c = await caller(req);
    const { sub, rg, name } = armPath(req);
    return {
      value: (await s.federatedCredentials.list(c, { sub, rg, identity: name })).map(federatedCredentialView),
    };
  });
}
