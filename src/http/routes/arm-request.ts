import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Caller } from '../../access/caller.js';
import { LatchkeyError } from '../../errors/index.js';
import type { Authenticate } from '../auth.js';
import { queryParam } from '../request.js';
import { parse } from '../validate.js';

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
