import { normalizePolicies } from '../vault/access-policies.js';
import { type AccessPolicy, VAULT_ACTIONS, type Vault, vaultArmId } from '../vault/model.js';
import { type Planner, sameJson } from './manifest-plan.js';
import type { ManifestVault } from './manifest-schema.js';

/** Access policies in a comparable form (order and case do not matter). */
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

/** Vaults: created, updated where a declared property differs, deleted when `absent`. */
export async function planVaults(p: Planner, vaults: readonly ManifestVault[]): Promise<void> {
  const { deps, caller, meta, refs } = p;
  for (const [idx, v] of vaults.entries()) {
    const ref = { subscriptionId: refs.sub, resourceGroup: refs.rg, name: v.name };
    const armId = vaultArmId(refs.sub, refs.rg, v.name);
    await p.need(VAULT_ACTIONS.read, armId);
    const cur = (await refs.existing.vault(v.name)) ? await deps.vaults.get(caller, ref) : undefined;
    if (v.state === 'absent') {
      const run = async () => void (await deps.vaults.delete(caller, meta, ref));
      if (cur) await p.remove({ kind: 'vault', name: v.name, run }, VAULT_ACTIONS.delete, cur.armId);
      continue;
    }
    for (const [j, ap] of (v.accessPolicies ?? []).entries())
      await refs.checkPrincipal(ap.principal, ['vaults', idx, 'accessPolicies', j, 'principal'], {
        action: VAULT_ACTIONS.write,
        scope: armId,
      });
    const policies = () => declaredPolicies(p, v, idx);
    const { same, grants } = await compareVault(p, v, idx, cur, policies);
    if (same) {
      p.add({ action: 'unchanged', kind: 'vault', name: v.name });
      continue;
    }
    await p.need(VAULT_ACTIONS.write, armId);
    if (grants) await p.need(VAULT_ACTIONS.grantAccess, armId);
    p.add({
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
}

/** The declared access policies, their principals resolved (those created by this plan included). */
async function declaredPolicies(p: Planner, v: ManifestVault, idx: number): Promise<AccessPolicy[]> {
  const { caller, refs } = p;
  return normalizePolicies(
    caller.tenantId,
    await Promise.all(
      (v.accessPolicies ?? []).map(async (ap, j) => ({
        tenantId: caller.tenantId,
        objectId: (await refs.principalId(ap.principal, ['vaults', idx, 'accessPolicies', j, 'principal']))!,
        permissions: ap.permissions,
      })),
    ),
  );
}

/**
 * Whether the vault already is as declared, and whether the change decides
 * who reads its data (the permission model or access policies: vaults.ts
 * asks `grantAccess` for those).
 */
async function compareVault(
  p: Planner,
  v: ManifestVault,
  idx: number,
  cur: Vault | undefined,
  policies: () => Promise<AccessPolicy[]>,
): Promise<{ same: boolean; grants: boolean }> {
  if (!cur) return { same: false, grants: (v.accessPolicies ?? []).length > 0 };
  let same = true;
  let grants = false;
  if (v.enableRbacAuthorization !== undefined && v.enableRbacAuthorization !== cur.enableRbacAuthorization) {
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
      v.accessPolicies.map((ap, j) =>
        p.refs.principalId(ap.principal, ['vaults', idx, 'accessPolicies', j, 'principal'], false),
      ),
    );
    if (ids.some((x) => !x) || !sameJson(policyKey(await policies()), policyKey(cur.accessPolicies))) {
      same = false;
      grants = true;
    }
  }
  return { same, grants };
}
