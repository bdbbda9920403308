import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Caller } from '../../access/caller.js';
import { DIRECTORY_ACTIONS } from '../../access/roles.js';
import type { Principal } from '../../authority/principals.js';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { queryParam, requestMeta } from '../request.js';
import { parse } from '../validate.js';

/**
 * The part of Microsoft Graph (v1.0) that the Azure CLI uses to find directory objects:
 * `me`, users and service principals by id or by a `$filter`, `directoryObjects/getByIds`, and
 * application registrations as `az ad sp create-for-rbac` and `az ad app|sp` manage them.
 * Served at the authority's base URL, which is also the Graph resource a token is asked for
 * (`az` sends its Graph requests to the resource id).
 *
 * Latchkey keeps an application and its service principal as one directory object, so both
 * have the same object id, and creating the service principal of an application returns it.
 * Writes go through the directory service: the same actions at `/`, the same audit records.
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

  // ---- application registrations (writes through the directory service) ----
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
  /** An application registration by object id (a service principal that is not a managed identity). */
  const findApplication = async (c: Caller, id: string) => {
    const p = await s.principals.get(c.tenantId, id.toLowerCase());
    if (p?.kind !== 'servicePrincipal' || !(await mayRead(c, p))) throw notFound(id);
    return p;
  };
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
      ...(await application(await findApplication(c, id))),
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
    const p = await findApplication(c, created.servicePrincipal.id);
    reply.code(201);
    return { '@odata.context': context(req, 'applications/$entity'), ...(await application(p)) };
  });

  // Only what can be kept: the same display name (az sends it when it "patches" an existing app).
  app.patch('/v1.0/applications/:id', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(applicationBody.partial(), req.body);
    const p = await findApplication(c, id);
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
    await s.directory.delete(c, requestMeta(req), (await findApplication(c, id)).id);
    return reply.code(204).send();
  });

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
  app.post('/v1.0/applications/:id/addPassword', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(addPassword, req.body ?? {});
    const p = await findApplication(c, id);
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
    const { keyId } = parse(z.object({ keyId: z.string().min(1).max(64) }).strict(), req.body);
    const p = await findApplication(c, id);
    const creds = await s.credentials.list(p.tenantId, p.id);
    if (!creds.some((k) => k.keyId === keyId.toLowerCase() && k.type === 'Password'))
      throw new LatchkeyError(
        'Request_ResourceNotFound',
        `No password credential with keyId '${keyId.slice(0, 64)}'.`,
      );
    await s.directory.deleteCredential(c, requestMeta(req), p.id, keyId.toLowerCase());
    return reply.code(204).send();
  });

  // The service principal of an application: in Latchkey it exists with the application.
  app.post('/v1.0/servicePrincipals', async (req, reply) => {
    const c = await caller(req);
    const { appId } = parse(z.object({ appId: z.string().min(1).max(64) }).passthrough(), req.body);
    await s.access.require(c, DIRECTORY_ACTIONS.write, '/');
    const p = await s.principals.byAppId(c.tenantId, appId.toLowerCase());
    if (p?.kind !== 'servicePrincipal')
      throw new LatchkeyError(
        'Request_BadRequest',
        `The appId '${appId.slice(0, 64)}' of the object referenced does not reference a valid application object.`,
      );
    reply.code(201);
    return { '@odata.context': context(req, 'servicePrincipals/$entity'), ...servicePrincipal(p) };
  });

  app.delete('/v1.0/servicePrincipals/:id', async (req, reply) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    await s.directory.delete(c, requestMeta(req), (await findApplication(c, id)).id);
    return reply.code(204).send();
  });

  /**
   * `revokeSignInSessions`: ends a user's refresh tokens and console sessions. A user may revoke
   * their own (`/me`); another user's needs `Microsoft.Directory/users/write` at `/`.
   */
  const revoked = (req: FastifyRequest) => ({
    '@odata.context': context(req, 'Edm.Boolean'),
    value: true,
  });
  app.post('/v1.0/me/revokeSignInSessions', async (req) => {
    const c = await caller(req);
    if (c.kind !== 'user')
      throw new LatchkeyError('BadRequest', '/me request is only valid with delegated authentication flow.');
    await s.directory.users.revokeSignInSessions(c, requestMeta(req), c.oid);
    return revoked(req);
  });
  app.post('/v1.0/users/:id/revokeSignInSessions', async (req) => {
    const c = await caller(req);
    const { id } = parse(idParam, req.params, 'path');
    try {
      await s.directory.users.revokeSignInSessions(c, requestMeta(req), id);
    } catch (e) {
      if (e instanceof LatchkeyError && e.code === 'PrincipalNotFound') throw notFound(id);
      throw e;
    }
    return revoked(req);
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
