import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { callerEvent } from '../../access/caller.js';
import { DIRECTORY_ACTIONS } from '../../access/roles.js';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';

// Schemas are built once (zod compiles each new schema on its first parse: ~85 µs a request when built per request).
const accountEnabledBody = z.object({ accountEnabled: z.boolean() });
const credentialParams = z.object({ id: z.string().min(1).max(64), keyId: z.string().min(1).max(64) });

const idParam = z.object({ id: z.string().min(1).max(64) });
const credentialBody = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('Password'),
    displayName: z.string().min(1).max(120).optional(),
    years: z.number().min(0.01).max(2).optional(),
    days: z.number().int().min(1).max(730).optional(),
    append: z.boolean().optional(),
  }),
  z.object({
    type: z.literal('AsymmetricX509Cert'),
    certificate: z.string().min(1).max(16_384),
    displayName: z.string().min(1).max(120).optional(),
    append: z.boolean().optional(),
  }),
]);
const createBody = z.object({
  displayName: z.string().min(1).max(120),
  identifierUri: z.string().min(1).max(200).optional(),
  publicClient: z.boolean().optional(),
  credential: z
    .union([
      z.null(),
      z.object({
        type: z.literal('Password'),
        displayName: z.string().min(1).max(120).optional(),
        years: z.number().min(0.01).max(2).optional(),
      }),
      z.object({
        type: z.literal('AsymmetricX509Cert'),
        certificate: z.string().min(1).max(16_384),
        displayName: z.string().max(120).optional(),
      }),
    ])
    .optional(),
});

const userIdParam = z.object({ id: z.string().min(1).max(255) });
const password = z.string().min(12).max(256);
const createUserBody = z.object({
  userPrincipalName: z.string().min(1).max(255),
  displayName: z.string().min(1).max(120),
  password: password.optional(),
});
const updateUserBody = z
  .object({ accountEnabled: z.boolean().optional(), password: password.optional() })
  .refine((b) => b.accountEnabled !== undefined || b.password !== undefined, {
    message: 'Give accountEnabled or password.',
  });

/** Directory API (users, service principals and their credentials), Graph-like JSON, under /api/directory. */
export async function directoryRoutes(
  app: FastifyInstance,
  opts: {
    services: Pick<
      Services,
      'access' | 'audit' | 'config' | 'directory' | 'principals' | 'signingKeys' | 'tenants'
    >;
    authenticate: Authenticate;
  },
) {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);

  app.get('/api/account', async (req) => {
    const c = await caller(req);
    const tenant = await s.tenants.require(c.tenantId);
    const p = await s.principals.get(c.tenantId, c.oid);
    return {
      tenantId: tenant.id,
      tenantDomain: tenant.domain,
      user: { name: p?.userName ?? c.appId ?? c.oid, type: c.kind === 'user' ? 'user' : 'servicePrincipal' },
      objectId: c.oid,
      appId: c.appId,
      displayName: p?.displayName ?? null,
    };
  });

  // Users: a password is returned only when the server generated it (create or reset without one).
  app.get('/api/directory/users', async (req) => ({
    value: await s.directory.users.list(await caller(req)),
  }));

  app.post('/api/directory/users', async (req, reply) => {
    const c = await caller(req);
    const body = parse(createUserBody, req.body);
    const r = await s.directory.users.create(c, requestMeta(req), {
      userName: body.userPrincipalName,
      displayName: body.displayName,
      ...(body.password !== undefined ? { password: body.password } : {}),
    });
    reply.code(201).header('cache-control', 'no-store');
    return r;
  });

  app.get('/api/directory/users/:id', async (req) => {
    const { id } = parse(userIdParam, req.params, 'path');
    return s.directory.users.show(await caller(req), id);
  });

  app.patch('/api/directory/users/:id', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(userIdParam, req.params, 'path');
    const body = parse(updateUserBody, req.body);
    if (body.password !== undefined)
      await s.directory.users.resetPassword(c, requestMeta(req), id, body.password);
    if (body.accountEnabled !== undefined)
      return s.directory.users.setEnabled(c, requestMeta(req), id, body.accountEnabled);
    reply.header('cache-control', 'no-store');
    return s.directory.users.show(c, id);
  });

  app.post('/api/directory/users/:id/resetPassword', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(userIdParam, req.params, 'path');
    reply.header('cache-control', 'no-store');
    return s.directory.users.resetPassword(c, requestMeta(req), id);
  });

  app.post('/api/directory/users/:id/revokeSignInSessions', async (req) => {
    const c = await caller(req);
    const { id } = parse(userIdParam, req.params, 'path');
    await s.directory.users.revokeSignInSessions(c, requestMeta(req), id);
    return { value: true };
  });

  app.delete('/api/directory/users/:id', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(userIdParam, req.params, 'path');
    await s.directory.users.delete(c, requestMeta(req), id);
    return reply.code(204).send();
  });

  app.get('/api/directory/servicePrincipals', async (req) => ({
    value: await s.directory.list(await caller(req)),
  }));

  app.post('/api/directory/servicePrincipals', async (req, reply) => {
    const c = await caller(req);
    const body = parse(createBody, req.body);
    const r = await s.directory.create(c, requestMeta(req), {
      displayName: body.displayName,
      identifierUri: body.identifierUri ?? null,
      publicClient: body.publicClient ?? false,
      ...(body.credential !== undefined ? { credential: body.credential } : {}),
    });
    reply.code(201).header('cache-control', 'no-store');
    return r;
  });

  app.get('/api/directory/servicePrincipals/:id', async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    return s.directory.show(await caller(req), id);
  });

  app.patch('/api/directory/servicePrincipals/:id', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(accountEnabledBody, req.body);
    return s.directory.setEnabled(c, requestMeta(req), id, body.accountEnabled);
  });

  app.delete('/api/directory/servicePrincipals/:id', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    await s.directory.delete(c, requestMeta(req), id);
    return reply.code(204).send();
  });

  app.get('/api/directory/servicePrincipals/:id/credentials', async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    return { value: await s.directory.listCredentials(await caller(req), id) };
  });

  app.post('/api/directory/servicePrincipals/:id/credentials', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(credentialBody, req.body);
    const r = await s.directory.resetCredential(c, requestMeta(req), id, body);
    reply.code(201).header('cache-control', 'no-store');
    return r;
  });

  app.delete('/api/directory/servicePrincipals/:id/credentials/:keyId', async (req, reply) => {
    const c = await caller(req);
    const { id, keyId } = parse(credentialParams, req.params, 'path');
    await s.directory.deleteCredential(c, requestMeta(req), id, keyId);
    return reply.code(204).send();
  });

  // The signing keys are the installation's, shared by every tenant: only the installation's
  // operator rotates them, i.e. a principal of the default tenant (the one `latchkey up` or
  // `latchkey server --bootstrap-admin` created) with the rotate action at its root.
  app.post('/api/authority/signingKeys/rotate', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.rotateSigningKey, '/');
    if ((await s.tenants.default())?.id !== c.tenantId) {
      throw new LatchkeyError(
        'Forbidden',
        "The signing keys are shared by every tenant of this installation: only the installation's default tenant may rotate them.",
      );
    }
    const r = await s.signingKeys.rotate();
    await s.audit.record(
      callerEvent(c, requestMeta(req), { operation: 'SigningKeyRotate', target: r.kid, status: 200 }),
    );
    return r;
  });

  app.get('/api/authority/signingKeys', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.read, '/');
    return s.signingKeys.jwks();
  });
}
