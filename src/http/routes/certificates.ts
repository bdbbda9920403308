import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import { BACKUP_RESTORE_MAX_CHARS } from '../../vault/backup.js';
import { type CertificateContact, CONTACT_LIMITS } from '../../vault/certificate-contacts.js';
import { MERGE_LIMITS } from '../../vault/certificate-merge.js';
import type { PolicyInput } from '../../vault/certificate-policy.js';
import { POLICY_LIMITS } from '../../vault/certificate-policy.js';
import type { CertificateOperation } from '../../vault/certificates.js';
import { parse } from '../validate.js';
import { vaultContext } from '../vault-context.js';
import {
  certificateBundle,
  certificateItem,
  deletedCertificateBundle,
  deletedCertificateItem,
  operationView,
  policyView,
} from './certificate-views.js';
import { nameOf as name, noCache, objectBodyFields, objectRoutes, versionOf } from './object-routes.js';

const str = (max: number) => z.string().max(max);
const strList = (max: number, chars: number = POLICY_LIMITS.sanChars) => z.array(str(chars)).max(max);
/** `POST /certificates/{name}/{version}/revoke` (Latchkey's own): the RFC 5280 reason, default unspecified. */
const revokeBody = z.object({
  reason: z.enum(['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation']).optional(),
});
/** Azure's CertificatePolicy on the wire; `id` is read-only and ignored. Semantics: vault/certificate-policy.ts. */
const policySchema = z.object({
  id: str(2048).optional(),
  key_props: z
    .object({
      exportable: z.boolean().optional(),
      kty: str(16).optional(),
      key_size: z.number().int().min(0).max(16_384).optional(),
      crv: str(16).optional(),
      reuse_key: z.boolean().optional(),
    })
    .nullable()
    .optional(),
  secret_props: z
    .object({ contentType: str(255).optional() })
    .nullable()
    .optional(),
  x509_props: z
    .object({
      subject: str(POLICY_LIMITS.subjectChars).optional(),
      sans: z
        .object({
          dns_names: strList(POLICY_LIMITS.sans).optional(),
          emails: strList(POLICY_LIMITS.sans).optional(),
          upns: strList(POLICY_LIMITS.sans).optional(),
        })
        .nullable()
        .optional(),
      ekus: strList(POLICY_LIMITS.ekus, 200).optional(),
      key_usage: strList(9, 32).optional(),
      validity_months: z.number().int().min(0).max(100_000).optional(),
    })
    .nullable()
    .optional(),
  lifetime_actions: z
    .array(
      z.object({
        trigger: z
          .object({
            lifetime_percentage: z.number().int().optional(),
            days_before_expiry: z.number().int().optional(),
          })
          .optional(),
        action: z.object({ action_type: str(32).optional() }).optional(),
      }),
    )
    .max(10)
    .nullable()
    .optional(),
  issuer: z
    .object({
      name: str(255).optional(),
      cty: str(255).optional(),
      cert_transparency: z.boolean().optional(),
    })
    .nullable()
    .optional(),
  attributes: z.object({ enabled: z.boolean().optional() }).passthrough().nullable().optional(),
});
const updateBody = z.object({ policy: policySchema.nullable().optional(), ...objectBodyFields() });
const createBody = updateBody.extend({ preserveCertOrder: z.boolean().optional() });
const importBody = createBody.extend({
  /** A PFX (base64) or PEM; 25 KiB as a secret's value, with room for base64. */
  value: z
    .string()
    .min(1)
    .max(64 * 1024),
  pwd: z.string().max(1024).nullable().optional(),
});
/** Azure's CertificateMergeParameters: the signed certificate and its chain, base64 each. */
const mergeBody = z.object({
  x5c: z.array(z.string().min(1).max(MERGE_LIMITS.chars)).min(1).max(MERGE_LIMITS.certificates),
  ...objectBodyFields(),
});
/** Azure's CertificateOperationUpdateParameter. */
const cancelBody = z.object({ cancellation_requested: z.boolean() });
/** A backup blob (base64url; base64 accepted): a sealed backup is at most 3 MiB (vault/backup.ts). */
const restoreBody = z.object({
  value: z
    .string()
    .min(1)
    .max(BACKUP_RESTORE_MAX_CHARS)
    .regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64url'),
});

/** Azure's Contacts on the wire; `id` is read-only and ignored. Semantics: vault/certificate-contacts.ts. */
const contactsBody = z.object({
  id: str(2048).nullable().optional(),
  contacts: z
    .array(
      z.object({
        email: str(CONTACT_LIMITS.email),
        name: str(CONTACT_LIMITS.name).nullable().optional(),
        phone: str(CONTACT_LIMITS.phone).nullable().optional(),
      }),
    )
    .max(CONTACT_LIMITS.contacts),
});
const contactsView = (base: string, contacts: CertificateContact[]) => ({
  id: `${base}/certificates/contacts`,
  contacts,
});

/**
 * The 202 of a create says `inProgress` as Azure's always does, also when Latchkey has already
 * issued the certificate (`GET …/pending` then says `completed`): the Python SDK's poller
 * (azure-keyvault-certificates 4.7) never fetches the certificate when the first answer is
 * already `completed`, and its `result()` is None (test/certificates.python.test.ts).
 */
const acceptedView = (o: CertificateOperation): CertificateOperation =>
  o.status === 'completed' ? { ...o, status: 'inProgress' } : o;

/** The policy as the domain takes it (zod's optional fields typed for exactOptionalPropertyTypes). */
const policyIn = (p: z.infer<typeof policySchema> | null | undefined): PolicyInput | undefined =>
  p ? (p as PolicyInput) : undefined;
const common = (b: {
  attributes?: { enabled?: boolean | undefined } | null | undefined;
  tags?: Record<string, string> | null | undefined;
}) => ({
  ...(b.attributes?.enabled !== undefined ? { enabled: b.attributes.enabled } : {}),
  ...(b.tags !== undefined ? { tags: b.tags } : {}),
});

/**
 * The Key Vault certificates REST API (vault/certificates.ts): create (long-running, issuer
 * Self), import, get, update, policy, pending operation; listing, delete and the deleted
 * certificates and backup through object-routes.ts as for secrets and keys; merge and cancel of
 * a pending request (certificate-merge.ts); issuers in certificate-issuers.ts; contacts
 * (certificate-contacts.ts).
 */
export async function certificateRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'certificates'> },
): Promise<void> {
  const certificates = opts.services.certificates;
  const notYet = (what: string) => async () => {
    throw new LatchkeyError(
      'BadParameter',
      `${what} is not supported by this Latchkey yet (see docs/certificates.md).`,
    );
  };

  // A static segment: Fastify matches it before `/certificates/:name`.
  app.get('/certificates/contacts', async (req) => {
    const ctx = vaultContext(req);
    return contactsView(ctx.responseBase, await certificates.getContacts(ctx));
  });
  app.put('/certificates/contacts', async (req) => {
    const ctx = vaultContext(req);
    const body = parse(contactsBody, req.body);
    const input = body.contacts.map(
      (c): CertificateContact => ({
        email: c.email,
        ...(c.name != null ? { name: c.name } : {}),
        ...(c.phone != null ? { phone: c.phone } : {}),
      }),
    );
    return contactsView(ctx.responseBase, await certificates.setContacts(ctx, input));
  });
  app.delete('/certificates/contacts', async (req) => {
    const ctx = vaultContext(req);
    return contactsView(ctx.responseBase, await certificates.deleteContacts(ctx));
  });

  app.post('/certificates/:name/create', async (req, reply) => {
    const ctx = vaultContext(req);
    const body = parse(createBody, req.body);
    const policy = policyIn(body.policy);
    const r = await certificates.create(ctx, name(req), { ...(policy ? { policy } : {}), ...common(body) });
    return reply
      .code(202)
      .header(
        'location',
        `${ctx.responseBase}/certificates/${r.name}/pending?api-version=${encodeURIComponent(ctx.apiVersion)}`,
      )
      .header('retry-after', '1')
      .send(operationView(ctx.responseBase, r.name, acceptedView(r.operation)));
  });

  app.post('/certificates/:name/import', { bodyLimit: 256 * 1024 }, async (req) => {
    const ctx = vaultContext(req);
    const body = parse(importBody, req.body);
    const policy = policyIn(body.policy);
    const r = await certificates.import(ctx, name(req), {
      value: body.value,
      ...(body.pwd != null ? { password: body.pwd } : {}),
      ...(policy ? { policy } : {}),
      ...common(body),
    });
    return certificateBundle(ctx.responseBase, ctx.vault, r);
  });

  app.post('/certificates/restore', { bodyLimit: 8 * 1024 * 1024 }, async (req) => {
    const ctx = vaultContext(req);
    const body = parse(restoreBody, req.body);
    const blob = Buffer.from(
      body.value.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, ''),
      'base64url',
    );
    return certificateBundle(ctx.responseBase, ctx.vault, await certificates.restore(ctx, blob));
  });

  app.get('/certificates/:name/pending', async (req) => {
    const ctx = vaultContext(req);
    const r = await certificates.getOperation(ctx, name(req));
    return operationView(ctx.responseBase, r.name, r.operation);
  });
  app.delete('/certificates/:name/pending', async (req) => {
    const ctx = vaultContext(req);
    const r = await certificates.deleteOperation(ctx, name(req));
    return operationView(ctx.responseBase, r.name, r.operation);
  });
  app.patch('/certificates/:name/pending', async (req) => {
    const ctx = vaultContext(req);
    const body = parse(cancelBody, req.body);
    const r = body.cancellation_requested
      ? await certificates.cancelOperation(ctx, name(req))
      : await certificates.getOperation(ctx, name(req));
    return operationView(ctx.responseBase, r.name, r.operation);
  });
  app.post('/certificates/:name/pending/merge', { bodyLimit: 256 * 1024 }, async (req, reply) => {
    const ctx = vaultContext(req);
    const body = parse(mergeBody, req.body);
    const r = await certificates.merge(ctx, name(req), { x5c: body.x5c, ...common(body) });
    return reply.code(201).send(certificateBundle(ctx.responseBase, ctx.vault, r));
  });

  // Latchkey's own (Azure has no revoke API): a version signed by the tenant CA into its CRL.
  // The same for a soft-deleted certificate's version (`/deletedcertificates/…`): no wait for the purge.
  for (const collection of ['certificates', 'deletedcertificates'] as const)
    app.post(`/${collection}/:name/:version/revoke`, async (req) => {
      const ctx = vaultContext(req);
      const body = parse(revokeBody, req.body ?? {});
      const r = await certificates.revoke(
        ctx,
        name(req),
        versionOf(req) ?? '',
        body.reason ?? 'unspecified',
        {
          deleted: collection === 'deletedcertificates',
        },
      );
      return {
        id: `${ctx.responseBase}/certificates/${r.name}/${r.version}`, // the version's id, deleted or not
        serialNumber: r.serialNumber,
        reason: r.reason,
      };
    });

  app.get('/certificates/:name/policy', async (req) => {
    const ctx = vaultContext(req);
    const r = await certificates.getPolicy(ctx, name(req));
    return policyView(ctx.responseBase, r.name, r.policy, r.created, r.updated);
  });
  app.patch('/certificates/:name/policy', async (req) => {
    const ctx = vaultContext(req);
    const r = await certificates.updatePolicy(ctx, name(req), parse(policySchema, req.body) as PolicyInput);
    return policyView(ctx.responseBase, r.name, r.policy, r.created, r.updated);
  });

  const get = async (req: FastifyRequest, version?: string) => {
    const ctx = vaultContext(req);
    return certificateBundle(ctx.responseBase, ctx.vault, await certificates.get(ctx, name(req), version));
  };
  app.get('/certificates/:name', (req, reply) => get(req).then((b) => noCache(reply).send(b)));
  app.get('/certificates/:name/:version', (req, reply) =>
    get(req, versionOf(req)).then((b) => noCache(reply).send(b)),
  );

  const update = async (req: FastifyRequest, version?: string) => {
    const ctx = vaultContext(req);
    const body = parse(updateBody, req.body);
    const policy = policyIn(body.policy);
    const r = await certificates.update(ctx, name(req), version, {
      ...(policy ? { policy } : {}),
      ...common(body),
    });
    return certificateBundle(ctx.responseBase, ctx.vault, r);
  };
  app.patch('/certificates/:name', (req) => update(req));
  app.patch('/certificates/:name/:version', (req) => update(req, versionOf(req)));

  objectRoutes(app, {
    collection: 'certificates',
    service: certificates,
    backup: certificates.backup,
    views: {
      bundle: certificateBundle,
      deletedBundle: deletedCertificateBundle,
      item: certificateItem,
      deletedItem: deletedCertificateItem,
    },
  });

  // Not built yet: a 400 naming the gap, never the 404 a client reads as "not found".
  const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
  for (const url of ['/certificates/*', '/deletedcertificates/*'])
    app.route({ method: [...methods], url, handler: notYet('This certificates operation') });
}
