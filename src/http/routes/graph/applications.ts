import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Caller } from '../../../access/caller.js';
import { DIRECTORY_ACTIONS } from '../../../access/roles.js';
import type { Principal } from '../../../authority/principals.js';
import { LatchkeyError } from '../../../errors/index.js';
import { requestMeta } from '../../request.js';
import { parse } from '../../validate.js';
import { context, filterOf, type Graph, idParam, lower, notFound } from './shared.js';

// Schemas are built once (zod compiles each new schema on its first parse: ~85 µs a request when built per request).
const keyIdBody = z.object({ keyId: z.string().min(1).max(64) }).strict();

/** An application registration by object id (a service principal that is not a managed identity). */
export async function findApplication(g: Graph, c: Caller, id: string): Promise<Principal> {
  const p = await g.s.principals.get(c.tenantId, id.toLowerCase());
  if (p?.kind !== 'servicePrincipal' || !(await g.mayRead(c, p))) throw notFound(id);
  return p;
}

/** `{key}` of a Graph keyCredential (base64 DER, or base64 of a PEM) as a PEM certificate. */
const certificatePem = (key: string) => {
  const raw = Buffer.from(key, 'base64');
  const text = raw.toString('latin1');
  if (text.includes('-----BEGIN CERTIFICATE-----')) return text;
  const b64 = raw.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
};

const keyCredential = z.object({
  type: z.literal('AsymmetricX509Cert'),
  usage: z.literal('Verify').optional(),
  key: z.string().min(1).max(16_384),
  displayName: z.string().max(120).nullish(),
  startDateTime: z.string().max(40).nullish(),
  endDateTime: z.string().max(40).nullish(),
});
const applicationBody = z
  .object({
    displayName: z.string().min(1).max(120),
    identifierUris: z.array(z.string().min(1).max(200)).max(1).optional(),
    isFallbackPublicClient: z.boolean().nullish(),
    signInAudience: z.literal('AzureADMyOrg').optional(),
    keyCredentials: z.array(keyCredential).max(1).optional(),
  })
  .strict();
const addPassword = z
  .object({
    passwordCredential: z
      .object({
        displayName: z.string().max(120).nullish(),
        startDateTime: z.string().max(40).nullish(),
        endDateTime: z.string().max(40).nullish(),
      })
      .optional(),
  })
  .strict();

/**
 * Graph application registrations, as `az ad sp create-for-rbac` and `az ad app` manage them:
 * list, read, create, delete, and their password credentials. Writes go through the directory
 * service (the same actions at `/`, the same audit records).
 */
export function applicationRoutes(app: FastifyInstance, g: Graph): void {
  const { s, caller } = g;

  /** The application view of `p`; the caller's right to read it was decided before (list or find). */
  const application = async (p: Principal) => {
    const creds = await s.credentials.list(p.tenantId, p.id);
    return {
      '@odata.type': '#microsoft.graph.application',
      id: p.id,
      appId: p.appId ?? '',
      displayName: p.displayName,
      identifierUris: p.identifierUri ? [p.identifierUri] : [],
      isFallbackPublicClient: p.publicClient,
      signInAudience: 'AzureADMyOrg',
      createdDateTime: new Date(p.createdAt).toISOString(),
      passwordCredentials: creds
        .filter((k) => k.type === 'Password')
        .map((k) => ({
          keyId: k.keyId,
          displayName: k.displayName,
          hint: k.hint,
          startDateTime: k.startDateTime,
          endDateTime: k.endDateTime,
          secretText: null,
          customKeyIdentifier: null,
        })),
      keyCredentials: creds
        .filter((k) => k.type === 'AsymmetricX509Cert')
        .map((k) => ({
          keyId: k.keyId,
          displayName: k.displayName,
          type: 'AsymmetricX509Cert',
          usage: 'Verify',
          customKeyIdentifier: k.thumbprintSha1,
          startDateTime: k.startDateTime,
          endDateTime: k.endDateTime,
        })),
      web: { redirectUris: [] },
      publicClient: { redirectUris: [] },
      requiredResourceAccess: [],
      appRoles: [],
    };
  };

  app.get('/v1.0/applications', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.read, '/');
    const f = filterOf(req, ['displayName', 'appId', 'identifierUris', 'id']);
    const all = (await s.principals.list(c.tenantId)).filter((p) => p.kind === 'servicePrincipal');
    const value = [];
    for (const p of all) {
      if (
        f({
          displayName: lower(p.displayName),
          appId: lower(p.appId),
          identifierUris: lower(p.identifierUri),
          id: [p.id],
        })
      )
        value.push(await application(p));
    }
    return { '@odata.context': context(req, 'applications'), value };
  });

  app.get('/v1.0/applications/:id', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    return {
      '@odata.context': context(req, 'applications/$entity'),
      ...(await application(await findApplication(g, c, id))),
    };
  });

  app.post('/v1.0/applications', async (req, reply) => {
    const c = await caller(req);
    const body = parse(applicationBody, req.body);
    const cert = body.keyCredentials?.[0];
    const created = await s.directory.create(c, requestMeta(req), {
      displayName: body.displayName,
      identifierUri: body.identifierUris?.[0] ?? null,
      publicClient: body.isFallbackPublicClient ?? false,
      credential: cert
        ? {
            type: 'AsymmetricX509Cert',
            certificate: certificatePem(cert.key),
            ...(cert.displayName ? { displayName: cert.displayName } : {}),
          }
        : null,
    });
    const p = await findApplication(g, c, created.servicePrincipal.id);
    reply.code(201);
    return { '@odata.context': context(req, 'applications/$entity'), ...(await application(p)) };
  });

  // Only what can be kept: the same display name (az sends it when it "patches" an existing app).
  app.patch('/v1.0/applications/:id', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(applicationBody.partial(), req.body);
    const p = await findApplication(g, c, id);
    await s.access.require(c, DIRECTORY_ACTIONS.write, '/');
    const unsupported = Object.keys(body).filter(
      (k) => !(k === 'displayName' && body.displayName === p.displayName),
    );
    if (unsupported.length)
      throw new LatchkeyError(
        'Request_BadRequest',
        `Changing ${unsupported.join(', ')} of an application is not supported; use latchkey ad sp or /api/directory.`,
      );
    return reply.code(204).send();
  });

  app.delete('/v1.0/applications/:id', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    await s.directory.delete(c, requestMeta(req), (await findApplication(g, c, id)).id);
    return reply.code(204).send();
  });

  app.post('/v1.0/applications/:id/addPassword', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(addPassword, req.body ?? {});
    const p = await findApplication(g, c, id);
    const end = body.passwordCredential?.endDateTime;
    const endMs = end ? Date.parse(end) : Number.NaN;
    if (end && Number.isNaN(endMs))
      throw new LatchkeyError('Request_BadRequest', 'endDateTime must be an ISO 8601 date and time.');
    const days = end ? Math.ceil((endMs - s.clock.now()) / 86_400_000) : undefined;
    const created = await s.directory.resetCredential(c, requestMeta(req), p.id, {
      type: 'Password',
      append: true,
      ...(body.passwordCredential?.displayName ? { displayName: body.passwordCredential.displayName } : {}),
      ...(days !== undefined ? { days } : {}),
    });
    reply.header('cache-control', 'no-store');
    return {
      '@odata.context': context(req, 'microsoft.graph.passwordCredential'),
      keyId: created.keyId,
      displayName: created.displayName,
      hint: created.hint,
      secretText: created.secretText,
      startDateTime: created.startDateTime,
      endDateTime: created.endDateTime,
      customKeyIdentifier: null,
    };
  });

  app.post('/v1.0/applications/:id/removePassword', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const { keyId } = parse(keyIdBody, req.body);
    const p = await findApplication(g, c, id);
    const creds = await s.credentials.list(p.tenantId, p.id);
    if (!creds.some((k) => k.keyId === keyId.toLowerCase() && k.type === 'Password'))
      throw new LatchkeyError(
        'Request_ResourceNotFound',
        `No password credential with keyId '${keyId.slice(0, 64)}'.`,
      );
    await s.directory.deleteCredential(c, requestMeta(req), p.id, keyId.toLowerCase());
    return reply.code(204).send();
  });
}
