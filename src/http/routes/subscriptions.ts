import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Caller } from '../../access/caller.js';
import { scopeCovers } from '../../access/decision.js';
import { LatchkeyError } from '../../errors/index.js';
import { RG_ACTIONS } from '../../management/readable-scopes.js';
import { deleteResourceGroup, type ResourceGroupDeleteDeps } from '../../management/resource-group-delete.js';
import type { ResourceGroup, Subscription } from '../../management/scopes.js';
import type { Services } from '../../server/services.js';
import { vaultEvent } from '../../vault/audit.js';
import type { Authenticate } from '../auth.js';
import { requestMeta } from '../request.js';
import { parse } from '../validate.js';
import { armCaller } from './arm-request.js';

const subParam = z.object({ sub: z.string().min(1).max(64) });
const rgParams = z.object({ sub: z.string().min(1).max(64), rg: z.string().min(1).max(90) });
const rgBody = z.object({
  location: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-zA-Z0-9 -]+$/)
    .optional(),
});

const subscriptionView = (s: Subscription) => ({
  id: `/subscriptions/${s.subscriptionId}`,
  authorizationSource: 'RoleBased',
  subscriptionId: s.subscriptionId,
  tenantId: s.tenantId,
  displayName: s.displayName,
  state: 'Enabled',
  subscriptionPolicies: {
    locationPlacementId: 'Public_2014-09-01',
    quotaId: 'Latchkey',
    spendingLimit: 'Off',
  },
});
const groupView = (g: ResourceGroup) => ({
  id: g.id,
  name: g.name,
  type: 'Microsoft.Resources/resourceGroups',
  location: g.location,
  properties: { provisioningState: 'Succeeded' },
});

/** ARM subscriptions and resource groups (what `az account list` and `az group` see). */
export async function subscriptionRoutes(
  app: FastifyInstance,
  opts: {
    services: ResourceGroupDeleteDeps &
      Pick<Services, 'access' | 'audit' | 'config' | 'db' | 'readableScopes' | 'scopes' | 'tenants'>;
    authenticate: Authenticate;
  },
): Promise<void> {
  const s = opts.services;
  const caller = armCaller(opts.authenticate, s.config.managementResource, '2022-12-01');
  /** As in Azure, a subscription is listed when the caller has a role assignment at, above or inside it. */
  const visible = async (c: Caller, subs: Subscription[]) => {
    if (c.provisioningScopes) return subs;
    const scopes = (await s.access.list(c.tenantId, { principalId: c.oid })).map((a) => a.scope);
    return subs.filter((sub) => {
      const id = `/subscriptions/${sub.subscriptionId}`;
      return scopes.some((sc) => scopeCovers(sc, id) || scopeCovers(id, sc));
    });
  };

  // The caller's own tenant (a principal belongs to exactly one): `az login` without --tenant
  // lists tenants first, then the subscriptions of each.
  app.get('/tenants', async (req) => {
    const c = await caller(req);
    const t = await s.tenants.find(c.tenantId);
    if (!t) return { value: [] };
    const domain = t.domain ?? `${t.id}.latchkey`;
    return {
      value: [
        {
          id: `/tenants/${t.id}`,
          tenantId: t.id,
          tenantCategory: 'Home',
          displayName: t.displayName,
          domains: [domain],
          defaultDomain: domain,
          tenantType: 'AAD',
        },
      ],
    };
  });

  app.get('/subscriptions', async (req) => {
    const c = await caller(req);
    return { value: (await visible(c, await s.scopes.listSubscriptions(c.tenantId))).map(subscriptionView) };
  });

  app.get('/subscriptions/:sub', async (req) => {
    const c = await caller(req);
    const { sub } = parse(subParam, req.params, 'path');
    const found = await visible(c, [await s.scopes.subscription(c.tenantId, sub)]);
    if (!found[0])
      throw new LatchkeyError(
        'ResourceNotFound',
        `The subscription '${sub.slice(0, 64)}' could not be found.`,
      );
    return subscriptionView(found[0]);
  });

  app.get('/subscriptions/:sub/resourcegroups', async (req) => {
    const c = await caller(req);
    const { sub } = parse(subParam, req.params, 'path');
    const subscription = await s.scopes.subscription(c.tenantId, sub);
    const groups = await s.readableScopes.resourceGroups(c, subscription.subscriptionId);
    return { value: groups.map(groupView) };
  });

  app.get('/subscriptions/:sub/resourcegroups/:rg', async (req) => {
    const c = await caller(req);
    const { sub, rg } = parse(rgParams, req.params, 'path');
    const subscription = await s.scopes.subscription(c.tenantId, sub);
    // Allowed first, at the group as named: the same 403 whether or not it exists (as ARM).
    await s.access.require(
      c,
      RG_ACTIONS.read,
      `/subscriptions/${subscription.subscriptionId}/resourceGroups/${rg}`,
    );
    const g = await s.scopes.resourceGroup(c.tenantId, subscription.subscriptionId, rg);
    return groupView(g);
  });

  app.put('/subscriptions/:sub/resourcegroups/:rg', async (req, reply) => {
    const c = await caller(req);
    const { sub, rg } = parse(rgParams, req.params, 'path');
    const body = parse(rgBody, req.body);
    const subscription = await s.scopes.subscription(c.tenantId, sub);
    const id = `/subscriptions/${subscription.subscriptionId}/resourceGroups/${rg}`;
    await s.access.require(c, RG_ACTIONS.write, id);
    const { group, created } = await s.db.transaction(async (tx) => {
      await s.audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
      const existing = await s.scopes
        .resourceGroup(c.tenantId, subscription.subscriptionId, rg, tx)
        .catch(() => undefined);
      if (existing) return { group: existing, created: false };
      const location = body.location?.replaceAll(' ', '').toLowerCase() ?? 'local';
      const g = await s.scopes.ensureResourceGroup(c.tenantId, subscription.subscriptionId, rg, tx, location);
      await s.audit.append(tx, vaultEvent(c, requestMeta(req), 'ResourceGroupCreate', g.id, null, 201));
      return { group: g, created: true };
    });
    return reply.code(created ? 201 : 200).send(groupView(group));
  });

  // Deletes the group and everything in it (vaults soft-deleted), done before the answer: ARM's
  // synchronous 200 (az's poller then has nothing to wait for). A missing group is a 404.
  app.delete('/subscriptions/:sub/resourcegroups/:rg', async (req, reply) => {
    const c = await caller(req);
    const { sub, rg } = parse(rgParams, req.params, 'path');
    await deleteResourceGroup(s, c, requestMeta(req), sub, rg);
    return reply.code(200).send();
  });
}
