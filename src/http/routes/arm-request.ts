import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Caller, RequestMeta } from '../../access/caller.js';
import { LatchkeyError } from '../../errors/index.js';
import type { Authenticate } from '../auth.js';
import { queryParam, requestMeta } from '../request.js';
import { parse } from '../validate.js';

// Schemas are built once (zod compiles each new schema on its first parse: ~85 µs a request when built per request).
/** `:sub` of a subscription-level listing. */
export const subscriptionParams = z.object({ sub: z.string().min(1).max(64) });

const API_VERSION_RE = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

/** ARM calls must name an api-version (any dated version is accepted). */
export function requireApiVersion(req: FastifyRequest, example = '2023-01-31'): string {
  const v = queryParam(req, 'api-version');
  if (!v || !API_VERSION_RE.test(v))
    throw new LatchkeyError(
      'InvalidApiVersion',
      `The 'api-version' query parameter is missing or not valid (e.g. api-version=${example}).`,
    );
  return v;
}

/**
 * The caller of an ARM request: a management-audience token, then a valid api-version
 * (`example` names one in the error).
 */
export const armCaller =
  (authenticate: Authenticate, managementResource: string, example: string) =>
  async (req: FastifyRequest): Promise<Caller> => {
    const c = await authenticate(req, [managementResource]);
    requireApiVersion(req, example);
    return c;
  };

const armParams = z.object({
  sub: z.string().min(1).max(64),
  rg: z.string().min(1).max(90),
  name: z.string().min(1).max(128).optional(),
});

/** `{subscriptionId, resourceGroup, name}` from the ARM path parameters. */
export function armPath(req: FastifyRequest): { sub: string; rg: string; name: string } {
  const p = parse(armParams, req.params, 'path');
  return { sub: p.sub, rg: p.rg, name: p.name ?? '' };
}

export const tagsSchema = z.record(z.string().min(1).max(512), z.string().max(256)).optional();

/**
 * The routes an ARM resource type answers alike: PUT (201 created, 200 updated), GET and DELETE
 * of one resource (200 deleted, 204 absent), and its list in a resource group and in a
 * subscription (`{value}`). `put` reads the body (its own schema) and answers with the view. `caller`
 * authenticates and checks the api-version ({@link armCaller}); `groupExists`, if given, is
 * checked before a resource group's list (404 for none).
 */
export function armResourceRoutes<T>(
  app: FastifyInstance,
  o: {
    provider: string;
    caller: (req: FastifyRequest) => Promise<Caller>;
    view: (t: T) => unknown;
    put: (
      c: Caller,
      meta: RequestMeta,
      at: { subscriptionId: string; resourceGroup: string; name: string },
      body: unknown,
    ) => Promise<{ created: boolean; view: unknown }>;
    get: (c: Caller, sub: string, rg: string, name: string) => Promise<T>;
    delete: (c: Caller, meta: RequestMeta, sub: string, rg: string, name: string) => Promise<boolean>;
    list: (c: Caller, sub: string, rg?: string) => Promise<T[]>;
    groupExists?: (c: Caller, sub: string, rg: string) => Promise<unknown>;
  },
): void {
  const group = `/subscriptions/:sub/resourceGroups/:rg/${o.provider}`;
  app.put(`${group}/:name`, async (req, reply) => {
    const c = await o.caller(req);
    const { sub, rg, name } = armPath(req);
    const r = await o.put(c, requestMeta(req), { subscriptionId: sub, resourceGroup: rg, name }, req.body);
    return reply.code(r.created ? 201 : 200).send(r.view);
  });
  app.get(`${group}/:name`, async (req) => {
    const c = await o.caller(req);
    const { sub, rg, name } = armPath(req);
    return o.view(await o.get(c, sub, rg, name));
  });
  app.delete(`${group}/:name`, async (req, reply) => {
    const c = await o.caller(req);
    const { sub, rg, name } = armPath(req);
    const deleted = await o.delete(c, requestMeta(req), sub, rg, name);
    return reply.code(deleted ? 200 : 204).send();
  });
  app.get(group, async (req) => {
    const c = await o.caller(req);
    const { sub, rg } = armPath(req);
    await o.groupExists?.(c, sub, rg);
    return { value: (await o.list(c, sub, rg)).map(o.view) };
  });
  app.get(`/subscriptions/:sub/${o.provider}`, async (req) => {
    const c = await o.caller(req);
    const { sub } = parse(subscriptionParams, req.params, 'path');
    return { value: (await o.list(c, sub)).map(o.view) };
  });
}
