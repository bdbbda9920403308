import { ROLE_ASSIGNMENT_ACTIONS } from '../access/assignments-service.js';
import type { Caller, RequestMeta } from '../access/caller.js';
import { findRole } from '../access/roles.js';
import { isLatchkeyError } from '../errors/index.js';
import { newGuid } from '../lib/ids.js';
import { identityType } from '../management/app-identity.js';
import { APP_ACTIONS, UAI_ACTIONS } from '../management/identity-common.js';
import { normalizePolicies } from '../vault/access-policies.js';
import type { AccessPolicy } from '../vault/model.js';
import { vaultArmId } from '../vault/model.js';
import { VAULT_ACTIONS } from '../vault/vaults.js';
import { createRefs, type ManifestDeps, type Refs } from './manifest-refs.js';
import { type Manifest, manifestError, parseManifest } from './manifest-schema.js';
import { planSecret } from './manifest-secrets.js';

export interface PlanItem {
  action: 'create' | 'update' | 'delete' | 'unchanged';
  kind: 'identity' | 'vault' | 'app' | 'appSettings' | 'roleAssignment' | 'secret';
  name: string;
  /** Why the item is changed without being compared (e.g. a value the caller may not read). */
  note?: string;
}
export interface Step extends PlanItem {
  run?: () => Promise<void>;
}

const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const policyKey = (ps: readonly AccessPolicy[]) =>
  ps
    .map((p) => ({
      o: p.objectId.toLowerCase(),
      // A compound policy (only through one application) is not the plain one a manifest declares.
      a: p.applicationId?.toLowerCase() ?? null,
      s: [...(p.permissions.secrets ?? [])].sort(),
      k: [...(p.permissions.keys ?? [])].sort(),
      c: [...(p.permissions.certificates ?? [])].sort(),
    }))
    .sort((x, y) => x.o.localeCompare(y.o) || (x.a ?? '').localeCompare(y.a ?? ''));

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

async function plan(deps: ManifestDeps, caller: Caller, meta: RequestMeta, m: Manifest, refs: Refs) {
  const { sub, rg } = refs;
  const steps: Step[] = [];
  const deletions: Step[] = [];
  const need = (action: string, scope: string) => deps.access.require(caller, action, scope);
  // Every item is read before it is compared: a caller who may not read a resource gets the same
  // refusal whether it exists and whatever it holds (no plan answer depends on what it may not read).
  const uaiId = (n: string) =>
    `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${n}`;
  const appId = (n: string) =>
    `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Web/sites/${n}`;

  // ---- identities ----
  for (const i of m.identities ?? []) {
    await need(UAI_ACTIONS.read, uaiId(i.name));
    const cur = await refs.existing.identity(i.name);
    if (i.state === 'absent') {
      if (!cur) continue;
      await need(UAI_ACTIONS.delete, cur.armId);
      deletions.unshift({
        action: 'delete',
        kind: 'identity',
        name: i.name,
        run: async () => void (await deps.userIdentities.delete(caller, meta, sub, rg, i.name)),
      });
    } else if (cur) steps.push({ action: 'unchanged', kind: 'identity', name: i.name });
    else {
      await need(UAI_ACTIONS.write, uaiId(i.name));
      steps.push({
        action: 'create',
        kind: 'identity',
        name: i.name,
        run: async () =>
          void (await deps.userIdentities.createOrUpdate(caller, meta, {
            subscriptionId: sub,
            resourceGroup: rg,
            name: i.name,
          })),
      });
    }
  }

  // ---- apps (identity block, settings) ----
  for (const [idx, a] of (m.apps ?? []).entries()) {
    await need(APP_ACTIONS.read, appId(a.name));
    const cur = await refs.existing.app(a.name);
    if (a.state === 'absent') {
      if (!cur) continue;
      await need(APP_ACTIONS.delete, cur.armId);
      deletions.unshift({
        action: 'delete',
        kind: 'app',
        name: a.name,
        run: async () => void (await deps.apps.delete(caller, meta, sub, rg, a.name)),
      });
      continue;
    }
    const uais = a.identity?.userAssignedIdentities ?? [];
    for (const [j, n] of uais.entries())
      await refs.checkIdentity(n, ['apps', idx, 'identity', 'userAssignedIdentities', j]);
    const wantType = a.identity?.type ?? 'None';
    const curType = cur ? identityType(cur) : undefined;
    const sameUais =
      cur &&
      sameJson(
        cur.userIdentities.map((u) => u.name.toLowerCase()).sort(),
        uais.map((n) => n.toLowerCase()).sort(),
      );
    const identityInput = () => ({
      type: wantType,
      ...(uais.length ? { userAssignedIdentities: Object.fromEntries(uais.map((n) => [uaiId(n), {}])) } : {}),
    });
    if (!cur || curType !== wantType || !sameUais) {
      await need(APP_ACTIONS.write, appId(a.name));
      steps.push({
        action: cur ? 'update' : 'create',
        kind: 'app',
        name: a.name,
        run: async () =>
          void (await deps.apps.createOrUpdate(caller, meta, {
            subscriptionId: sub,
            resourceGroup: rg,
            name: a.name,
            identity: identityInput(),
          })),
      });
    } else steps.push({ action: 'unchanged', kind: 'app', name: a.name });
    if (a.settings) {
      const settings = deps.apps.validateSettings(a.settings);
      // Settings are sealed values: compared only when the caller may list them, and that read is
      // audited (AppSettingsList); otherwise written without comparing, whatever they hold.
      const readable = cur && (await deps.access.allows(caller, APP_ACTIONS.listSettings, cur.armId));
      const current = readable
        ? (await deps.apps.listSettings(caller, meta, sub, rg, a.name)).settings
        : undefined;
      const sorted = (o: Record<string, string>) => Object.entries(o).sort(([x], [y]) => x.localeCompare(y));
      if (current && sameJson(sorted(current), sorted(settings)))
        steps.push({ action: 'unchanged', kind: 'appSettings', name: a.name });
      else {
        await need(APP_ACTIONS.writeSettings, appId(a.name));
        steps.push({
          action: cur && (!current || Object.keys(current).length) ? 'update' : 'create',
          kind: 'appSettings',
          name: a.name,
          ...(cur && !current ? { note: 'settings not compared: the caller may not list them' } : {}),
          run: async () => void (await deps.apps.replaceSettings(caller, meta, sub, rg, a.name, settings)),
        });
      }
    }
  }

  // ---- vaults ----
  for (const [idx, v] of (m.vaults ?? []).entries()) {
    const ref = { subscriptionId: sub, resourceGroup: rg, name: v.name };
    await need(VAULT_ACTIONS.read, vaultArmId(sub, rg, v.name));
    const cur = (await refs.existing.vault(v.name)) ? await deps.vaults.get(caller, ref) : undefined;
    if (v.state === 'absent') {
      if (!cur) continue;
      await need(VAULT_ACTIONS.delete, cur.armId);
      deletions.unshift({
        action: 'delete',
        kind: 'vault',
        name: v.name,
        run: async () => void (await deps.vaults.delete(caller, meta, ref)),
      });
      continue;
    }
    for (const [j, p] of (v.accessPolicies ?? []).entries())
      await refs.checkPrincipal(p.principal, ['vaults', idx, 'accessPolicies', j, 'principal']);
    const policies = async () =>
      normalizePolicies(
        caller.tenantId,
        await Promise.all(
          (v.accessPolicies ?? []).map(async (p, j) => ({
            tenantId: caller.tenantId,
            objectId: (await refs.principalId(p.principal, [
              'vaults',
              idx,
              'accessPolicies',
              j,
              'principal',
            ]))!,
            permissions: p.permissions,
          })),
        ),
      );
    let same = !!cur;
    // Setting the permission model or access policies decides who reads the vault's data (vaults.ts).
    let grants = !cur && (v.accessPolicies ?? []).length > 0;
    if (cur) {
      if (
        v.enableRbacAuthorization !== undefined &&
        v.enableRbacAuthorization !== cur.enableRbacAuthorization
      ) {
        same = false;
        grants = true;
      }
      if (
        v.softDeleteRetentionInDays !== undefined &&
        v.softDeleteRetentionInDays !== cur.softDeleteRetentionInDays
      )
        same = false;
      if (v.enablePurgeProtection !== undefined && v.enablePurgeProtection !== cur.enablePurgeProtection)
        same = false;
      if (v.accessPolicies) {
        const ids = await Promise.all(
          v.accessPolicies.map((p, j) =>
            refs.principalId(p.principal, ['vaults', idx, 'accessPolicies', j, 'principal'], false),
          ),
        );
        if (ids.some((x) => !x) || !sameJson(policyKey(await policies()), policyKey(cur.accessPolicies))) {
          same = false;
          grants = true;
        }
      }
    }
    if (same) {
      steps.push({ action: 'unchanged', kind: 'vault', name: v.name });
      continue;
    }
    await need(VAULT_ACTIONS.write, vaultArmId(sub, rg, v.name));
    if (grants) await need(VAULT_ACTIONS.grantAccess, vaultArmId(sub, rg, v.name));
    steps.push({
      action: cur ? 'update' : 'create',
      kind: 'vault',
      name: v.name,
      run: async () =>
        void (await deps.vaults.createOrUpdate(caller, meta, ref, {
          ...(v.enableRbacAuthorization !== undefined
            ? { enableRbacAuthorization: v.enableRbacAuthorization }
            : {}),
          ...(v.softDeleteRetentionInDays !== undefined
            ? { softDeleteRetentionInDays: v.softDeleteRetentionInDays }
            : {}),
          // Azure refuses `false` outright (protection is irreversible): send it only when it matters.
          ...(v.enablePurgeProtection || (v.enablePurgeProtection === false && cur?.enablePurgeProtection)
            ? { enablePurgeProtection: v.enablePurgeProtection }
            : {}),
          ...(v.accessPolicies ? { accessPolicies: await policies() } : {}),
        })),
    });
  }

  // ---- role assignments ----
  for (const [idx, ra] of (m.roleAssignments ?? []).entries()) {
    const path = ['roleAssignments', idx] as const;
    const role = findRole(ra.role);
    if (!role)
      throw manifestError('UnknownRole', [...path, 'role'], `No role named '${ra.role.slice(0, 128)}'`);
    await refs.checkPrincipal(ra.principal, [...path, 'principal']);
    const scope = await refs.scope(ra.scope, [...path, 'scope']);
    const label = `${role.roleName} → ${JSON.stringify(ra.principal)} @ ${typeof ra.scope === 'string' ? ra.scope : JSON.stringify(ra.scope)}`;
    await need(ROLE_ASSIGNMENT_ACTIONS.read, scope);
    const pid = await refs.principalId(ra.principal, [...path, 'principal'], false);
    const found = pid
      ? (await deps.access.list(caller.tenantId, { principalId: pid })).find(
          (x) => x.roleDefinitionId === role.id && eq(x.scope, scope),
        )
      : undefined;
    if (ra.state === 'absent') {
      if (!found) continue;
      await need(ROLE_ASSIGNMENT_ACTIONS.delete, scope);
      deletions.unshift({
        action: 'delete',
        kind: 'roleAssignment',
        name: label,
        run: async () => void (await deps.roleAssignments.delete(caller, meta, scope, found.id)),
      });
    } else if (found) steps.push({ action: 'unchanged', kind: 'roleAssignment', name: label });
    else {
      await need(ROLE_ASSIGNMENT_ACTIONS.write, scope);
      steps.push({
        action: 'create',
        kind: 'roleAssignment',
        name: label,
        run: async () =>
          void (await deps.roleAssignments.create(caller, meta, scope, newGuid(), {
            roleDefinitionId: role.id,
            principalId: (await refs.principalId(ra.principal, [...path, 'principal']))!,
          })),
      });
    }
  }

  // ---- secrets ----
  for (const [idx, s] of (m.secrets ?? []).entries()) {
    const step = await planSecret(deps, caller, meta, refs, s, idx);
    if (step) steps.push(step);
  }

  return [...steps, ...deletions];
}
