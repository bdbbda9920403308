import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Caller } from '../../../access/caller.js';
import { DIRECTORY_ACTIONS } from '../../../access/roles.js';
import type { Principal } from '../../../authority/principals.js';
import { LatchkeyError } from '../../../errors/index.js';
import type { Services } from '../../../server/services.js';
import type { Authenticate } from '../../auth.js';
import { queryParam } from '../../request.js';

/** The services the Graph routes use. */
export type GraphServices = Pick<
  Services,
  | 'access'
  | 'appFederatedCredentials'
  | 'clock'
  | 'config'
  | 'credentials'
  | 'directory'
  | 'issuerBases'
  | 'principals'
>;

/** What the Graph routes are given: the services and the bearer-token authentication. */
export interface GraphRouteOptions {
  services: GraphServices;
  authenticate: Authenticate;
}

/** The request-scoped pieces every Graph route uses. */
export interface Graph {
  s: GraphServices;
  /** The authenticated caller (401 without a valid token). */
  caller(req: FastifyRequest): Promise<Caller>;
  /** A caller may always read itself; others need the read action of the object's kind at `/`. */
  mayRead(c: Caller, p: Principal): Promise<boolean>;
}

export function graphOf(opts: GraphRouteOptions): Graph {
  const s = opts.services;
  const readAction = (p: Principal) =>
    p.kind === 'user' ? DIRECTORY_ACTIONS.usersRead : DIRECTORY_ACTIONS.read;
  return {
    s,
    caller: (req) => opts.authenticate(req, s.issuerBases()),
    mayRead: async (c, p) => p.id === c.oid || (await s.access.allows(c, readAction(p), '/')),
  };
}

/** `@odata.context` of a response: the metadata URL at the host the client asked. */
export const context = (req: FastifyRequest, what: string) =>
  `${req.protocol}://${req.headers.host ?? ''}/v1.0/$metadata#${what}`;

export const notFound = (id: string) =>
  new LatchkeyError('Request_ResourceNotFound', `Resource '${id.slice(0, 64)}' does not exist.`);

export const idParam = z.object({ id: z.string().min(1).max(256) });

/** Graph's `user` resource. */
export const userView = (p: Principal) => ({
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

/** Graph's `servicePrincipal` resource (an application's, or a managed identity's). */
export const servicePrincipalView = (p: Principal) => ({
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

/** Values of a filterable field, in lower case, without the empty ones. */
export const lower = (...v: (string | null | undefined)[]) =>
  v.filter((x): x is string => !!x).map((x) => x.toLowerCase());

/**
 * Graph's `$filter` as the Azure CLI writes it: clauses `field eq '…'`, `startswith(field,'…')`
 * and `servicePrincipalNames/any(c:c eq '…')`, joined by `and` or by `or` (not both).
 * Values compare case-insensitively. Anything else is refused, never ignored.
 */
export function filterOf(req: FastifyRequest, fields: readonly string[]) {
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
}
