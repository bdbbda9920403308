import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { LatchkeyError } from '../../../errors/index.js';
import type { StoredFederatedCredential } from '../../../storage/management/federated-credential-store.js';
import { requestMeta } from '../../request.js';
import { parse } from '../../validate.js';
import { findApplication } from './applications.js';
import { context, type Graph, idParam } from './shared.js';

const credentialBody = z
  .object({
    name: z.string().min(1).max(120),
    issuer: z.string().min(1).max(600),
    subject: z.string().min(1).max(600),
    audiences: z.array(z.string().max(600)).max(5),
    description: z.string().max(600).nullish(),
  })
  .strict();
// Graph sends the object back as it read it: id and @odata fields are accepted and ignored.
const writeBody = credentialBody
  .extend({ id: z.string().max(64).optional(), '@odata.type': z.string().max(100).optional() })
  .strict();
const patchBody = writeBody.partial();
const ficParams = idParam.extend({ fic: z.string().min(1).max(256) });

/** Graph's `microsoft.graph.federatedIdentityCredential`. */
const view = (c: StoredFederatedCredential) => ({
  id: c.rowId,
  name: c.name,
  issuer: c.issuer,
  subject: c.subject,
  description: c.description || null,
  audiences: c.audiences,
});

/**
 * `/v1.0/applications/{id}/federatedIdentityCredentials`: list, create, get, update (PATCH) and
 * delete, in Graph's shape (docs/federation.md). `{fic}` is the credential's id or its name.
 */
export function federatedCredentialRoutes(app: FastifyInstance, g: Graph): void {
  const { s, caller } = g;
  const base = '/v1.0/applications/:id/federatedIdentityCredentials';
  const ctx = (appId: string) => `applications('${appId}')/federatedIdentityCredentials`;

  app.get(base, async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const p = await findApplication(g, c, id);
    const value = (await s.appFederatedCredentials.list(p)).map(view);
    return { '@odata.context': context(req, ctx(p.id)), value };
  });

  app.post(base, async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(writeBody, req.body);
    const p = await findApplication(g, c, id);
    const created = await s.appFederatedCredentials.create(c, requestMeta(req), p, body.name, {
      issuer: body.issuer,
      subject: body.subject,
      audiences: body.audiences,
      ...(body.description ? { description: body.description } : {}),
    });
    reply.code(201);
    return { '@odata.context': context(req, `${ctx(p.id)}/$entity`), ...view(created) };
  });

  app.get(`${base}/:fic`, async (req) => {
    const c = await caller(req);
    const { id, fic } = parse(ficParams, req.params, 'path');
    const p = await findApplication(g, c, id);
    return {
      '@odata.context': context(req, `${ctx(p.id)}/$entity`),
      ...view(await s.appFederatedCredentials.get(p, fic)),
    };
  });

  app.patch(`${base}/:fic`, async (req, reply) => {
    const c = await caller(req);
    const { id, fic } = parse(ficParams, req.params, 'path');
    const body = parse(patchBody, req.body);
    const p = await findApplication(g, c, id);
    const current = await s.appFederatedCredentials.get(p, fic);
    if (body.name !== undefined && body.name !== current.name)
      throw new LatchkeyError(
        'Request_BadRequest',
        'The name of a federated identity credential cannot be changed.',
      );
    await s.appFederatedCredentials.update(c, requestMeta(req), p, current.rowId, {
      ...(body.issuer !== undefined ? { issuer: body.issuer } : {}),
      ...(body.subject !== undefined ? { subject: body.subject } : {}),
      ...(body.audiences !== undefined ? { audiences: body.audiences } : {}),
      ...(body.description !== undefined ? { description: body.description ?? '' } : {}),
    });
    return reply.code(204).send();
  });

  app.delete(`${base}/:fic`, async (req, reply) => {
    const c = await caller(req);
    const { id, fic } = parse(ficParams, req.params, 'path');
    const p = await findApplication(g, c, id);
    await s.appFederatedCredentials.delete(c, requestMeta(req), p, fic);
    return reply.code(204).send();
  });
}
