import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { appView } from '../../management/apps.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';
import { armPath, requireApiVersion, subscriptionParams, tagsSchema } from './arm-request.js';

const PROVIDER = 'providers/Microsoft.Web/sites';

const identitySchema = z.object({
  type: z.string().min(1).max(64),
  userAssignedIdentities: z
    .record(z.string().min(1).max(600), z.union([z.record(z.string().max(64), z.unknown()), z.null()]))
    .nullish(),
});
const siteBody = z.object({
  location: z.string().min(1).max(64).optional(),
  tags: tagsSchema,
  identity: identitySchema.optional(),
  properties: z
    .object({
      /** The host the app runs on: its name or ARM id (default: the built-in local host). */
      hostId: z.string().min(1).max(600).optional(),
      keyVaultReferenceIdentity: z.string().min(1).max(600).nullish(),
    })
    .optional(),
});
const settingsBody = z.object({
  properties: z.record(z.string().min(1).max(128), z.string().max(16 * 1024)),
});

/** ARM: apps (`Microsoft.Web/sites`), their identity block and app settings. */
export async function appRoutes(
  app: FastifyInstance,
  opts: {
    services: Pick<Services, 'apps' | 'config' | 'hosts' | 'readableScopes' | 'scopes'>;
    authenticate: Authenticate;
  },
) {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);
  const one = `/subscriptions/:sub/resourceGroups/:rg/${PROVIDER}/:name`;
  const view = async (a: Parameters<typeof appView>[0]) =>
    appView(a, await s.hosts.byId(a.tenantId, a.hostId));

  const write = (mode: 'put' | 'patch') => async (req: FastifyRequest) => {
    const c = await caller(req);
    requireApiVersion(req, '2023-12-01');
    const { sub, rg, name } = armPath(req);
    const b = parse(siteBody, req.body);
    const r = await s.apps.createOrUpdate(
      c,
      requestMeta(req),
      {
        subscriptionId: sub,
        resourceGroup: rg,
        name,
        ...(b.location ? { location: b.location } : {}),
        ...(b.tags ? { tags: b.tags } : {}),
        ...(b.identity ? { identity: b.identity } : {}),
        ...(b.properties?.hostId ? { host: b.properties.hostId } : {}),
        ...(b.properties?.keyVaultReferenceIdentity !== undefined
          ? { keyVaultReferenceIdentity: b.properties.keyVaultReferenceIdentity }
          : {}),
      },
      mode,
    );
    return { created: r.created, body: await view(r.app) };
  };
  app.put(one, async (req, reply) => {
    const r = await write('put')(req);
    return reply.code(r.created ? 201 : 200).send(r.body);
  });
  app.patch(one, async (req) => (await write('patch')(req)).body);

  app.get(one, async (req) => {
    const c = await caller(req);
    requireApiVersion(req, '2023-12-01');
    const { sub, rg, name } = armPath(req);
    return view(await s.apps.get(c, sub, rg, name));
  });

  app.delete(one, async (req, reply) => {
    const c = await caller(req);
    requireApiVersion(req, '2023-12-01');
    const { sub, rg, name } = armPath(req);
    const deleted = await s.apps.delete(c, requestMeta(req), sub, rg, name);
    return reply.code(deleted ? 200 : 204).send();
  });

  app.get(`/subscriptions/:sub/resourceGroups/:rg/${PROVIDER}`, async (req) => {
    const c = await caller(req);
    requireApiVersion(req, '2023-12-01');
    const { sub, rg } = armPath(req);
    await s.readableScopes.listable(c, sub, rg);
    return { value: await Promise.all((await s.apps.list(c, sub, rg)).map(view)) };
  });
  app.get(`/subscriptions/:sub/${PROVIDER}`, async (req) => {
    const c = await caller(req);
    requireApiVersion(req, '2023-12-01');
    const { sub } = parse(subscriptionParams, req.params, 'path');
    return { value: await Promise.all((await s.apps.list(c, sub)).map(view)) };
  });

  // App settings: values come back only to callers with config/list/action, never cached.
  const settingsView = (armId: string, settings: Record<string, string>) => ({
    id: `${armId}/config/appsettings`,
    name: 'appsettings',
    type: 'Microsoft.Web/sites/config',
    properties: settings,
  });
  app.put(`${one}/config/appsettings`, async (req, reply) => {
    const c = await caller(req);
    requireApiVersion(req, '2023-12-01');
    const { sub, rg, name } = armPath(req);
    const b = parse(settingsBody, req.body);
    const r = await s.apps.replaceSettings(c, requestMeta(req), sub, rg, name, b.properties);
    reply.header('cache-control', 'no-store');
    return settingsView(r.app.armId, r.settings);
  });
  app.post(`${one}/config/appsettings/list`, async (req, reply) => {
    const c = await caller(req);
    requireApiVersion(req, '2023-12-01');
    const { sub, rg, name } = armPath(req);
    const r = await s.apps.listSettings(c, requestMeta(req), sub, rg, name);
    reply.header('cache-control', 'no-store');
    return settingsView(r.app.armId, r.settings);
  });
}
