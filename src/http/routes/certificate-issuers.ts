import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { seconds } from '../../lib/clock.js';
import type { Services } from '../../server/services.js';
import { type CertificateIssuer, ISSUER_LIMITS, type IssuerInput } from '../../vault/certificate-issuers.js';
import { parse } from '../validate.js';
import { vaultContext } from '../vault-context.js';

const str = z.string().max(ISSUER_LIMITS.chars);
/** Azure's CertificateIssuerSetParameters / UpdateParameters; semantics in vault/certificate-issuers.ts. */
const issuerBody = z.object({
  id: z.string().max(2048).optional(),
  provider: z.string().max(64).optional(),
  credentials: z
    .object({ account_id: str.nullable().optional(), pwd: z.string().max(1024).nullable().optional() })
    .nullable()
    .optional(),
  org_details: z
    .object({
      id: str.nullable().optional(),
      admin_details: z
        .array(
          z.object({
            first_name: str.nullable().optional(),
            last_name: str.nullable().optional(),
            email: str.nullable().optional(),
            phone: str.nullable().optional(),
          }),
        )
        .max(ISSUER_LIMITS.admins)
        .nullable()
        .optional(),
    })
    .nullable()
    .optional(),
  attributes: z.object({ enabled: z.boolean().optional() }).passthrough().nullable().optional(),
});

const issuerId = (base: string, name: string) => `${base}/certificates/issuers/${name}`;
/** IssuerBundle: never the credentials' password. */
const issuerBundle = (base: string, i: CertificateIssuer) => ({
  id: issuerId(base, i.name),
  provider: i.provider,
  ...(i.details.account_id !== undefined ? { credentials: { account_id: i.details.account_id } } : {}),
  ...(i.details.org_details ? { org_details: i.details.org_details } : {}),
  attributes: { enabled: i.enabled, created: seconds(i.created), updated: seconds(i.updated) },
});

/**
 * Certificate issuers (Azure's `/certificates/issuers[/{issuer-name}]`): list, get, set (PUT),
 * update (PATCH), delete, as vault/certificate-issuers.ts keeps them. All the vault's issuers are
 * one page (a vault holds at most 100).
 */
export async function certificateIssuerRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'certificates'> },
): Promise<void> {
  const issuers = opts.services.certificates.issuers;
  const nameOf = (req: FastifyRequest) => (req.params as { issuer: string }).issuer;

  app.get('/certificates/issuers', async (req) => {
    const ctx = vaultContext(req);
    const all = await issuers.list(ctx);
    return {
      value: all.map((i) => ({ id: issuerId(ctx.responseBase, i.name), provider: i.provider })),
      nextLink: null,
    };
  });
  app.get('/certificates/issuers/:issuer', async (req) => {
    const ctx = vaultContext(req);
    return issuerBundle(ctx.responseBase, await issuers.get(ctx, nameOf(req)));
  });
  app.put('/certificates/issuers/:issuer', async (req) => {
    const ctx = vaultContext(req);
    const body = parse(issuerBody, req.body) as IssuerInput;
    return issuerBundle(ctx.responseBase, await issuers.set(ctx, nameOf(req), body));
  });
  app.patch('/certificates/issuers/:issuer', async (req) => {
    const ctx = vaultContext(req);
    const body = parse(issuerBody, req.body) as IssuerInput;
    return issuerBundle(ctx.responseBase, await issuers.update(ctx, nameOf(req), body));
  });
  app.delete('/certificates/issuers/:issuer', async (req) => {
    const ctx = vaultContext(req);
    return issuerBundle(ctx.responseBase, await issuers.delete(ctx, nameOf(req)));
  });
}
