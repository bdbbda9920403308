import { ROLE_ASSIGNMENT_ACTIONS } from '../access/assignments-service.js';
import type { Caller, RequestMeta } from '../access/caller.js';
import { scopeCovers } from '../access/decision.js';
import { DIRECTORY_ACTIONS, roleById } from '../access/roles.js';
import { LatchkeyError } from '../errors/index.js';
import { identityType } from '../management/app-identity.js';
import type { ManifestDeps } from './manifest-refs.js';
import type { Manifest, PrincipalRef, ScopeRef } from './manifest-schema.js';

type Deps = ManifestDeps;

const upperSnake = (...parts: string[]) =>
  parts
    .join('_')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();

/**
 * The current state of one resource group as a manifest. Secrets are listed
 * without values: `generate` placeholders (default) or `fromEnv` names, so the
 * export applies cleanly to a fresh tenant.
 */
/** What an export left out because the caller may not read it. */
export interface ExportSkip {
  /** `vault NAME: secrets`, `app NAME: settings`, `roleAssignments`, `applications`. */
  what: string;
  reason: string;
}

/** A stored federated credential as a manifest declares it. */
const ficOf = (f: {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
  description: string;
}) => ({
  name: f.name,
  issuer: f.issuer,
  subject: f.subject,
  audiences: f.audiences,
  ...(f.description ? { description: f.description } : {}),
});

const isForbidden = (e: unknown): e is LatchkeyError => e instanceof LatchkeyError && e.status === 403;

export async function exportManifest(
  deps: Deps,
  caller: Caller,
  meta: RequestMeta,
  opts: { resourceGroup?: string; secretValues?: 'generate' | 'env' },
): Promise<Manifest> {
  return (await exportManifestReport(deps, caller, meta, opts)).manifest;
}

/**
 * The export of what the caller may read, and what it skipped: a vault whose secrets the
 * caller may not list, an app whose settings it may not read, the role assignments without
 * read access on the group. Anything else that fails still fails the export.
 */
export async function exportManifestReport(
  deps: Deps,
  caller: Caller,
  meta: RequestMeta,
  opts: { resourceGroup?: string; secretValues?: 'generate' | 'env' },
): Promise<{ manifest: Manifest; skipped: ExportSkip[] }> {
  const skipped: ExportSkip[] = [];
  const orSkip = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      if (!isForbidden(e)) throw e;
      skipped.push({ what, reason: e.message.slice(0, 300) });
      return undefined;
    }
  };
  const tenant = await deps.tenants.find(caller.tenantId);
  if (!tenant) throw new LatchkeyError('NotFound', 'Tenant not found.');
  const sub = (await deps.scopes.defaultSubscription(caller.tenantId)).subscriptionId;
  const rg = (await deps.scopes.resourceGroup(caller.tenantId, sub, opts.resourceGroup ?? 'default')).name;
  const rgScope = `/subscriptions/${sub}/resourceGroups/${rg}`;

  const identities = await deps.userIdentities.list(caller, sub, rg);
  const apps = await deps.apps.list(caller, sub, rg);
  const vaults = await deps.vaults.list(caller, sub, rg);

  const principalRef = async (id: string): Promise<PrincipalRef | undefined> => {
    const app = apps.find((a) => a.systemPrincipalId === id);
    if (app) return { app: app.name };
    const uai = identities.find((u) => u.principalId === id);
    if (uai) return { identity: uai.name };
    const p = await deps.principals.get(caller.tenantId, id);
    if (!p || p.kind === 'managedIdentity') return undefined;
    if (p.kind === 'user') return p.userName ? { user: p.userName } : undefined;
    return p.appId ? { servicePrincipal: p.appId } : undefined;
  };
  const scopeRef = (scope: string): ScopeRef => {
    if (scope.toLowerCase() === rgScope.toLowerCase()) return { resourceGroup: rg };
    for (const v of vaults) {
      const base = v.armId.toLowerCase();
      if (scope.toLowerCase() === base) return { vault: v.name };
      const m = /^\/secrets\/([^/]+)$/.exec(scope.slice(base.length));
      if (scope.toLowerCase().startsWith(`${base}/`) && m) return { vault: v.name, secret: m[1]! };
    }
    return scope;
  };

  const out: Manifest = { apiVersion: 'latchkey/v1', tenant: tenant.domain ?? tenant.id, resourceGroup: rg };
  out.identities = [];
  for (const u of identities) {
    const path = { sub, rg, identity: u.name };
    const fics = await orSkip(`identity ${u.name}: federatedCredentials`, () =>
      deps.federatedCredentials.list(caller, path),
    );
    out.identities.push({
      name: u.name,
      ...(fics?.length ? { federatedCredentials: fics.map(ficOf) } : {}),
    });
  }

  // Application registrations are the tenant's, not the group's: those with federated credentials,
  // to a caller who may read the directory (as the Graph route asks), by application id.
  out.applications = [];
  const readsDirectory = await orSkip('applications', () =>
    deps.access.require(caller, DIRECTORY_ACTIONS.read, '/').then(() => true),
  );
  for (const p of readsDirectory ? await deps.principals.list(caller.tenantId, 'servicePrincipal') : []) {
    const fics = p.appId ? await deps.appFederatedCredentials.list(p) : [];
    if (p.appId && fics.length)
      out.applications.push({ appId: p.appId, federatedCredentials: fics.map(ficOf) });
  }
  out.applications.sort((x, y) => x.appId.localeCompare(y.appId));

  out.apps = [];
  for (const a of apps) {
    const type = identityType(a);
    // Settings are sealed values: exported only to a caller who may list them, else reported as
    // skipped (an app without `settings` in a manifest keeps its settings when applied).
    const settings =
      (await orSkip(`app ${a.name}: settings`, () => deps.apps.listSettings(caller, meta, sub, rg, a.name)))
        ?.settings ?? {};
    out.apps.push({
      name: a.name,
      ...(type !== 'None'
        ? {
            identity: {
              type,
              ...(a.userIdentities.length
                ? { userAssignedIdentities: a.userIdentities.map((u) => u.name) }
                : {}),
            },
          }
        : {}),
      ...(Object.keys(settings).length ? { settings } : {}),
    });
  }

  out.vaults = [];
  for (const v of vaults) {
    const accessPolicies = [];
    for (const p of v.accessPolicies) {
      // A manifest cannot say "only through application X": exported as a plain policy it would
      // grant the user through every application once applied. Left out, it is never widened.
      if (p.applicationId) continue;
      const principal = await principalRef(p.objectId);
      if (principal)
        accessPolicies.push({
          principal,
          permissions: {
            ...(p.permissions.secrets ? { secrets: p.permissions.secrets } : {}),
            ...(p.permissions.keys ? { keys: p.permissions.keys } : {}),
            ...(p.permissions.certificates ? { certificates: p.permissions.certificates } : {}),
          },
        });
    }
    out.vaults.push({
      name: v.name,
      enableRbacAuthorization: v.enableRbacAuthorization,
      softDeleteRetentionInDays: v.softDeleteRetentionInDays,
      enablePurgeProtection: v.enablePurgeProtection,
      ...(accessPolicies.length ? { accessPolicies } : {}),
    });
  }

  const readsAssignments = await orSkip('roleAssignments', () =>
    deps.access.require(caller, ROLE_ASSIGNMENT_ACTIONS.read, rgScope).then(() => true),
  );
  out.roleAssignments = [];
  for (const a of readsAssignments ? await deps.access.list(caller.tenantId, {}) : []) {
    if (!scopeCovers(rgScope, a.scope)) continue;
    const principal = await principalRef(a.principalId);
    const role = roleById(a.roleDefinitionId);
    if (!principal || !role) continue;
    out.roleAssignments.push({ principal, role: role.roleName, scope: scopeRef(a.scope) });
  }
  // A stable order (assignment ids are random), so exports of equal states are equal.
  const key = (x: object) => JSON.stringify(x);
  out.roleAssignments.sort((x, y) => key(x).localeCompare(key(y)));

  out.secrets = [];
  for (const v of vaults) {
    const ctx = { caller, meta, vault: v, baseUrl: deps.vaultBaseUrl(v.nameLower) };
    let after: string | undefined;
    do {
      const page = await orSkip(`vault ${v.name}: secrets`, () =>
        deps.secrets.list(ctx, { max: 25, ...(after ? { after } : {}) }),
      );
      if (!page) break;
      for (const s of page.items)
        out.secrets.push({
          vault: v.name,
          name: s.name,
          ...(s.contentType ? { contentType: s.contentType } : {}),
          ...(s.exp !== null ? { expires: new Date(s.exp).toISOString() } : {}),
          value:
            opts.secretValues === 'env'
              ? { fromEnv: upperSnake(v.name, s.name) }
              : { generate: { length: 32 } },
        });
      after = page.next;
    } while (after);
  }
  return { manifest: out, skipped };
}
