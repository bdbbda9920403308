import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AssignmentFilter } from '../../access/assignments-service.js';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { queryParam, requestMeta } from '../request.js';
import { parse } from '../validate.js';

// Schemas are built once (zod compiles each new schema on its first parse: ~85 µs a request when built per request).
const assigneeParams = z.object({ assignee: z.string().min(1).max(255) });

const AUTHZ_RE =
  /\/providers\/Microsoft\.Authorization\/(roleAssignments|roleDefinitions)(?:\/([^/]+))?\/?$/i;
const API_VERSION_RE = /^\d{4}-\d{2}-\d{2}(-preview)?$/;
const GUID = '([0-9a-fA-F-]{36})';

const assignmentBody = z.object({
  properties: z.object({
    roleDefinitionId: z.string().min(1).max(300),
    principalId: z.string().min(1).max(64),
    principalType: z.enum(['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device']).optional(),
    description: z.string().max(1024).nullish(),
    condition: z.null().optional(),
    conditionVersion: z.string().max(10).nullish(),
    delegatedManagedIdentityResourceId: z.null().optional(),
  }),
});

const PRINCIPAL_EQ = new RegExp(`^principalId\\s+eq\\s+'${GUID}'$`, 'i');
const ASSIGNED_TO = new RegExp(`^assignedTo\\('${GUID}'\\)$`, 'i');
const ROLE_NAME_EQ = /^roleName\s+eq\s+'((?:[^']|'')+)'$/i;
const TYPE_EQ = /^type\s+eq\s+'(\w+)'$/i;

const clauses = (filter: string): string[] => {
  if (filter.length > 300) throw new LatchkeyError('BadParameter', 'The $filter is too long.');
  return filter
    .trim()
    .split(/\s+and\s+/i)
    .map((c) => c.trim());
};

/** `$filter` of a role-assignment list: `atScope()`, `principalId eq '…'`, `assignedTo('…')`, joined by `and`. */
export function parseAssignmentFilter(filter: string | undefined): AssignmentFilter {
  const out: AssignmentFilter = {};
  if (!filter) return out;
  for (const c of clauses(filter)) {
    const principal = PRINCIPAL_EQ.exec(c) ?? ASSIGNED_TO.exec(c);
    if (/^atScope\(\)$/i.test(c)) out.atScope = true;
    else if (principal) out.principalId = principal[1]!;
    else
      throw new LatchkeyError(
        'BadParameter',
        "Unsupported $filter: use atScope(), principalId eq '{id}' or assignedTo('{id}'), joined by 'and'.",
      );
  }
  return out;
}

/** `$filter` of a role-definition list: `roleName eq '…'` and/or `type eq 'BuiltInRole'`. */
export function parseDefinitionFilter(filter: string | undefined): { roleName?: string; none?: boolean } {
  const out: { roleName?: string; none?: boolean } = {};
  if (!filter) return out;
  for (const c of clauses(filter)) {
    const name = ROLE_NAME_EQ.exec(c);
    const type = TYPE_EQ.exec(c);
    if (name) out.roleName = name[1]!.replaceAll("''", "'");
    else if (type) out.none = type[1]!.toLowerCase() !== 'builtinrole' || out.none === true;
    else
      throw new LatchkeyError(
        'BadParameter',
        "Unsupported $filter: use roleName eq '{name}' or type eq 'BuiltInRole'.",
      );
  }
  return out;
}

/** Splits `/{scope}/providers/Microsoft.Authorization/{kind}[/{name}]` from a raw request path. */
function splitAuthorizationPath(
  url: string,
): { scope: string; kind: 'roleAssignments' | 'roleDefinitions'; name?: string } | undefined {
  const path = url.split('?')[0]!;
  if (path.length > 1500) return undefined;
  const m = AUTHZ_RE.exec(path);
  if (!m) return undefined;
  let scope: string;
  let name: string | undefined;
  try {
    scope = decodeURIComponent(path.slice(0, m.index)) || '/';
    name = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
  } catch {
    return undefined;
  }
  const kind = m[1]!.toLowerCase() === 'roleassignments' ? 'roleAssignments' : 'roleDefinitions';
  return { scope, kind, ...(name !== undefined ? { name } : {}) };
}

/**
 * ARM role assignments and role definitions at any scope. Scopes nest
 * arbitrarily (`/`, a subscription, a group, a vault, a vault object), so this
 * plugin owns the wildcard paths `/subscriptions/*` and
 * `/providers/Microsoft.Authorization/*` and dispatches on the path suffix;
 * the router tries every static and parametric route (vaults, groups) first,
 * and anything here that is not an authorization path gets the normal 404.
 */
export async function roleRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'config' | 'roleAssignments'>; authenticate: Authenticate },
) {
  const s = opts.services;
  const ra = s.roleAssignments;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);

  const dispatch = async (req: FastifyRequest, reply: FastifyReply) => {
    const target = splitAuthorizationPath(req.url);
    if (!target) return reply.callNotFound();
    const c = await caller(req);
    const apiVersion = queryParam(req, 'api-version');
    if (!apiVersion || !API_VERSION_RE.test(apiVersion))
      throw new LatchkeyError(
        'InvalidApiVersion',
        "The 'api-version' query parameter is missing or not valid (e.g. api-version=2022-04-01).",
      );
    const filter = queryParam(req, '$filter');
    const { scope, kind, name } = target;
    const method = req.method;
    if (kind === 'roleDefinitions') {
      if (method !== 'GET')
        throw new LatchkeyError('MethodNotAllowed', 'Role definitions are read-only here.');
      if (name !== undefined) return ra.getDefinition(c, scope, name);
      const f = parseDefinitionFilter(filter);
      const value = f.none
        ? []
        : await ra.listDefinitions(c, scope, f.roleName ? { roleName: f.roleName } : {});
      return { value };
    }
    if (name === undefined) {
      if (method !== 'GET') throw new LatchkeyError('MethodNotAllowed', `${method} is not supported here.`);
      return { value: await ra.list(c, scope, parseAssignmentFilter(filter)) };
    }
    if (method === 'GET') return ra.get(c, scope, name);
    if (method === 'PUT') {
      const body = parse(assignmentBody, req.body);
      const r = await ra.create(c, requestMeta(req), scope, name, body.properties);
      return reply.code(r.created ? 201 : 200).send(r.assignment);
    }
    if (method === 'DELETE') {
      const removed = await ra.delete(c, requestMeta(req), scope, name);
      return removed ? removed : reply.code(204).send();
    }
    throw new LatchkeyError('MethodNotAllowed', `${method} is not supported here.`);
  };

  const methods: ('GET' | 'PUT' | 'DELETE' | 'POST' | 'PATCH')[] = ['GET', 'PUT', 'DELETE', 'POST', 'PATCH'];
  app.route({ method: methods, url: '/subscriptions/*', handler: dispatch });
  app.route({ method: methods, url: '/providers/Microsoft.Authorization/*', handler: dispatch });

  /** Resolves `--assignee` (object id, app id or user name) for the CLI. */
  app.get('/api/access/principals/:assignee', async (req) => {
    const { assignee } = parse(assigneeParams, req.params, 'path');
    return ra.resolvePrincipal(await caller(req), assignee);
  });
}
