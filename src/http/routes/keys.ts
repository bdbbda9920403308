import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { KeyRecord } from '../../vault/key-model.js';
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
import {
  attributesSchema,
  nameOf as name,
  noCache,
  attrsIn as objectAttrsIn,
  objectBodyFields,
  objectRoutes,
  versionOf,
} from './object-routes.js';

const attributes = attributesSchema.extend({ exportable: z.boolean().optional() });
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
  ...objectBodyFields(attributes),
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
  ...objectBodyFields(attributes),
  release_policy: z.unknown().optional(),
});
const updateBody = z.object({
  key_ops: keyOps.nullable().optional(),
  ...objectBodyFields(attributes),
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
const opParams = z.object({ name: z.string().max(127), version: z.string().max(64), op: z.string().max(20) });
// Built once, as every schema: zod compiles a new schema on its first parse (~85 µs a request when built per request).
const unversionedOpParams = z.object({ name: z.string().max(127), op: z.string().max(20) });

/**
 * Base64 or base64url in (the schema's alphabet: `b64`), bytes out. Node's base64url decoder also
 * reads `+`, `/` and trailing `=`, so no rewriting pass is needed.
 */
const bytes = (s: string) => Buffer.from(s, 'base64url');
const attrsIn = (a: z.infer<typeof attributes> | null | undefined) => ({
  ...objectAttrsIn(a),
  ...(a?.exportable !== undefined ? { exportable: a.exportable } : {}),
});
const opt = <K extends string, V>(k: K, v: V | undefined) =>
  v !== undefined ? ({ [k]: v } as Record<K, V>) : {};

const CRYPTO_OPS = ['encrypt', 'decrypt', 'wrapkey', 'unwrapkey', 'sign', 'verify'] as const;

/**
 * Key Vault keys REST API and crypto operations (docs/keys.md); the vault app has already authenticated the caller.
 * Listing, delete, backup and deleted keys: object-routes.ts, shared with secrets.
 */
export async function keyRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'keys' | 'keyBackups' | 'keyOperations' | 'keyPolicies'> },
): Promise<void> {
  const { keys, keyBackups: backups, keyOperations: ops, keyPolicies: policies } = opts.services;
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

  const getKey = async (req: FastifyRequest, reply: FastifyReply, version?: string) => {
    const ctx = vaultContext(req);
    return noCache(reply).send(bundle(ctx, await keys.get(ctx, name(req), version)));
  };
  app.get('/keys/:name', (req, reply) => getKey(req, reply));
  app.get('/keys/:name/:version', (req, reply) => getKey(req, reply, versionOf(req)));

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
  app.patch('/keys/:name/:version', (req) => update(req, versionOf(req)));

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

  const byOp = {
    encrypt: ops.encrypt,
    decrypt: ops.decrypt,
    wrapkey: ops.wrapKey,
    unwrapkey: ops.unwrapKey,
    sign: ops.sign,
  };
  const crypto = async (
    req: FastifyRequest,
    reply: FastifyReply,
    rawOp: string,
    n: string,
    version: string | undefined,
  ) => {
    const ctx = vaultContext(req);
    const op = CRYPTO_OPS.find((o) => o === rawOp.toLowerCase());
    // An operation Latchkey does not perform (release, export…) is 400: the SDKs read a 404 as "no such key".
    if (!op)
      throw new LatchkeyError(
        'BadParameter',
        /^[A-Za-z]{1,20}$/.test(rawOp)
          ? `The key operation '${rawOp}' is not supported.`
          : 'The key operation is not supported.',
      );
    if (op === 'verify') {
      const b = parse(verifyBody, req.body);
      const r = await ops.verify(ctx, n, version, b.alg, bytes(b.digest), bytes(b.value));
      return { value: r.valid };
    }
    const b = parse(opBody, req.body);
    const r = await byOp[op](ctx, n, version, b.alg, bytes(b.value));
    return noCache(reply).send({ kid: keyId(ctx.responseBase, r), value: r.value.toString('base64url') });
  };
  app.post('/keys/:name/:version/:op', (req, reply) => {
    const p = parse(opParams, req.params, 'path');
    return crypto(req, reply, p.op, p.name, p.version || undefined);
  });
  app.post('/keys/:name/:op', (req, reply) => {
    const p = parse(unversionedOpParams, req.params, 'path');
    return crypto(req, reply, p.op, p.name, undefined);
  });

  // Key attestation (2025-07-01) is for HSM-backed keys, which Latchkey has not: 400, not a 404 read as "no such key".
  const noAttestation = () => {
    throw new LatchkeyError(
      'BadParameter',
      'Key attestation is not supported: Latchkey keys are not HSM-backed.',
    );
  };
  app.get('/keys/:name/attestation', noAttestation);
  app.get('/keys/:name/:version/attestation', noAttestation);

  app.post('/rng', async (req, reply) => {
    const ctx = vaultContext(req);
    const b = parse(rngBody, req.body);
    return noCache(reply).send({ value: (await ops.random(ctx, b.count)).toString('base64url') });
  });

  objectRoutes(app, {
    collection: 'keys',
    service: keys,
    backup: backups.backup,
    views: { bundle: keyBundle, deletedBundle: deletedKeyBundle, item: keyItem, deletedItem: deletedKeyItem },
  });
}
