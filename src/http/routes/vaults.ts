import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { AccessPolicy, Vault } from '../../vault/model.js';
import { createNameAvailability } from '../../vault/name-availability.js';
import type { VaultInput, VaultRef } from '../../vault/vaults.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';
import { armCaller, requireApiVersion } from './arm-request.js';

const PROVIDER = 'providers/Microsoft.KeyVault';
const permissionList = z.array(z.string().min(1).max(40)).max(64);
const policySchema = z.object({
  tenantId: z.string().min(1).max(64),
  objectId: z.string().min(1).max(64),
  applicationId: z.string().max(64).nullish(),
  permissions: z.object({
    keys: permissionList.optional(),
    secrets: permissionList.optional(),
    certificates: permissionList.optional(),
    storage: permissionList.optional(),
  }),
});
const tags = z
  .record(z.string().min(1).max(512), z.string().max(256))
  .refine((t) => Object.keys(t).length <= 50, 'at most 50 tags');
const vaultProperties = z.object({
  tenantId: z.string().min(1).max(64).nullish(),
  sku: z.object({ family: z.string().max(8).nullish(), name: z.string().max(16) }).nullish(),
  enableRbacAuthorization: z.boolean().nullish(),
  enableSoftDelete: z.boolean().nullish(),
  softDeleteRetentionInDays: z.number().int().min(-1_000_000).max(1_000_000).nullish(),
  enablePurgeProtection: z.boolean().nullish(),
  accessPolicies: z.array(policySchema).max(1024).nullish(),
  createMode: z.enum(['default', 'recover']).nullish(),
});
const vaultBody = z.object({
  location: z.string().min(1).max(64).nullish(),
  tags: tags.nullish(),
  properties: vaultProperties.nullish(),
});
const policyBody = z.object({ properties: z.object({ accessPolicies: z.array(policySchema).max(1024) }) });
const refParams = z.object({
  sub: z.string().min(1).max(64),
  rg: z.string().min(1).max(90),
  name: z.string().min(1).max(64),
});
const subParams = z.object({ sub: z.string().min(1).max(64), rg: z.string().min(1).max(90).optional() });
const deletedParams = z.object({
  sub: z.string().min(1).max(64),
  location: z.string().min(1).max(64),
  name: z.string().min(1).max(64),
});
const nameCheckBody = z.object({
  name: z.string().max(256),
  type: z
    .string()
    .max(64)
    .refine(
      (t) => t.toLowerCase() === 'microsoft.keyvault/vaults',
      "type must be 'Microsoft.KeyVault/vaults'",
    ),
});
const mhsmNameCheckBody = z.object({ name: z.string().max(256) });
const subOnly = z.object({ sub: z.string().min(1).max(64) });
const policyKind = z.object({ kind: z.enum(['add', 'replace', 'remove']) });

/**
 * Azure's default of `enableRbacAuthorization` for a new vault: false before api-version
 * 2026-02-01 (az 2.45 and older templates send an access policy for the creator and rely on
 * it), true from then on. Dated versions compare as strings (`2025-…-preview` < `2026-02-01`).
 */
export const RBAC_DEFAULT_FROM_API_VERSION = '2026-02-01';
export const rbacDefaultFor = (apiVersion: string): boolean => apiVersion >= RBAC_DEFAULT_FROM_API_VERSION;

const policiesIn = (list: z.infer<typeof policySchema>[]): AccessPolicy[] =>
  list.map((p) => ({
    tenantId: p.tenantId,
    objectId: p.objectId,
    ...(p.applicationId ? { applicationId: p.applicationId } : {}),
    permissions: p.permissions,
  }));

function vaultInput(body: z.infer<typeof vaultBody>): VaultInput {
  const p = body.properties ?? {};
  if (p.enableSoftDelete === false)
    throw new LatchkeyError(
      'BadParameter',
      'Soft delete is always on: properties.enableSoftDelete cannot be false.',
    );
  const sku = p.sku?.name?.toLowerCase();
  if (sku !== undefined && sku !== 'standard' && sku !== 'premium')
    throw new LatchkeyError('BadParameter', "properties.sku.name must be 'standard' or 'premium'.");
  // Absent and null both mean "not given" (clients serialise unset fields either way).
  return {
    ...(body.location != null ? { location: body.location } : {}),
    ...(body.tags != null ? { tags: body.tags } : {}),
    ...(p.tenantId != null ? { tenantId: p.tenantId } : {}),
    ...(sku !== undefined ? { sku } : {}),
    ...(p.enableRbacAuthorization != null ? { enableRbacAuthorization: p.enableRbacAuthorization } : {}),
    ...(p.softDeleteRetentionInDays != null
      ? { softDeleteRetentionInDays: p.softDeleteRetentionInDays }
      : {}),
    ...(p.enablePurgeProtection != null ? { enablePurgeProtection: p.enablePurgeProtection } : {}),
    ...(p.accessPolicies != null ? { accessPolicies: policiesIn(p.accessPolicies) } : {}),
    ...(p.createMode != null ? { createMode: p.createMode } : {}),
  };
}

/** ARM: Microsoft.KeyVault/vaults, deletedVaults and access policies (Azure's shapes). */
export async function vaultRoutes(
  app: FastifyInstance,
  opts: {
    services: Pick<Services, 'config' | 'scopes' | 'vaultBaseUrl' | 'vaults'>;
    authenticate: Authenticate;
  },
): Promise<void> {
  const s = opts.services;
  const caller = armCaller(opts.authenticate, s.config.managementResource, '2023-07-01');
  const ref = (req: FastifyRequest): VaultRef => {
    const p = parse(refParams, req.params, 'path');
    return { subscriptionId: p.sub, resourceGroup: p.rg, name: p.name };
  };
  const view = (v: Vault) => ({
    id: v.armId,
    name: v.name,
    type: 'Microsoft.KeyVault/vaults',
    location: v.location,
    tags: v.tags,
    properties: {
      tenantId: v.tenantId,
      sku: { family: 'A', name: v.sku },
      accessPolicies: v.accessPolicies,
      vaultUri: `${s.vaultBaseUrl(v.nameLower)}/`,
      enabledForDeployment: false,
      enabledForDiskEncryption: false,
      enabledForTemplateDeployment: false,
      enableSoftDelete: true,
      softDeleteRetentionInDays: v.softDeleteRetentionInDays,
      enableRbacAuthorization: v.enableRbacAuthorization,
      ...(v.enablePurgeProtection ? { enablePurgeProtection: true } : {}),
      publicNetworkAccess: 'Enabled',
      provisioningState: 'Succeeded',
    },
  });
  const deletedView = (v: Vault) => ({
    id: `/subscriptions/${v.subscriptionId}/${PROVIDER}/locations/${v.location}/deletedVaults/${v.name}`,
    name: v.name,
    type: 'Microsoft.KeyVault/deletedVaults',
    properties: {
      vaultId: v.armId,
      location: v.location,
      deletionDate: new Date(v.deletedAt ?? 0).toISOString(),
      scheduledPurgeDate: new Date(v.scheduledPurgeAt ?? 0).toISOString(),
      tags: v.tags,
      purgeProtectionEnabled: v.enablePurgeProtection,
    },
  });
  const one = `/subscriptions/:sub/resourceGroups/:rg/${PROVIDER}/vaults/:name`;

  app.put(one, async (req, reply) => {
    const c = await caller(req);
    const input = vaultInput(parse(vaultBody, req.body));
    input.enableRbacAuthorizationDefault = rbacDefaultFor(requireApiVersion(req));
    const r = await s.vaults.createOrUpdate(c, requestMeta(req), ref(req), input);
    return reply.code(r.created ? 201 : 200).send(view(r.vault));
  });

  app.patch(one, async (req) => {
    const c = await caller(req);
    const input = vaultInput(parse(vaultBody, req.body));
    if (input.createMode !== undefined)
      throw new LatchkeyError('BadParameter', 'createMode is only accepted by PUT.');
    return view(await s.vaults.patch(c, requestMeta(req), ref(req), input));
  });

  app.get(one, async (req) => view(await s.vaults.get(await caller(req), ref(req))));

  app.delete(one, async (req, reply) => {
    const c = await caller(req);
    const existed = await s.vaults.delete(c, requestMeta(req), ref(req));
    return reply.code(existed ? 200 : 204).send();
  });

  app.put(`${one}/accessPolicies/:kind`, async (req) => {
    const c = await caller(req);
    const { kind } = parse(
      policyKind,
      { kind: (req.params as { kind?: string }).kind?.toLowerCase() },
      'path',
    );
    const body = parse(policyBody, req.body);
    const v = await s.vaults.updateAccessPolicies(
      c,
      requestMeta(req),
      ref(req),
      kind,
      policiesIn(body.properties.accessPolicies),
    );
    return {
      id: `${v.armId}/accessPolicies/${kind}`,
      type: 'Microsoft.KeyVault/vaults/accessPolicies',
      location: v.location,
      properties: { accessPolicies: v.accessPolicies },
    };
  });

  const list = async (req: FastifyRequest) => {
    const c = await caller(req);
    const p = parse(subParams, req.params, 'path');
    return { value: (await s.vaults.list(c, p.sub, p.rg)).map(view), nextLink: null };
  };
  app.get(`/subscriptions/:sub/${PROVIDER}/vaults`, list);
  app.get(`/subscriptions/:sub/resourceGroups/:rg/${PROVIDER}/vaults`, list);

  app.get(`/subscriptions/:sub/${PROVIDER}/deletedVaults`, async (req) => {
    const c = await caller(req);
    const p = parse(subParams, req.params, 'path');
    return { value: (await s.vaults.listDeleted(c, p.sub)).map(deletedView), nextLink: null };
  });

  const deletedOne = `/subscriptions/:sub/${PROVIDER}/locations/:location/deletedVaults/:name`;
  app.get(deletedOne, async (req) => {
    const c = await caller(req);
    const p = parse(deletedParams, req.params, 'path');
    return deletedView(await s.vaults.getDeleted(c, p.sub, p.location, p.name));
  });

  app.post(`${deletedOne}/purge`, async (req, reply) => {
    const c = await caller(req);
    const p = parse(deletedParams, req.params, 'path');
    await s.vaults.purgeDeleted(c, requestMeta(req), p.sub, p.location, p.name);
    return reply.code(200).send();
  });

  // Name checks (az keyvault create, azure-mgmt-keyvault): any caller of the subscription's tenant.
  const names = createNameAvailability({ vaults: s.vaults });
  const subscriptionOf = async (req: FastifyRequest) => {
    const c = await caller(req);
    await s.scopes.subscription(c.tenantId, parse(subOnly, req.params, 'path').sub);
  };
  app.post(`/subscriptions/:sub/${PROVIDER}/checkNameAvailability`, async (req) => {
    await subscriptionOf(req);
    return names.vault(parse(nameCheckBody, req.body).name);
  });
  app.post(`/subscriptions/:sub/${PROVIDER}/checkMhsmNameAvailability`, async (req) => {
    await subscriptionOf(req);
    return names.managedHsm(parse(mhsmNameCheckBody, req.body).name);
  });
}
