import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LatchkeyError } from '../../errors/index.js';
import { VAULT_LIMITS, type Vault } from '../../vault/model.js';
import type { Collection, ObjectCallContext, Page } from '../../vault/objects.js';
import { queryParam } from '../request.js';
import { parse } from '../validate.js';
import { type VaultRequestContext, vaultContext } from '../vault-context.js';

/**
 * What the secrets and keys routes share: the common request schemas, paging
 * (`maxresults`, `$skiptoken`, `nextLink`), and the routes that list objects
 * and versions, delete, and handle deleted objects, the same for both.
 */

/** Epoch seconds up to 9999-12-31. */
const epoch = z.number().int().min(0).max(253_402_300_799);
export const attributesSchema = z.object({
  enabled: z.boolean().optional(),
  nbf: epoch.nullable().optional(),
  exp: epoch.nullable().optional(),
});
export const tagsSchema = z.record(
  z.string().max(VAULT_LIMITS.tagNameChars),
  z.string().max(VAULT_LIMITS.tagValueChars),
);
/**
 * The body fields `attributes` (a kind may extend the schema) and `tags` of a create, import or
 * update (null: none given), in this order: the first invalid field is the one an error names.
 */
export const objectBodyFields = <A extends z.ZodTypeAny = typeof attributesSchema>(
  attributes: A = attributesSchema as unknown as A,
) => ({ attributes: attributes.nullable().optional(), tags: tagsSchema.nullable().optional() });
const nameParam = z.object({ name: z.string().max(127) });
const versionParams = z.object({ name: z.string().max(127), version: z.string().max(64) });

/** The `{name}` of the path. */
export const nameOf = (req: FastifyRequest) => parse(nameParam, req.params, 'path').name;
/** The `{version}` of `/{collection}/{name}/{version}`. */
export const versionOf = (req: FastifyRequest) => parse(versionParams, req.params, 'path').version;

/** Seconds on the wire, milliseconds in the domain; null clears, undefined leaves as is. */
const ms = (s: number | null | undefined) => (s === undefined ? undefined : s === null ? null : s * 1000);
/** The attributes every object has, as the domain takes them (only those given). */
export const attrsIn = (a: z.infer<typeof attributesSchema> | null | undefined) => ({
  ...(a?.enabled !== undefined ? { enabled: a.enabled } : {}),
  ...(a?.nbf !== undefined ? { nbf: ms(a.nbf) } : {}),
  ...(a?.exp !== undefined ? { exp: ms(a.exp) } : {}),
});

export const noCache = (reply: FastifyReply) => reply.header('cache-control', 'no-cache');

function pageOptions(req: FastifyRequest): { max?: number; after?: string } {
  const max = queryParam(req, 'maxresults');
  const token = queryParam(req, '$skiptoken');
  if (max !== undefined && (!/^\d{1,3}$/.test(max) || Number(max) < 1 || Number(max) > VAULT_LIMITS.pageMax))
    throw new LatchkeyError(
      'BadParameter',
      `maxresults must be an integer from 1 to ${VAULT_LIMITS.pageMax}.`,
    );
  if (token !== undefined && token.length > 1000)
    throw new LatchkeyError('BadParameter', 'The $skiptoken is not valid.');
  return {
    ...(max !== undefined ? { max: Number(max) } : {}),
    ...(token !== undefined ? { after: token } : {}),
  };
}

/** `{value, nextLink}` with an absolute nextLink on the host the client used (null on the last page). */
function pageBody<R, T>(
  ctx: VaultRequestContext,
  path: string,
  page: Page<R>,
  view: (r: R) => T,
  max?: number,
) {
  const nextLink = page.next
    ? `${ctx.responseBase}${path}?api-version=${encodeURIComponent(ctx.apiVersion)}&$skiptoken=${page.next}${max !== undefined ? `&maxresults=${max}` : ''}`
    : null;
  return { value: page.items.map(view), nextLink };
}

type PageOptions = { max?: number; after?: string };
/** The service methods these routes call (objects.ts `createObjectLifecycle`). */
interface ObjectService<R> {
  list(ctx: ObjectCallContext, opts: PageOptions): Promise<Page<R>>;
  listVersions(ctx: ObjectCallContext, name: string, opts: PageOptions): Promise<Page<R>>;
  delete(ctx: ObjectCallContext, name: string): Promise<R>;
  listDeleted(ctx: ObjectCallContext, opts: PageOptions): Promise<Page<R>>;
  getDeleted(ctx: ObjectCallContext, name: string): Promise<R>;
  recover(ctx: ObjectCallContext, name: string): Promise<R>;
  purge(ctx: ObjectCallContext, name: string): Promise<void>;
}
/** The wire views of a kind (secret-views.ts, key-views.ts). */
interface ObjectViews<R> {
  bundle: (base: string, vault: Vault, r: R) => unknown;
  deletedBundle: (base: string, vault: Vault, r: R) => unknown;
  item: (base: string, vault: Vault, r: R, versioned?: boolean) => unknown;
  deletedItem: (base: string, vault: Vault, r: R) => unknown;
}

/**
 * `GET /{collection}`, `GET /{collection}/{name}/versions`, `DELETE /{collection}/{name}`,
 * `POST /{collection}/{name}/backup`, and the deleted objects: `GET /deleted{collection}[/{name}]`,
 * `POST /deleted{collection}/{name}/recover`, `DELETE /deleted{collection}/{name}` (purge).
 */
export function objectRoutes<R>(
  app: FastifyInstance,
  o: {
    collection: Collection;
    service: ObjectService<R>;
    backup: (ctx: ObjectCallContext, name: string) => Promise<Buffer>;
    views: ObjectViews<R>;
  },
): void {
  const { collection, service, views } = o;
  const deleted = `/deleted${collection}`;

  app.get(`/${collection}`, async (req) => {
    const ctx = vaultContext(req);
    const p = pageOptions(req);
    const page = await service.list(ctx, p);
    return pageBody(ctx, `/${collection}`, page, (r) => views.item(ctx.responseBase, ctx.vault, r), p.max);
  });

  app.get(`/${collection}/:name/versions`, async (req) => {
    const ctx = vaultContext(req);
    const n = nameOf(req);
    const p = pageOptions(req);
    const page = await service.listVersions(ctx, n, p);
    return pageBody(
      ctx,
      `/${collection}/${n}/versions`,
      page,
      (r) => views.item(ctx.responseBase, ctx.vault, r, true),
      p.max,
    );
  });

  app.delete(`/${collection}/:name`, async (req) => {
    const ctx = vaultContext(req);
    return views.deletedBundle(ctx.responseBase, ctx.vault, await service.delete(ctx, nameOf(req)));
  });

  app.post(`/${collection}/:name/backup`, async (req, reply) => {
    const ctx = vaultContext(req);
    const blob = await o.backup(ctx, nameOf(req));
    return noCache(reply).send({ value: blob.toString('base64url') });
  });

  app.get(deleted, async (req) => {
    const ctx = vaultContext(req);
    const p = pageOptions(req);
    const page = await service.listDeleted(ctx, p);
    return pageBody(ctx, deleted, page, (r) => views.deletedItem(ctx.responseBase, ctx.vault, r), p.max);
  });

  app.get(`${deleted}/:name`, async (req) => {
    const ctx = vaultContext(req);
    return views.deletedBundle(ctx.responseBase, ctx.vault, await service.getDeleted(ctx, nameOf(req)));
  });

  app.post(`${deleted}/:name/recover`, async (req) => {
    const ctx = vaultContext(req);
    return views.bundle(ctx.responseBase, ctx.vault, await service.recover(ctx, nameOf(req)));
  });

  app.delete(`${deleted}/:name`, async (req, reply) => {
    const ctx = vaultContext(req);
    await service.purge(ctx, nameOf(req));
    return reply.code(204).send();
  });
}
