import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Services } from '../../server/services.js';
import { BACKUP_RESTORE_MAX_CHARS } from '../../vault/backup.js';
import { VAULT_LIMITS } from '../../vault/model.js';
import { parse } from '../validate.js';
import { vaultContext } from '../vault-context.js';
import {
  attributesSchema as attributes,
  attrsIn,
  nameOf as name,
  noCache,
  objectRoutes,
  tagsSchema as tags,
  versionOf,
} from './object-routes.js';
import { deletedSecretBundle, deletedSecretItem, secretBundle, secretItem } from './secret-views.js';

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
    .max(BACKUP_RESTORE_MAX_CHARS)
    .regex(/^[A-Za-z0-9+/_-]*={0,2}$/),
});

/**
 * Key Vault secrets REST API (PROTOCOLS.md §3); the vault app has already authenticated the caller.
 * Listing, delete, backup and deleted secrets: object-routes.ts, shared with keys.
 */
export async function secretRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'secrets'> },
): Promise<void> {
  const secrets = opts.services.secrets;

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

  const getSecret = async (req: FastifyRequest, reply: FastifyReply, version?: string) => {
    const ctx = vaultContext(req);
    const r = await secrets.get(ctx, name(req), version);
    return noCache(reply).send(secretBundle(ctx.responseBase, ctx.vault, r, true));
  };
  app.get('/secrets/:name', (req, reply) => getSecret(req, reply));
  app.get('/secrets/:name/:version', (req, reply) => getSecret(req, reply, versionOf(req)));

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
  app.patch('/secrets/:name/:version', (req) => update(req, versionOf(req)));

  app.post('/secrets/restore', { bodyLimit: 8 * 1024 * 1024 }, async (req) => {
    const ctx = vaultContext(req);
    const body = parse(restoreBody, req.body);
    const r = await secrets.restore(
      ctx,
      Buffer.from(body.value.replaceAll('+', '-').replaceAll('/', '_'), 'base64url'),
    );
    return secretBundle(ctx.responseBase, ctx.vault, r);
  });

  objectRoutes(app, {
    collection: 'secrets',
    service: secrets,
    backup: secrets.backup,
    views: {
      bundle: secretBundle,
      deletedBundle: deletedSecretBundle,
      item: secretItem,
      deletedItem: deletedSecretItem,
    },
  });
}
