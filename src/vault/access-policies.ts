import { LatchkeyError } from '../errors/index.js';
import { isGuid } from '../lib/ids.js';
import {
  type AccessPolicy,
  type AccessPolicyPermissions,
  CERTIFICATE_PERMISSIONS,
  KEY_PERMISSIONS,
  SECRET_PERMISSIONS,
  STORAGE_PERMISSIONS,
  VAULT_LIMITS,
} from './model.js';

type Kind = keyof AccessPolicyPermissions;
const KNOWN: Record<Kind, readonly string[]> = {
  secrets: SECRET_PERMISSIONS,
  keys: KEY_PERMISSIONS,
  certificates: CERTIFICATE_PERMISSIONS,
  storage: STORAGE_PERMISSIONS,
};
const KINDS = Object.keys(KNOWN) as Kind[];
const canonical = new Map(
  KINDS.map((k) => [k, new Map([...KNOWN[k], 'all'].map((p) => [p.toLowerCase(), p]))] as const),
);

/**
 * Validates and normalises access policies: GUID object ids (lower-cased), the
 * vault's tenant, known permission names in Azure's spelling, no duplicates.
 */
export function normalizePolicies(tenantId: string, input: readonly AccessPolicy[]): AccessPolicy[] {
  if (input.length > VAULT_LIMITS.accessPolicies)
    throw new LatchkeyError(
      'BadParameter',
      `A vault has at most ${VAULT_LIMITS.accessPolicies} access policies.`,
    );
  return input.map((p, i) => {
    if (!isGuid(p.objectId))
      throw new LatchkeyError('BadParameter', `accessPolicies[${i}].objectId must be a GUID.`);
    if (p.tenantId.toLowerCase() !== tenantId.toLowerCase())
      throw new LatchkeyError('BadParameter', `accessPolicies[${i}].tenantId must be the vault's tenant.`);
    if (p.applicationId !== undefined && !isGuid(p.applicationId))
      throw new LatchkeyError('BadParameter', `accessPolicies[${i}].applicationId must be a GUID.`);
    const permissions: AccessPolicyPermissions = {};
    for (const kind of KINDS) {
      const list = p.permissions[kind];
      if (list === undefined) continue;
      const names = canonical.get(kind)!;
      const out: string[] = [];
      for (const raw of list) {
        const name = names.get(raw.toLowerCase());
        if (!name)
          throw new LatchkeyError(
            'BadParameter',
            `accessPolicies[${i}].permissions.${kind}: '${raw.slice(0, 40)}' is not a ${kind} permission.`,
          );
        if (!out.includes(name)) out.push(name);
      }
      permissions[kind] = out;
    }
    return {
      tenantId: tenantId,
      objectId: p.objectId.toLowerCase(),
      ...(p.applicationId ? { applicationId: p.applicationId.toLowerCase() } : {}),
      permissions,
    };
  });
}

const sameIdentity = (a: AccessPolicy, b: AccessPolicy) =>
  a.objectId === b.objectId && (a.applicationId ?? '') === (b.applicationId ?? '');

/**
 * Azure's `accessPolicies/{add|replace|remove}`: add merges permissions into the
 * identity's entry (creating it), replace sets them, remove takes them away
 * (dropping an entry left with none).
 */
export function applyPolicyChange(
  current: readonly AccessPolicy[],
  kind: 'add' | 'replace' | 'remove',
  changes: readonly AccessPolicy[],
): AccessPolicy[] {
  const result = current.map((p) => ({ ...p, permissions: { ...p.permissions } }));
  for (const change of changes) {
    const idx = result.findIndex((p) => sameIdentity(p, change));
    const existing = idx >= 0 ? result[idx]! : undefined;
    if (kind === 'replace' || (kind === 'add' && !existing)) {
      if (existing) result[idx] = { ...change, permissions: { ...change.permissions } };
      else result.push({ ...change, permissions: { ...change.permissions } });
      continue;
    }
    if (!existing) continue; // remove of an absent entry: nothing to do
    for (const k of KINDS) {
      const given = change.permissions[k];
      if (!given) continue;
      const have = existing.permissions[k] ?? [];
      existing.permissions[k] =
        kind === 'add'
          ? [...have, ...given.filter((g) => !have.includes(g))]
          : have.filter((h) => !given.includes(h));
    }
    if (kind === 'remove' && KINDS.every((k) => (existing.permissions[k] ?? []).length === 0))
      result.splice(idx, 1);
  }
  if (result.length > VAULT_LIMITS.accessPolicies)
    throw new LatchkeyError(
      'BadParameter',
      `A vault has at most ${VAULT_LIMITS.accessPolicies} access policies.`,
    );
  return result;
}

/** A policy list in a canonical form: identities and permissions sorted, case folded. */
const policyKey = (ps: readonly AccessPolicy[]): string =>
  JSON.stringify(
    ps
      .map((p) => [
        p.objectId.toLowerCase(),
        (p.applicationId ?? '').toLowerCase(),
        ...KINDS.map((k) => [...(p.permissions[k] ?? [])].map((x) => x.toLowerCase()).sort()),
      ])
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
  );

/**
 * What a create or update changes in who may use a vault's data: its permission
 * model, or its access policies (a PUT that sends the same list back changes
 * nothing). A new vault changes access when it names any access policy.
 * Undefined when nothing changes.
 */
export function dataAccessChange(
  current: { enableRbacAuthorization: boolean; accessPolicies: readonly AccessPolicy[] } | undefined,
  next: { enableRbacAuthorization: boolean; accessPolicies: readonly AccessPolicy[] },
): 'permission model' | 'access policies' | undefined {
  if (!current) return next.accessPolicies.length > 0 ? 'access policies' : undefined;
  if (current.enableRbacAuthorization !== next.enableRbacAuthorization) return 'permission model';
  return policyKey(current.accessPolicies) === policyKey(next.accessPolicies) ? undefined : 'access policies';
}
