import type { Caller, RequestMeta } from '../access/caller.js';
import { isLatchkeyError } from '../errors/index.js';
import { RG_ACTIONS } from '../management/readable-scopes.js';
import { planApplications } from './manifest-applications.js';
import { planApps } from './manifest-apps.js';
import { planIdentities } from './manifest-identities.js';
import { createPlanner, type PlanItem } from './manifest-plan.js';
import { createRefs, type ManifestDeps, type Refs } from './manifest-refs.js';
import { planRoleAssignments } from './manifest-role-assignments.js';
import { type Manifest, manifestError, parseManifest } from './manifest-schema.js';
import { planSecrets } from './manifest-secrets.js';
import { planVaults } from './manifest-vaults.js';

/**
 * Validates a manifest completely, computes the plan and, unless `dryRun`,
 * applies it in ONE transaction (the services' own transactions join it):
 * any error rolls back everything. Items already in the desired state are
 * `unchanged` and not touched (no new versions, no audit mutations).
 */
export async function applyManifest(
  deps: ManifestDeps,
  caller: Caller,
  meta: RequestMeta,
  body: unknown,
  opts: { dryRun: boolean },
): Promise<{ dryRun: boolean; plan: PlanItem[] }> {
  const m = parseManifest(body);
  const tenant = await deps.tenants.find(m.tenant);
  if (!tenant || tenant.id !== caller.tenantId)
    throw manifestError(
      'TenantMismatch',
      ['tenant'],
      `The manifest is for tenant '${m.tenant.slice(0, 100)}', but the caller belongs to tenant ${caller.tenantId}`,
    );
  const sub = (await deps.scopes.defaultSubscription(caller.tenantId)).subscriptionId;
  const rgName = m.resourceGroup ?? 'default';
  let rg: string;
  // A group the manifest names: allowed to read it first, so that a missing one is told only to
  // who may read it (the default group is every installation's; a manifest of tenant-level items,
  // application registrations, needs no group read).
  if (m.resourceGroup !== undefined)
    await deps.access.require(caller, RG_ACTIONS.read, `/subscriptions/${sub}/resourceGroups/${rgName}`);
  try {
    rg = (await deps.scopes.resourceGroup(caller.tenantId, sub, rgName)).name;
  } catch (e) {
    if (isLatchkeyError(e) && e.status === 404)
      throw manifestError('InvalidReference', ['resourceGroup'], `No resource group '${rgName}'`);
    throw e;
  }
  const refs = createRefs(deps, caller, m, sub, rg);
  const steps = await plan(deps, caller, meta, m, refs);
  const out = steps.map(({ action, kind, name, note }) => ({
    action,
    kind,
    name,
    ...(note ? { note } : {}),
  }));
  if (opts.dryRun || steps.every((s) => !s.run)) return { dryRun: opts.dryRun, plan: out };
  await deps.db.transaction(async () => {
    for (const s of steps) await s.run?.();
  });
  return { dryRun: false, plan: out };
}

/**
 * The plan, a named step per kind in dependency order (identities before the
 * apps that use them, vaults before their secrets; application registrations'
 * credentials depend on nothing); deletions come last, the
 * last one declared first.
 */
async function plan(deps: ManifestDeps, caller: Caller, meta: RequestMeta, m: Manifest, refs: Refs) {
  const p = createPlanner(deps, caller, meta, refs);
  await planIdentities(p, m.identities ?? []);
  await planApplications(p, m.applications ?? []);
  await planApps(p, m.apps ?? []);
  await planVaults(p, m.vaults ?? []);
  await planRoleAssignments(p, m.roleAssignments ?? []);
  await planSecrets(p, m.secrets ?? []);
  return p.steps();
}
