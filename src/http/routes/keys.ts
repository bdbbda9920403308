import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { KeyRecord } from '../../vault/key-model.js';
import { VAULT_LIMITS } from '../../vault/model.js';
import type { Page } from '../../vault/secrets.js';
import { queryParam } from '../request.js';
import { parse } from '../validate.js';
import { type VaultRequestContext, vaultContext } from '../vault-context.js';
import {
  deletedKeyBundle,
  deletedKeyItem,
  keyBundle,
  keyId,
  keyItem,
  rotationPolicyView,
} from './key-views.js';

/** Epoch seconds up to 9999-12-31. */
const epoch = z.number().int().min(0).max(253_402_300_799);
const attributes = z.object({
  enabled: z.boolean().optional(),
  nbf: epoch.nullable().optional(),
  exp: epoch.nullable().optional(),
  exportable: z.boolean().optional(),
});
const tags = z.record(z.string().max(VAULT_LIMITS.tagNameChars), z.string().max(VAULT_LIMITS.tagValueChars));
const keyOps = z.array(z.string().max(20)).max(10);
const b64 = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64url');
const createBody = z.object({
  kty: z.string().max(20),
  key_size: z.number().int().min(0).max(16384).optional(),
  public_exponent: z.number().int().min(0).max(0xffffffff).optional(),
  crv: z.string().max(20).optional(),
  key_ops: keyOps.nullable().optional(),
  attributes: attributes.nullable().optional(),
  tags: tags.nullable().optional(),
  release_policy: z.unknown().optional(),
});
const jwkField = z.string().max(2048).optional();
const importBody = z.object({
  Hsm: z.boolean().nullable().optional(),
  key: z.object({
    kty: z.string().max(20),
    key_ops: keyOps.nullable().optional(),
    crv: z.string().max(20).optional(),
    n: jwkField,
    e: jwkField,
    d: jwkField,
    p: jwkField,
    q: jwkField,
    dp: jwkField,
    dq: jwkField,
    qi: jwkField,
    x: jwkField,
    y: jwkField,
  }),
  attributes: attributes.nullable().optional(),
  tags: tags.nullable().optional(),
  release_policy: z.unknown().optional(),
});
const updateBody = z.object({
  key_ops: keyOps.nullable().optional(),
  attributes: attributes.nullable().optional(),
  tags: tags.nullable().optional(),
  release_policy: z.unknown().optional(),
});
const opBody = z.object({ alg: z.string().max(30), value: b64(4096) });
const verifyBody = z.object({ alg: z.string().max(30), digest: b64(200), value: b64(2048) });
const duration = z.string().max(40);
const policyBody = z.object({
  lifetimeActions: z
    .array(
      z.object({
        trigger: z
          .object({
            timeAfterCreate: duration.nullable().optional(),
            timeBeforeExpiry: duration.nullable().optional(),
          })
          .default({}),
        action: z.object({ type: z.string().max(20) }),
      }),
    )
    .max(10)
    .nullable()
    .optional(),
  attributes: z.object({ expiryTime: duration.nullable().optional() }).nullable().optional(),
});
const restoreBody = z.object({ value: b64(8 * 1024 * 1024).min(1) });
const rngBody = z.object({ count: z.number().int() });
const nameParam = z.object({ name: z.string().max(127) });
const versionParams = z.object({ name: z.string().max(127), version: z.string().max(64) });
const opParams = z.object({ name: z.string().max(127), version: z.string().max(64), op: z.string().max(20) });

/** Base64 or base64url in, bytes out. */
const bytes = (s: string) =>
  Buffer.from(s.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, ''), 'base64url');
/** Seconds on the wire, milliseconds in the domain; null clears, undefined leaves as is. */
const ms = (s: number | null | undefined) => (s === undefined ? undefined : s === null ? null : s * 1000);
const attrsIn = (a: z.infer<typeof attributes> | null | undefined) => ({
  ...(a?.enabled !== undefined ? { enabled: a.enabled } : {}),
  ...(a?.nbf !== undefined ? { nbf: ms(a.nbf) } : {}),
  ...(a?.exp !== undefined ? { exp: ms(a.exp) } : {}),
  ...(a?.exportable !== undefined ? { exportable: a.exportable } : {}),
});
const opt = <K extends string, V>(k: K, v: V | undefined) =>
  v !== undefined ? ({ [k]: v } as Record<K, V>) : {};

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
  page: Page<KeyRecord>,
  view: (r: KeyRecord) => T,
  max?: number,
) {
  const nextLink = page.next
    ? `${ctx.responseBase}${path}?api-version=${encodeURIComponent(ctx.apiVersion)}&$skiptoken=${page.next}${max !== undefined ? `&maxresults=${max}` : ''}`
    : null;
  return { value: page.items.map(view), nextLink };
}

const noCache = (reply: FastifyReply) => reply.header('cache-control', 'no-cache');
const CRYPTO_OPS = ['encrypt', 'decrypt', 'wrapkey', 'unwrapkey', 'sign', 'verify'] as const;

/** Key Vault keys REST API and crypto operations (docs/keys.md); the vault app has already authenticated the caller. */
export async function keyRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { keys, keyBackups: backups, keyOperations: ops, keyPolicies: policies } = opts.services;
  const name = (req: FastifyRequest) => parse(nameParam, req.params, 'path').name;
  const nameVersion = (req: FastifyRequest) => parse(versionParams, req.params, 'path');
  const bundle = (ctx: VaultRequestContext, r: KeyRecord) => keyBundle(ctx.responseBase, ctx.vault, r);

  app.post('/keys/:name/create', async (req, reply) => {
    const ctx = vaultContext(req);
    const b = parse(createBody, req.body);
    const r = await keys.create(ctx, name(req), {
      kty: b.kty,
      ...opt('size', b.key_size),
      ...opt('exponent', b.public_exponent),
      ...opt('curve', b.crv),
      ...opt('keyOps', b.key_ops),
      ...opt('tags', b.tags),
      ...opt('releasePolicy', b.release_policy),
      ...attrsIn(b.attributes),
    });
    return noCache(reply).send(bundle(ctx, r));
  });

  app.put('/keys/:name', async (req, reply) => {
    const ctx = vaultContext(req);
    const b = parse(importBody, req.body);
    const r = await keys.import(ctx, name(req), {
      jwk: b.key,
      ...(b.Hsm != null ? { hsm: b.Hsm } : {}),
      ...opt('tags', b.tags),
      ...opt('releasePolicy', b.release_policy),
      ...attrsIn(b.attributes),
    });
    return noCache(reply).send(bundle(ctx, r));
  });

  app.get('/keys', async (req) => {
    const ctx = vaultContext(req);
    const o = pageOptions(req);
    const page = await keys.list(ctx, o);
    return pageBody(ctx, '/keys', page, (r) => keyItem(ctx.responseBase, ctx.vault, r), o.max);
  });

  const getKey = async (req: FastifyRequest, reply: FastifyReply, version?: string) => {
    const ctx = vaultContext(req);
    return noCache(reply).send(bundle(ctx, await keys.get(ctx, name(req), version)));
  };
  app.get('/keys/:name', (req, reply) => getKey(req, reply));
  app.get('/keys/:name/:version', (req, reply) => getKey(req, reply, nameVersion(req).version));

  app.get('/keys/:name/versions', async (req) => {
    const ctx = vaultContext(req);
    const n = name(req);
    const o = pageOptions(req);
    const page = await keys.listVersions(ctx, n, o);
    return pageBody(
      ctx,
      `/keys/${n}/versions`,
      page,
      (r) => keyItem(ctx.responseBase, ctx.vault, r, true),
      o.max,
    );
  });

  const update = async (req: FastifyRequest, version?: string) => {
    const ctx = vaultContext(req);
    const b = parse(updateBody, req.body);
    const r = await keys.update(ctx, name(req), version || undefined, {
      ...opt('keyOps', b.key_ops),
      ...opt('tags', b.tags),
      ...opt('releasePolicy', b.release_policy),
      ...attrsIn(b.attributes),
    });
    return bundle(ctx, r);
  };
  app.patch('/keys/:name', (req) => update(req));
  app.patch('/keys/:name/:version', (req) => update(req, nameVersion(req).version));

  app.delete('/keys/:name', async (req) => {
    const ctx = vaultContext(req);
    return deletedKeyBundle(ctx.responseBase, ctx.vault, await keys.delete(ctx, name(req)));
  });

  app.post('/keys/:name/backup', async (req, reply) => {
    const ctx = vaultContext(req);
    const blob = await backups.backup(ctx, name(req));
    return noCache(reply).send({ value: blob.toString('base64url') });
  });

  app.post('/keys/restore', { bodyLimit: 12 * 1024 * 1024 }, async (req) => {
    const ctx = vaultContext(req);
    const b = parse(restoreBody, req.body);
    return bundle(ctx, await backups.restore(ctx, bytes(b.value)));
  });

  app.post('/keys/:name/rotate', async (req) => {
    const ctx = vaultContext(req);
    return bundle(ctx, await keys.rotate(ctx, name(req)));
  });

  app.get('/keys/:name/rotationpolicy', async (req) => {
    const ctx = vaultContext(req);
    const p = await policies.get(ctx, name(req));
    return rotationPolicyView(ctx.responseBase, p.name, p);
  });

  app.put('/keys/:name/rotationpolicy', async (req) => {
    const ctx = vaultContext(req);
    const b = parse(policyBody, req.body);
    const p = await policies.set(ctx, name(req), {
      // az writes the unused trigger as null.
      lifetimeActions: (b.lifetimeActions ?? []).map((a) => ({
        action: a.action,
        trigger: {
          ...(a.trigger.timeAfterCreate != null ? { timeAfterCreate: a.trigger.timeAfterCreate } : {}),
          ...(a.trigger.timeBeforeExpiry != null ? { timeBeforeExpiry: a.trigger.timeBeforeExpiry } : {}),
        },
      })),
      expiryTime: b.attributes?.expiryTime ?? null,
    });
    return rotationPolicyView(ctx.responseBase, p.name, p);
  });

  const crypto = async (
    req: FastifyRequest,
    reply: FastifyReply,
    rawOp: string,
    n: string,
    version: string | undefined,
  ) => {
    const ctx = vaultContext(req);
    const op = CRYPTO_OPS.find((o) => o === rawOp.toLowerCase());
    if (!op)
      return reply
        .code(404)
        .send({ error: { code: 'NotFound', message: 'The requested operation is not supported.' } });
    if (op === 'verify') {
      const b = parse(verifyBody, req.body);
      const r = await ops.verify(ctx, n, version, b.alg, bytes(b.digest), bytes(b.value));
      return { value: r.valid };
    }
    const b = parse(opBody, req.body);
    const fn = {
      encrypt: ops.encrypt,
      decrypt: ops.decrypt,
      wrapkey: ops.wrapKey,
      unwrapkey: ops.unwrapKey,
      sign: ops.sign,
    }[op];
    const r = await fn(ctx, n, version, b.alg, bytes(b.value));
    return noCache(reply).send({ kid: keyId(ctx.responseBase, r), value: r.value.toString('base64url') });
  };
  app.post('/keys/:name/:version/:op', (req, reply) => {
    const p = parse(opParams, req.params, 'path');
    return crypto(req, reply, p.op, p.name, p.version || undefined);
  });
  app.post('/keys/:name/:op', (req, reply) => {
    const p = parse(z.object({ name: z.string().max(127), op: z.string().max(20) }), req.params, 'path');
    return crypto(req, reply, p.op, p.name, undefined);
  });

  app.get('/deletedkeys', async (req) => {
    const ctx = vaultContext(req);
    const o = pageOptions(req);
    const page = await keys.listDeleted(ctx, o);
    return pageBody(ctx, '/deletedkeys', page, (r) => deletedKeyItem(ctx.responseBase, ctx.vault, r), o.max);
  });

  app.get('/deletedkeys/:name', async (req) => {
    const ctx = vaultContext(req);
    return deletedKeyBundle(ctx.responseBase, ctx.vault, await keys.getDeleted(ctx, name(req)));
  });

  app.post('/deletedkeys/:name/recover', async (req) => {
    const ctx = vaultContext(req);
    return bundle(ctx, await keys.recover(ctx, name(req)));
  });

  app.delete('/deletedkeys/:name', async (req, reply) => {
    const ctx = vaultContext(req);
    await keys.purge(ctx, name(req));
    return reply.code(204).send();
  });

  app.post('/rng', async (req, reply) => {
    const ctx = vaultContext(req);
    const b = parse(rngBody, req.body);
    return noCache(reply).send({ value: (await ops.random(ctx, b.count)).toString('base64url') });
  });
}
