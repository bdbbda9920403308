import type { RoleAssignments } from '../access/assignments-service.js';
import type { Caller } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import { DIRECTORY_ACTIONS } from '../access/roles.js';
import type { Principals } from '../authority/principals.js';
import type { Tenants } from '../authority/tenants.js';
import type { Apps } from '../management/apps.js';
import type { AppFederatedCredentials, FederatedCredentials } from '../management/federated-credentials.js';
import type { UserIdentities } from '../management/identities.js';
import { APP_ACTIONS, armId, SITE_TYPE, UAI_ACTIONS, UAI_TYPE } from '../management/identity-common.js';
import type { Scopes } from '../management/scopes.js';
import type { Database } from '../storage/port.js';
import { VAULT_ACTIONS, vaultArmId } from '../vault/model.js';
import type { Secrets } from '../vault/secrets.js';
import type { Vaults } from '../vault/vaults.js';
import {
  type JsonPath,
  type Manifest,
  manifestError,
  type PrincipalRef,
  type ScopeRef,
} from './manifest-schema.js';

/** The services a manifest reads and writes (src/server/services.ts supplies them). */
export interface ManifestDeps {
  db: Database;
  tenants: Tenants;
  scopes: Scopes;
  principals: Principals;
  access: Access;
  userIdentities: UserIdentities;
  federatedCredentials: FederatedCredentials;
  appFederatedCredentials: AppFederatedCredentials;
  apps: Apps;
  vaults: Vaults;
  secrets: Secrets;
  roleAssignments: RoleAssignments;
  vaultBaseUrl: (nameLower: string) => string;
}

const present = <T extends { state?: 'present' | 'absent' | undefined }>(list: T[] | undefined) =>
  (list ?? []).filter((x) => x.state !== 'absent');
const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Where the manifest's items live, and how its names resolve to principals and ARM scopes. */
export function createRefs(deps: ManifestDeps, caller: Caller, m: Manifest, sub: string, rg: string) {
  const rgScope = `/subscriptions/${sub}/resourceGroups/${rg}`;
  const inManifest = {
    identity: (n: string) => present(m.identities).some((i) => eq(i.name, n)),
    vault: (n: string) => present(m.vaults).some((v) => eq(v.name, n)),
    app: (n: string) => present(m.apps).find((a) => eq(a.name, n)),
  };
  const existing = {
    identity: (n: string) => deps.userIdentities.find(caller.tenantId, sub, rg, n),
    app: (n: string) => deps.apps.find(caller.tenantId, sub, rg, n),
    vault: async (n: string) => {
      const v = await deps.vaults.findActive({
        tenantId: caller.tenantId,
        subscriptionId: sub,
        resourceGroup: rg,
        name: n,
      });
      return v;
    },
  };
  const missing = (path: JsonPath, what: string, name: string) =>
    manifestError(
      'InvalidReference',
      path,
      `The ${what} '${name.slice(0, 128)}' is neither in the manifest nor in resource group '${rg}'`,
    );

  return {
    sub,
    rg,
    rgScope,
    inManifest,
    existing,
    /**
     * Checks a principal reference can be resolved (now or once the manifest's items exist). What
     * it names is looked up only for a caller who may know: an app or identity not in the manifest
     * needs its read action; a user or service principal by name, the directory's read, or else
     * `orAllowed` (the right to grant at the item's scope, which ARM also answers
     * PrincipalNotFound to). So a dry run tells no one else which names exist.
     */
    async checkPrincipal(
      ref: PrincipalRef,
      path: JsonPath,
      orAllowed: { action: string; scope: string },
    ): Promise<void> {
      if ('app' in ref && !inManifest.app(ref.app))
        await deps.access.require(caller, APP_ACTIONS.read, armId(sub, rg, SITE_TYPE, ref.app));
      else if ('identity' in ref && !inManifest.identity(ref.identity))
        await deps.access.require(caller, UAI_ACTIONS.read, armId(sub, rg, UAI_TYPE, ref.identity));
      else if ('user' in ref || 'servicePrincipal' in ref) {
        const read = 'user' in ref ? DIRECTORY_ACTIONS.usersRead : DIRECTORY_ACTIONS.read;
        if (!(await deps.access.allows(caller, read, '/')))
          await deps.access.require(caller, orAllowed.action, orAllowed.scope);
      }
      if ('app' in ref) {
        const want = inManifest.app(ref.app);
        if (want) {
          if (!want.identity?.type.includes('SystemAssigned'))
            throw manifestError(
              'InvalidReference',
              path,
              `The app '${ref.app}' has no system-assigned identity in the manifest`,
            );
          return;
        }
        const a = await existing.app(ref.app);
        if (!a) throw missing(path, 'app', ref.app);
        if (!a.systemPrincipalId)
          throw manifestError(
            'InvalidReference',
            path,
            `The app '${ref.app}' has no system-assigned identity`,
          );
      } else if ('identity' in ref) {
        if (!inManifest.identity(ref.identity) && !(await existing.identity(ref.identity)))
          throw missing(path, 'identity', ref.identity);
      } else if (!(await this.principalId(ref, path, false)))
        throw manifestError('InvalidReference', path, 'The principal does not exist in this tenant');
    },
    /** The object id of a principal reference (once everything before it is applied). */
    async principalId(ref: PrincipalRef, path: JsonPath, required = true): Promise<string | undefined> {
      let id: string | null | undefined;
      if ('app' in ref) id = (await existing.app(ref.app))?.systemPrincipalId;
      else if ('identity' in ref) id = (await existing.identity(ref.identity))?.principalId;
      else if ('servicePrincipal' in ref) {
        const p = await deps.principals.resolve(caller.tenantId, ref.servicePrincipal);
        id = p && p.kind !== 'user' ? p.id : undefined;
      } else id = (await deps.principals.byUserName(caller.tenantId, ref.user))?.principal.id;
      if (!id && required)
        throw manifestError('InvalidReference', path, 'The principal does not exist in this tenant');
      return id ?? undefined;
    },
    /**
     * The ARM scope a scope reference names, checking nothing: for the permission check that goes
     * before any lookup, so that a refusal does not depend on what exists.
     */
    nominalScope(ref: ScopeRef): string {
      if (typeof ref === 'string') return ref;
      if ('resourceGroup' in ref) return `/subscriptions/${sub}/resourceGroups/${ref.resourceGroup}`;
      const id = vaultArmId(sub, rg, ref.vault);
      return ref.secret ? `${id}/secrets/${ref.secret}` : id;
    },
    /** The ARM scope of a scope reference; checks that a named vault exists or is in the manifest. */
    async scope(ref: ScopeRef, path: JsonPath): Promise<string> {
      if (typeof ref === 'string') return ref;
      if ('resourceGroup' in ref) {
        if (!eq(ref.resourceGroup, rg))
          await deps.scopes.resourceGroup(caller.tenantId, sub, ref.resourceGroup).catch(() => {
            throw missing(path, 'resource group', ref.resourceGroup);
          });
        return `/subscriptions/${sub}/resourceGroups/${ref.resourceGroup}`;
      }
      if (!inManifest.vault(ref.vault) && !(await existing.vault(ref.vault)))
        throw missing(path, 'vault', ref.vault);
      const id = vaultArmId(sub, rg, ref.vault);
      return ref.secret ? `${id}/secrets/${ref.secret}` : id;
    },
    /**
     * Checks that a vault named by the manifest is in it, or exists in its resource group; for a
     * vault not in the manifest, the caller must first be allowed to read it there (whether it
     * exists or not), so that the answer does not tell who may not read it which vaults exist.
     */
    async checkVault(name: string, path: JsonPath): Promise<void> {
      if (inManifest.vault(name)) return;
      await deps.access.require(caller, VAULT_ACTIONS.read, vaultArmId(sub, rg, name));
      if (!(await existing.vault(name))) throw missing(path, 'vault', name);
    },
    /** As `checkVault`, for a user-assigned identity (read allowed at its ARM id first). */
    async checkIdentity(name: string, path: JsonPath): Promise<void> {
      if (inManifest.identity(name)) return;
      await deps.access.require(caller, UAI_ACTIONS.read, armId(sub, rg, UAI_TYPE, name));
      if (!(await existing.identity(name))) throw missing(path, 'identity', name);
    },
  };
}
export type Refs = ReturnType<typeof createRefs>;
