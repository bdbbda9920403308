import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Caller } from '../../access/caller.js';
import type { Principal } from '../../authority/principals.js';
import { LatchkeyError } from '../../errors/index.js';
import { DIRECTORY_ACTIONS } from '../../management/directory.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { queryParam } from '../request.js';
import { parse } from '../validate.js';

/**
 * The part of Microsoft Graph (v1.0) that the Azure CLI uses to find directory objects:
 * `me`, users and service principals by id or by a `$filter`, and `directoryObjects/getByIds`.
 * Served at the authority's base URL, which is also the Graph resource a token is asked for
 * (`az` sends its Graph requests to the resource id). Read-only: the directory is changed
 * through `/api/directory`, the CLI or the console.
 *
 * Reading needs `Microsoft.Directory/users/read` or `…/servicePrincipals/read` at `/`, as the
 * directory API does; a caller may always read itself (`/me`, or its own id).
 */
export async function graphRoutes(
  app: FastifyInstance,
  opts: { services: Services; authenticate: Authenticate },
): Promise<void> {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, s.issuerBases());
  const context = (req: FastifyRequest, what: string) =>
    `${req.protocol}://${req.headers.host ?? ''}/v1.0/$metadata#${what}`;

  const user = (p: Principal) => ({
    '@odata.type': '#microsoft.graph.user',
    id: p.id,
    userPrincipalName: p.userName ?? '',
    displayName: p.displayName,
    mail: null,
    accountEnabled: p.enabled,
    businessPhones: [],
    givenName: null,
    surname: null,
    jobTitle: null,
    mobilePhone: null,
    officeLocation: null,
    preferredLanguage: null,
  });
  const servicePrincipal = (p: Principal) => ({
    '@odata.type': '#microsoft.graph.servicePrincipal',
    id: p.id,
    appId: p.appId ?? '',
    displayName: p.displayName,
    accountEnabled: p.enabled,
    servicePrincipalType: p.kind === 'managedIdentity' ? 'ManagedIdentity' : 'Application',
    appOwnerOrganizationId: p.tenantId,
    servicePrincipalNames: [p.appId ?? '', ...(p.identifierUri ? [p.identifierUri] : [])].filter(Boolean),
    alternativeNames: p.resourceId ? [p.resourceId] : [],
  });
  const view = (p: Principal) => (p.kind === 'user' ? user(p) : servicePrincipal(p));
  const readAction = (p: Principal) =>
    p.kind === 'user' ? DIRECTORY_ACTIONS.usersRead : DIRECTORY_ACTIONS.read;
  const mayRead = async (c: Caller, p: Principal) =>
    p.id === c.oid || (await s.access.allows(c, readAction(p), '/'));

  const notFound = (id: string) =>
    new LatchkeyError('Request_ResourceNotFound', `Resource '${id.slice(0, 64)}' does not exist.`);

  /**
   * Graph's `$filter` as the Azure CLI writes it: clauses `field eq '…'`, `startswith(field,'…')`
   * and `servicePrincipalNames/any(c:c eq '…')`, joined by `and` or by `or` (not both).
   * Values compare case-insensitively. Anything else is refused, never ignored.
   */
  const filterOf = (req: FastifyRequest, fields: readonly string[]) => {
    const f = queryParam(req, '$filter')?.trim();
    if (f === undefined || f === '') return () => true;
    const unsupported = () =>
      new LatchkeyError(
        'Request_UnsupportedQuery',
        `Unsupported $filter: use ${fields.map((x) => `${x} eq '…'`).join(', ')} or startswith(field,'…'), joined by 'and' or 'or'.`,
      );
    if (f.length > 2048) throw unsupported();
    const joiner = /\s+or\s+/i.test(f) ? 'or' : 'and';
    if (joiner === 'or' && /\s+and\s+/i.test(f)) throw unsupported();
    const known = (name: string) => fields.find((x) => x.toLowerCase() === name.toLowerCase());
    const unquote = (v: string) => v.replace(/''/g, "'").toLowerCase();
    const clauses = f.split(joiner === 'or' ? /\s+or\s+/i : /\s+and\s+/i).map((clause) => {
      const c = clause.trim();
      const any = /^(\w+)\/any\(\s*(\w+)\s*:\s*\2\s+eq\s+'((?:[^']|''){0,400})'\s*\)$/i.exec(c);
      const eq = /^(\w+)\s+eq\s+'((?:[^']|''){0,400})'$/i.exec(c);
      const starts = /^startswith\(\s*(\w+)\s*,\s*'((?:[^']|''){0,400})'\s*\)$/i.exec(c);
      const field = known((any ?? eq ?? starts)?.[1] ?? '');
      if (!field) throw unsupported();
      if (any) return (o: Record<string, string[]>) => (o[field] ?? []).includes(unquote(any[3]!));
      if (eq) return (o: Record<string, string[]>) => (o[field] ?? []).includes(unquote(eq[2]!));
      const prefix = unquote(starts![2]!);
      return (o: Record<string, string[]>) => (o[field] ?? []).some((v) => v.startsWith(prefix));
    });
    return (o: Record<string, string[]>) =>
      joiner === 'or' ? clauses.some((c) => c(o)) : clauses.every((c) => c(o));
  };
  const lower = (...v: (string | null | undefined)[]) =>
    v.filter((x): x is string => !!x).map((x) => x.toLowerCase());

  app.get('/v1.0/me', async (req) => {
    const c = await caller(req);
    const p = c.kind === 'user' ? await s.principals.get(c.tenantId, c.oid) : undefined;
    if (!p) {
      throw new LatchkeyError('BadRequest', '/me request is only valid with delegated authentication flow.');
    }
    return { '@odata.context': context(req, 'users/$entity'), ...user(p) };
  });

  app.get('/v1.0/users', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.usersRead, '/');
    const f = filterOf(req, ['userPrincipalName', 'displayName', 'id', 'mail']);
    const all = await s.principals.list(c.tenantId, 'user');
    const value = all.filter((p) =>
      f({ userPrincipalName: lower(p.userName), displayName: lower(p.displayName), id: [p.id], mail: [] }),
    );
    return { '@odata.context': context(req, 'users'), value: value.map(user) };
  });

  app.get('/v1.0/servicePrincipals', async (req) => {
    const c = await caller(req);
    await s.access.require(c, DIRECTORY_ACTIONS.read, '/');
    const f = filterOf(req, ['servicePrincipalNames', 'appId', 'displayName', 'id']);
    const all = (await s.principals.list(c.tenantId)).filter((p) => p.kind !== 'user');
    const value = all.filter((p) =>
      f({
        servicePrincipalNames: lower(...servicePrincipal(p).servicePrincipalNames),
        appId: lower(p.appId),
        displayName: lower(p.displayName),
        id: [p.id],
      }),
    );
    return { '@odata.context': context(req, 'servicePrincipals'), value: value.map(servicePrincipal) };
  });

  const idParam = z.object({ id: z.string().min(1).max(256) });
  app.get('/v1.0/users/:id', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const p =
      (await s.principals.resolve(c.tenantId, id)) ??
      (await s.principals.byUserName(c.tenantId, id.toLowerCase()))?.principal;
    if (p?.kind !== 'user' || !(await mayRead(c, p))) throw notFound(id);
    return { '@odata.context': context(req, 'users/$entity'), ...user(p) };
  });

  app.get('/v1.0/servicePrincipals/:id', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const p = await s.principals.get(c.tenantId, id.toLowerCase());
    if (!p || p.kind === 'user' || !(await mayRead(c, p))) throw notFound(id);
    return { '@odata.context': context(req, 'servicePrincipals/$entity'), ...servicePrincipal(p) };
  });

  const getByIds = z.object({
    ids: z.array(z.string().min(1).max(64)).max(1000),
    types: z.array(z.string().min(1).max(64)).max(10).nullish(),
  });
  app.post('/v1.0/directoryObjects/getByIds', async (req) => {
    const c = await caller(req);
    const body = parse(getByIds, req.body);
    const types = body.types?.map((t) => t.toLowerCase().replace(/^#?microsoft\.graph\./, ''));
    const value = [];
    for (const id of new Set(body.ids.map((i) => i.toLowerCase()))) {
      const p = await s.principals.get(c.tenantId, id);
      if (!p) continue;
      const type = p.kind === 'user' ? 'user' : 'serviceprincipal';
      if (types && !types.includes(type) && !types.includes('directoryobject')) continue;
      if (await mayRead(c, p)) value.push(view(p));
    }
    return { '@odata.context': context(req, 'directoryObjects'), value };
  });
}
