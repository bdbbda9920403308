import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';
import type { CacheStats } from '../lib/cache-stats.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { scopeReadable } from '../management/readable-scopes.js';
import type { Scopes } from '../management/scopes.js';
import type { Database, Queryable, Transaction } from '../storage/port.js';
import { vaultStore as store } from '../storage/vault/vault-store.js';
import { applyPolicyChange, dataAccessChange, normalizePolicies } from './access-policies.js';
import { vaultEvent } from './audit.js';
import { createDeletedVaults } from './deleted-vaults.js';
import {
  type AccessPolicy,
  DAY_MS,
  isVaultName,
  VAULT_ACTIONS,
  VAULT_ROW_LOCK,
  type Vault,
  vaultArmId,
  vaultFromRecord,
} from './model.js';
import { applyVaultInput, blankVault, type VaultInput, type VaultRef } from './vault-input.js';
import { createVaultLookup } from './vault-lookup.js';

export { VAULT_ACTIONS } from './model.js';
export type { VaultInput, VaultRef } from './vault-input.js';

const notFound = (ref: VaultRef) =>
  new LatchkeyError(
    'ResourceNotFound',
    `The Resource 'Microsoft.KeyVault/vaults/${ref.name.slice(0, 64)}' under resource group '${ref.resourceGroup.slice(0, 90)}' was not found.`,
  );
const inUse = (name: string) =>
  new LatchkeyError(
    'Conflict',
    `The vault name '${name}' is already in use. Vault names are unique per installation.`,
  );

/**
 * Key vaults (the Microsoft.KeyVault/vaults control plane): create, update,
 * soft delete, recover, access policies; deleted vaults and purge are in
 * deleted-vaults.ts. Every change is audited in its
 * transaction and published on the bus (`vault`, name) so caches drop it.
 */
export function createVaults(deps: {
  db: Database;
  clock: Clock;
  bus: ChangeBus;
  access: Access;
  audit: AuditLog;
  scopes: Pick<Scopes, 'subscription' | 'resourceGroup'>;
  cacheTtlMs?: number;
  stats?: CacheStats;
}) {
  const { db, clock, bus, access, audit, scopes } = deps;
  const byName = createVaultLookup(db, clock, bus, deps);
  const deleted = createDeletedVaults({ db, clock, bus, access, audit, scopes });

  const rowByName = async (nameLower: string, q: Queryable = db) => {
    const r = await store.byName(q, nameLower);
    return r && vaultFromRecord(r);
  };
  const scopeOf = async (caller: Caller, ref: VaultRef) => {
    const sub = await scopes.subscription(caller.tenantId, ref.subscriptionId);
    const rg = await scopes.resourceGroup(caller.tenantId, sub.subscriptionId, ref.resourceGroup);
    return { subscriptionId: sub.subscriptionId, resourceGroup: rg.name, location: rg.location };
  };
  /** Resolves the vault's place in the caller's tenant and requires `action` at its ARM id. */
  const authorize = async (caller: Caller, ref: VaultRef, action: string) => {
    // At the id as named first: a caller who may not act there hears 403 whether or not its group exists.
    await access.require(caller, action, vaultArmId(ref.subscriptionId, ref.resourceGroup, ref.name));
    const at = await scopeOf(caller, ref);
    const armId = vaultArmId(at.subscriptionId, at.resourceGroup, ref.name);
    await access.require(caller, action, armId);
    return { at, armId };
  };
  /** The active vault at exactly this ARM location in the caller's tenant. */
  const findAt = async (caller: Caller, ref: VaultRef, q: Queryable = db): Promise<Vault | undefined> => {
    const v = await rowByName(ref.name.toLowerCase(), q);
    if (!v || v.deletedAt !== null || v.tenantId !== caller.tenantId) return undefined;
    if (v.subscriptionId !== ref.subscriptionId.toLowerCase()) return undefined;
    if (v.resourceGroup.toLowerCase() !== ref.resourceGroup.toLowerCase()) return undefined;
    return v;
  };
  const save = async (v: Vault, q: Queryable) => {
    await store.update(q, v);
    bus.publish('vault', v.nameLower);
  };
  /** Changing who reads a vault's data needs `grantAccess` at the vault; the refusal says why. */
  const requireGrantAccess = async (caller: Caller, armId: string, what: string) => {
    try {
      await access.require(caller, VAULT_ACTIONS.grantAccess, armId);
    } catch (e) {
      if (!isLatchkeyError(e) || e.code !== 'Forbidden') throw e; // a provisioning key's refusal names its scope
      throw new LatchkeyError(
        'Forbidden',
        `The caller (object id ${caller.oid}) is not authorized to perform '${VAULT_ACTIONS.grantAccess}' over scope '${armId}': setting a vault's ${what} decides who may read its data, so it needs the right to assign roles at the vault (Owner), not only '${VAULT_ACTIONS.write}'.`,
        { cause: e },
      );
    }
  };
  /** The scope of a PUT, resolved and authorized, in its transaction (which holds VAULT_ROW_LOCK). */
  interface PutContext {
    tx: Transaction;
    caller: Caller;
    meta: RequestMeta;
    ref: VaultRef;
    at: { subscriptionId: string; resourceGroup: string; location: string };
    armId: string;
    input: VaultInput;
  }
  const mine = (w: PutContext, row: Vault) =>
    row.tenantId === w.caller.tenantId && row.subscriptionId === w.at.subscriptionId;
  /** PUT with `createMode: 'recover'`: only where it was deleted from (write was checked at this resource group). */
  const recover = async (w: PutContext, row: Vault | undefined) => {
    if (
      !row ||
      row.deletedAt === null ||
      !mine(w, row) ||
      row.resourceGroup.toLowerCase() !== w.at.resourceGroup.toLowerCase()
    )
      throw new LatchkeyError(
        'ResourceNotFound',
        `No soft-deleted vault named '${w.ref.name}' in resource group '${w.at.resourceGroup}'.`,
      );
    const vault: Vault = { ...row, deletedAt: null, scheduledPurgeAt: null, updatedAt: clock.now() };
    await save(vault, w.tx);
    await audit.append(w.tx, vaultEvent(w.caller, w.meta, 'VaultRecover', vault.armId, vault.nameLower, 200));
    return { vault, created: false };
  };
  /** PUT over a vault of that name: its own (updated), or a name held elsewhere or by a deleted vault. */
  const update = async (w: PutContext, row: Vault) => {
    if (row.deletedAt !== null) {
      if (!mine(w, row)) throw inUse(w.ref.name);
      throw new LatchkeyError(
        'Conflict',
        `A vault named '${w.ref.name}' is soft-deleted in this subscription. Recover it (PUT with properties.createMode 'recover' in its resource group) or purge it first.`,
      );
    }
    if (!mine(w, row) || row.resourceGroup.toLowerCase() !== w.at.resourceGroup.toLowerCase())
      throw inUse(w.ref.name);
    const vault = applyVaultInput(row, w.input, false, clock.now());
    const change = dataAccessChange(row, vault);
    if (change) await requireGrantAccess(w.caller, w.armId, change);
    await save(vault, w.tx);
    await audit.append(w.tx, vaultEvent(w.caller, w.meta, 'VaultUpdate', vault.armId, vault.nameLower, 200));
    return { vault, created: false };
  };
  /** PUT of a new name: the defaults, the input on top, in the caller's tenant at the resource group's location. */
  const create = async (w: PutContext) => {
    const blank = blankVault({
      name: w.ref.name,
      tenantId: w.caller.tenantId,
      ...w.at,
      input: w.input,
      now: clock.now(),
    });
    const vault = applyVaultInput(blank, w.input, true, clock.now());
    const change = dataAccessChange(undefined, vault);
    if (change) await requireGrantAccess(w.caller, w.armId, change);
    await store.insert(w.tx, vault);
    bus.publish('vault', vault.nameLower);
    await audit.append(w.tx, vaultEvent(w.caller, w.meta, 'VaultCreate', vault.armId, vault.nameLower, 201));
    return { vault, created: true };
  };

  return {
    /** Data plane: the vault named by a host (any tenant, deleted included), cached and bus-invalidated. */
    byName,

    /** Every active vault's name (all tenants), for `latchkey up --hosts-file`. */
    async activeNames(): Promise<string[]> {
      return store.activeNames(db);
    },

    /** For scope resolution: the active vault's ARM id at this location in the tenant. */
    async findActive(ref: VaultRef & { tenantId: string }): Promise<{ id: string } | undefined> {
      const v = await findAt({ tenantId: ref.tenantId } as Caller, ref);
      return v && { id: v.armId };
    },

    /** PUT: create (201), update (200) or, with `createMode: 'recover'`, recover a soft-deleted vault. */
    async createOrUpdate(
      caller: Caller,
      meta: RequestMeta,
      ref: VaultRef,
      input: VaultInput,
    ): Promise<{ vault: Vault; created: boolean }> {
      if (!isVaultName(ref.name))
        throw new LatchkeyError(
          'BadParameter',
          'A vault name is 3–24 letters, digits and hyphens, starts with a letter, ends with a letter or digit, and has no consecutive hyphens.',
        );
      const { at, armId } = await authorize(caller, ref, VAULT_ACTIONS.write);
      return db.transaction(async (tx) => {
        await audit.hold(tx); // the audit lock first, as every writer (AuditLog.hold)
        await tx.lock(VAULT_ROW_LOCK);
        const row = await rowByName(ref.name.toLowerCase(), tx);
        const w: PutContext = { tx, caller, meta, ref, at, armId, input };
        if (input.createMode === 'recover') return recover(w, row);
        if (row) return update(w, row);
        return create(w);
      });
    },

    /** PATCH: partial update of an existing vault. */
    async patch(caller: Caller, meta: RequestMeta, ref: VaultRef, input: VaultInput): Promise<Vault> {
      await authorize(caller, ref, VAULT_ACTIONS.write);
      return db.transaction(async (tx) => {
        await audit.hold(tx);
        await tx.lock(VAULT_ROW_LOCK);
        const row = await findAt(caller, ref, tx);
        if (!row) throw notFound(ref);
        const vault = applyVaultInput(row, input, false, clock.now());
        const change = dataAccessChange(row, vault);
        if (change) await requireGrantAccess(caller, vault.armId, change);
        await save(vault, tx);
        await audit.append(tx, vaultEvent(caller, meta, 'VaultUpdate', vault.armId, vault.nameLower, 200));
        return vault;
      });
    },

    async get(caller: Caller, ref: VaultRef): Promise<Vault> {
      await authorize(caller, ref, VAULT_ACTIONS.read);
      const v = await findAt(caller, ref);
      if (!v) throw notFound(ref);
      return v;
    },

    /** Active vaults in a subscription (or one of its resource groups) that the caller may read. */
    async list(caller: Caller, subscriptionId: string, resourceGroup?: string): Promise<Vault[]> {
      // A missing subscription or group is a 404 only for a caller who may read it; any other
      // caller gets what it may read there, none for a scope that does not exist (no oracle).
      let subId = subscriptionId.toLowerCase();
      if (await scopeReadable(access, caller, subscriptionId, resourceGroup)) {
        subId = (await scopes.subscription(caller.tenantId, subscriptionId)).subscriptionId;
        if (resourceGroup !== undefined) await scopes.resourceGroup(caller.tenantId, subId, resourceGroup);
      }
      const rows = await store.inSubscription(db, caller.tenantId, subId, false);
      const out: Vault[] = [];
      for (const v of rows.map(vaultFromRecord)) {
        if (resourceGroup !== undefined && v.resourceGroup.toLowerCase() !== resourceGroup.toLowerCase())
          continue;
        if (await access.allows(caller, VAULT_ACTIONS.read, v.armId)) out.push(v);
      }
      return out;
    },

    /** Soft delete: the vault and its objects stay recoverable for the retention period. False if absent. */
    async delete(caller: Caller, meta: RequestMeta, ref: VaultRef): Promise<boolean> {
      await authorize(caller, ref, VAULT_ACTIONS.delete);
      return db.transaction(async (tx) => {
        await audit.hold(tx);
        await tx.lock(VAULT_ROW_LOCK);
        const row = await findAt(caller, ref, tx);
        if (!row) return false;
        const now = clock.now();
        const vault = {
          ...row,
          deletedAt: now,
          scheduledPurgeAt: now + row.softDeleteRetentionInDays * DAY_MS,
        };
        await save(vault, tx);
        await audit.append(tx, vaultEvent(caller, meta, 'VaultDelete', vault.armId, vault.nameLower, 200));
        return true;
      });
    },

    /** `accessPolicies/{add|replace|remove}`; returns the vault's resulting policies. */
    async updateAccessPolicies(
      caller: Caller,
      meta: RequestMeta,
      ref: VaultRef,
      kind: 'add' | 'replace' | 'remove',
      policies: AccessPolicy[],
    ): Promise<Vault> {
      const { armId } = await authorize(caller, ref, VAULT_ACTIONS.accessPolicies);
      await requireGrantAccess(caller, armId, 'access policies');
      return db.transaction(async (tx) => {
        await audit.hold(tx);
        await tx.lock(VAULT_ROW_LOCK);
        const row = await findAt(caller, ref, tx);
        if (!row) throw notFound(ref);
        const changes = normalizePolicies(row.tenantId, policies);
        const vault = {
          ...row,
          accessPolicies: applyPolicyChange(row.accessPolicies, kind, changes),
          updatedAt: clock.now(),
        };
        await save(vault, tx);
        await audit.append(
          tx,
          vaultEvent(caller, meta, 'VaultAccessPolicyUpdate', armId, vault.nameLower, 200, {
            kind,
            entries: changes.length,
          }),
        );
        return vault;
      });
    },

    ...deleted,
  };
}
export type Vaults = ReturnType<typeof createVaults>;
