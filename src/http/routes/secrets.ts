import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import { VAULT_LIMITS } from '../../vault/model.js';
import type { Page, SecretRecord } from '../../vault/secrets.js';
import { queryParam } from '../request.js';
import { parse } from '../validate.js';
import { type VaultRequestContext, vaultContext } from '../vault-context.js';
import { deletedSecretBundle, deletedSecretItem, secretBundle, secretItem } from './secret-views.js';

/** Epoch seconds up to 9999-12-31. */
const epoch = z.number().int().min(0).max(253_402_300_799);
const attributes = z.object({
  enabled: z.boolean().optional(),
  nbf: epoch.nullable().optional(),
  exp: epoch.nullable().optional(),
});
const tags = z.record(z.string().max(VAULT_LIMITS.tagNameChars), z.string().max(VAULT_LIMITS.tagValueChars));
const setBody = z.object({
  value: z.string().max(VAULT_LIMITS.secretValueBytes),
  contentType: z.string().max(VAULT_LIMITS.contentTypeChars).nullable().optional(),
  tags: tags.nullable().optional(),
  attributes: attributes.nullable().optional(),
});
const updateBody = z.object({
  contentType: z.string().max(VAULT_LIMITS.contentTypeChars).nullable().optional(),
  tags: tags.nullable().optional(),
  attributes: attributes.nullable().optional(),
});
const restoreBody = z.object({
  value: z
    .string()
    .min(1)
    .max(6 * 1024 * 1024)
    .regex(/^[A-Za-z0-9+/_-]*={0,2}$/),
});
const nameParam = z.object({ name: z.string().max(127) });
const versionParams = z.object({ name: z.string().max(127), version: z.string().max(64) });

/** Seconds on the wire, milliseconds in the domain; null clears, undefined leaves as is. */
const ms = (s: number | null | undefined) => (s === undefined ? undefined : s === null ? null : s * 1000);
const attrsIn = (a: z.infer<typeof attributes> | null | undefined) => ({
  ...(a?.enabled !== undefined ? { enabled: a.enabled } : {}),
  ...(a?.nbf !== undefined ? { nbf: ms(a.nbf) } : {}),
  ...(a?.exp !== undefined ? { exp: ms(a.exp) } : {}),
});

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
function pageBody<T>(
  ctx: VaultRequestContext,
  path: string,
  page: Page<SecretRecord>,
  view: (r: SecretRecord) => T,
  max?: number,
) {
  const nextLink = page.next
    ? `${ctx.responseBase}${path}?api-version=${encodeURIComponent(ctx.apiVersion)}&$skiptoken=${page.next}${max !== undefined ? `&maxresults=${max}` : ''}`
    : null;
  return { value: page.items.map(view), nextLink };
}

const noCache = (reply: FastifyReply) => reply.header('cache-control', 'no-cache');

/** Key Vault secrets REST API (PROTOCOLS.md §3); the vault app has already authenticated the caller. */
export async function secretRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const secrets = opts.services.secrets;
  const name = (req: FastifyRequest) => parse(nameParam, req.params, 'path').name;
  const nameVersion = (req: FastifyRequest) => parse(versionParams, req.params, 'path');

  app.put('/secrets/:name', async (req, reply) => {
    const ctx = vaultContext(req);
    const body = parse(setBody, req.body);
    const r = await secrets.set(ctx, name(req), {
      value: body.value,
      ...(body.contentType !== undefined ? { contentType: body.contentType } : {}),
      ...(body.tags !== undefined ? { tags: body.tags } : {}),
      ...attrsIn(body.attributes),
    });
    return noCache(reply).send(secretBundle(ctx.responseBase, ctx.vault, r, true));
  });

  app.get('/secrets', async (req) => {
    const ctx = vaultContext(req);
    const o = pageOptions(req);
    const page = await secrets.list(ctx, o);
    return pageBody(ctx, '/secrets', page, (r) => secretItem(ctx.responseBase, ctx.vault, r), o.max);
  });

  const getSecret = async (req: FastifyRequest, reply: FastifyReply, version?: string) => {
    const ctx = vaultContext(req);
    const r = await secrets.get(ctx, name(req), version);
    return noCache(reply).send(secretBundle(ctx.responseBase, ctx.vault, r, true));
  };
  app.get('/secrets/:name', (req, reply) => getSecret(req, reply));
  app.get('/secrets/:name/:version', (req, reply) => getSecret(req, reply, nameVersion(req).version));

  app.get('/secrets/:name/versions', async (req) => {
    const ctx = vaultContext(req);
    const n = name(req);
    const o = pageOptions(req);
    const page = await secrets.listVersions(ctx, n, o);
    return pageBody(
      ctx,
      `/secrets/${n}/versions`,
      page,
      (r) => secretItem(ctx.responseBase, ctx.vault, r, true),
      o.max,
    );
  });

  const update = async (req: FastifyRequest, version?: string) => {
    const ctx = vaultContext(req);
    const body = parse(updateBody, req.body);
    const r = await secrets.update(ctx, name(req), version, {
      ...(body.contentType !== undefined ? { contentType: body.contentType } : {}),
      ...(body.tags !== undefined ? { tags: body.tags } : {}),
      ...attrsIn(body.attributes),
    });
    return secretBundle(ctx.responseBase, ctx.vault, r);
  };
  app.patch('/secrets/:name', (req) => update(req));
  app.patch('/secrets/:name/:version', (req) => update(req, nameVersion(req).version));

  app.delete('/secrets/:name', async (req) => {
    const ctx = vaultContext(req);
    return deletedSecretBundle(ctx.responseBase, ctx.vault, await secrets.delete(ctx, name(req)));
  });

  app.post('/secrets/:name/backup', async (req, reply) => {
    const ctx = vaultContext(req);
    const blob = await secrets.backup(ctx, name(req));
    return noCache(reply).send({ value: blob.toString('base64url') });
  });

  app.post('/secrets/restore', { bodyLimit: 8 * 1024 * 1024 }, async (req) => {
    const ctx = vaultContext(req);
    const body = parse(restoreBody, req.body);
    const r = await secrets.restore(
      ctx,
      Buffer.from(body.value.replaceAll('+', '-').replaceAll('/', '_'), 'base64url'),
    );
    return secretBundle(ctx.responseBase, ctx.vault, r);
  });

  app.get('/deletedsecrets', async (req) => {
    const ctx = vaultContext(req);
    const o = pageOptions(req);
    const page = await secrets.listDeleted(ctx, o);
    return pageBody(
      ctx,
      '/deletedsecrets',
      page,
      (r) => deletedSecretItem(ctx.responseBase, ctx.vault, r),
      o.max,
    );
  });

  app.get('/deletedsecrets/:name', async (req) => {
    const ctx = vaultContext(req);
    return deletedSecretBundle(ctx.responseBase, ctx.vault, await secrets.getDeleted(ctx, name(req)));
  });

  app.post('/deletedsecrets/:name/recover', async (req) => {
    const ctx = vaultContext(req);
    return secretBundle(ctx.responseBase, ctx.vault, await secrets.recover(ctx, name(req)));
  });

  app.delete('/deletedsecrets/:name', async (req, reply) => {
    const ctx = vaultContext(req);
    await secrets.purge(ctx, name(req));
    return reply.code(204).send();
  });
}
