import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';
import { type CacheStats, cacheStats } from '../lib/cache-stats.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { newGuid } from '../lib/ids.js';
import type { Scopes } from '../management/scopes.js';
import type { Database, Queryable } from '../storage/port.js';
import { vaultStore as store } from '../storage/vault/vault-store.js';
import { applyPolicyChange, dataAccessChange, normalizePolicies } from './access-policies.js';
import { statusOf, vaultEvent } from './audit.js';
import {
  type AccessPolicy,
  DAY_MS,
  isVaultName,
  type Sku,
  VAULT_LIMITS,
  type Vault,
  vaultArmId,
  vaultFromRecord,
} from './model.js';

/** Control-plane actions (Azure's names), checked at the vault's ARM id. */
export const VAULT_ACTIONS = {
  read: 'Microsoft.KeyVault/vaults/read',
  write: 'Microsoft.KeyVault/vaults/write',
  delete: 'Microsoft.KeyVault/vaults/delete',
  accessPolicies: 'Microsoft.KeyVault/vaults/accessPolicies/write',
  deletedRead: 'Microsoft.KeyVault/locations/deletedVaults/read',
  purge: 'Microsoft.KeyVault/locations/deletedVaults/purge/action',
  /**
   * Also needed to change a vault's permission model or access policies (or to create one
   * with access policies): that decides who reads its data, so it is granting access, as Azure rules.
   */
  grantAccess: 'Microsoft.Authorization/roleAssignments/write',
} as const;

export interface VaultRef {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

/** Properties a PUT or PATCH may set; absent fields keep their value (defaults on create). */
export interface VaultInput {
  location?: string;
  tags?: Record<string, string>;
  tenantId?: string;
  sku?: Sku;
  enableRbacAuthorization?: boolean;
  softDeleteRetentionInDays?: number;
  enablePurgeProtection?: boolean;
  accessPolicies?: AccessPolicy[];
  createMode?: 'default' | 'recover';
  /**
   * `enableRbacAuthorization` of a NEW vault when the input does not set it (default true).
   * ARM passes false for api-versions before 2026-02-01, as Azure does.
   */
  enableRbacAuthorizationDefault?: boolean;
}

const LOCATION_RE = /^[a-zA-Z0-9 -]{1,64}$/;
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
 * soft delete, recover, purge, access policies. Every change is audited in its
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
  // Vault properties decide access (access policies, RBAC mode, deletion): re-read at least once
  // a second on every node, even one that missed the change notification.
  const ttl = Math.min(deps.cacheTtlMs ?? 1_000, 1_000);
  const stats = deps.stats ?? cacheStats();
  const cache = new Map<string, { at: number; vault: Vault | undefined }>();
  bus.subscribe('vault', (nameLower) => cache.delete(nameLower));
  bus.onResync(() => cache.clear());

  const rowByName = async (nameLower: string, q: Queryable = db) => {
    const r = await store.byName(q, nameLower);
    return r && vaultFromRecord(r);
  };
  const scopeOf = async (caller: Caller, ref: VaultRef) => {
    const sub = await scopes.subscription(caller.tenantId, ref.subscriptionId);
    const rg = await scopes.resourceGroup(caller.tenantId, sub.subscriptionId, ref.resourceGroup);
    return { subscriptionId: sub.subscriptionId, resourceGroup: rg.name, location: rg.location };
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
  /** Applies PUT/PATCH properties onto a vault (or the defaults of a new one), enforcing Azure's rules. */
  const applyInput = (v: Vault, input: VaultInput, creating: boolean): Vault => {
    if (input.tenantId !== undefined && input.tenantId.toLowerCase() !== v.tenantId)
      throw new LatchkeyError('BadParameter', "properties.tenantId must be the caller's tenant.");
    if (input.enablePurgeProtection === false && (v.enablePurgeProtection || creating))
      throw new LatchkeyError(
        'BadParameter',
        'The property "enablePurgeProtection" cannot be set to false. Enabling purge protection is irreversible.',
      );
    const days = input.softDeleteRetentionInDays;
    if (days !== undefined) {
      if (
        !Number.isInteger(days) ||
        days < VAULT_LIMITS.retentionMinDays ||
        days > VAULT_LIMITS.retentionMaxDays
      )
        throw new LatchkeyError('BadParameter', 'softDeleteRetentionInDays must be an integer from 7 to 90.');
      if (!creating && days !== v.softDeleteRetentionInDays)
        throw new LatchkeyError(
          'BadParameter',
          'softDeleteRetentionInDays cannot be changed after the vault is created.',
        );
    }
    if (input.location !== undefined && !LOCATION_RE.test(input.location))
      throw new LatchkeyError('BadParameter', 'location must be 1–64 letters, digits, spaces or hyphens.');
    if (
      !creating &&
      input.location !== undefined &&
      input.location.replaceAll(' ', '').toLowerCase() !== v.location
    )
      throw new LatchkeyError('BadParameter', "A vault's location cannot be changed.");
    return {
      ...v,
      location: input.location?.replaceAll(' ', '').toLowerCase() ?? v.location,
      tags: input.tags ?? v.tags,
      sku: input.sku ?? v.sku,
      enableRbacAuthorization: input.enableRbacAuthorization ?? v.enableRbacAuthorization,
      softDeleteRetentionInDays: days ?? v.softDeleteRetentionInDays,
      enablePurgeProtection: input.enablePurgeProtection ?? v.enablePurgeProtection,
      accessPolicies: input.accessPolicies
        ? normalizePolicies(v.tenantId, input.accessPolicies)
        : v.accessPolicies,
      updatedAt: clock.now(),
    };
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
  const purgeNow = async (v: Vault, q: Queryable) => {
    await store.purge(q, v.id);
    await access.deleteAtOrBelow(v.tenantId, v.armId, q);
    bus.publish('vault', v.nameLower);
  };

  return {
    /** Data plane: the vault named by a host (any tenant, deleted included), cached and bus-invalidated. */
    async byName(nameLower: string): Promise<Vault | undefined> {
      const hit = cache.get(nameLower);
      const now = clock.now();
      // Only an active vault is served from memory: "no such vault" is always checked against
      // the database, so a vault just created or recovered on another node is found at once.
      if (hit?.vault && hit.vault.deletedAt === null && now - hit.at < ttl) {
        stats.hits++;
        return hit.vault;
      }
      stats.misses++;
      const vault = isVaultName(nameLower) ? await rowByName(nameLower) : undefined;
      if (cache.size > 10_000) cache.clear();
      cache.set(nameLower, { at: now, vault });
      return vault;
    },

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
      const at = await scopeOf(caller, ref);
      const armId = vaultArmId(at.subscriptionId, at.resourceGroup, ref.name);
      await access.require(caller, VAULT_ACTIONS.write, armId);
      const nameLower = ref.name.toLowerCase();
      return db.transaction(async (tx) => {
        await tx.lock('latchkey:vault-names');
        const row = await rowByName(nameLower, tx);
        const mine = row?.tenantId === caller.tenantId && row.subscriptionId === at.subscriptionId;
        if (input.createMode === 'recover') {
          // Only where it was deleted from: the caller's write permission was checked at this resource group.
          if (
            !row ||
            row.deletedAt === null ||
            !mine ||
            row.resourceGroup.toLowerCase() !== at.resourceGroup.toLowerCase()
          )
            throw new LatchkeyError(
              'ResourceNotFound',
              `No soft-deleted vault named '${ref.name}' in resource group '${at.resourceGroup}'.`,
            );
          const vault: Vault = { ...row, deletedAt: null, scheduledPurgeAt: null, updatedAt: clock.now() };
          await save(vault, tx);
          await audit.append(tx, vaultEvent(caller, meta, 'VaultRecover', vault.armId, nameLower, 200));
          return { vault, created: false };
        }
        if (row && row.deletedAt !== null) {
          if (!mine) throw inUse(ref.name);
          throw new LatchkeyError(
            'Conflict',
            `A vault named '${ref.name}' is soft-deleted in this subscription. Recover it (PUT with properties.createMode 'recover' in its resource group) or purge it first.`,
          );
        }
        if (row) {
          if (!mine || row.resourceGroup.toLowerCase() !== at.resourceGroup.toLowerCase())
            throw inUse(ref.name);
          const vault = applyInput(row, input, false);
          const change = dataAccessChange(row, vault);
          if (change) await requireGrantAccess(caller, armId, change);
          await save(vault, tx);
          await audit.append(tx, vaultEvent(caller, meta, 'VaultUpdate', vault.armId, nameLower, 200));
          return { vault, created: false };
        }
        const now = clock.now();
        const blank = vaultFromRecord({
          id: newGuid(),
          name: ref.name,
          nameLower,
          tenantId: caller.tenantId,
          subscriptionId: at.subscriptionId,
          resourceGroup: at.resourceGroup,
          location: at.location,
          sku: 'standard',
          enableRbacAuthorization: input.enableRbacAuthorizationDefault ?? true,
          softDeleteRetentionInDays: 90,
          enablePurgeProtection: false,
          accessPolicies: [],
          tags: {},
          deletedAt: null,
          scheduledPurgeAt: null,
          createdAt: now,
          updatedAt: now,
        });
        const vault = applyInput(blank, input, true);
        const change = dataAccessChange(undefined, vault);
        if (change) await requireGrantAccess(caller, armId, change);
        await store.insert(tx, vault);
        bus.publish('vault', nameLower);
        await audit.append(tx, vaultEvent(caller, meta, 'VaultCreate', vault.armId, nameLower, 201));
        return { vault, created: true };
      });
    },

    /** PATCH: partial update of an existing vault. */
    async patch(caller: Caller, meta: RequestMeta, ref: VaultRef, input: VaultInput): Promise<Vault> {
      const at = await scopeOf(caller, ref);
      await access.require(
        caller,
        VAULT_ACTIONS.write,
        vaultArmId(at.subscriptionId, at.resourceGroup, ref.name),
      );
      return db.transaction(async (tx) => {
        const row = await findAt(caller, ref, tx);
        if (!row) throw notFound(ref);
        const vault = applyInput(row, input, false);
        const change = dataAccessChange(row, vault);
        if (change) await requireGrantAccess(caller, vault.armId, change);
        await save(vault, tx);
        await audit.append(tx, vaultEvent(caller, meta, 'VaultUpdate', vault.armId, vault.nameLower, 200));
        return vault;
      });
    },

    async get(caller: Caller, ref: VaultRef): Promise<Vault> {
      const at = await scopeOf(caller, ref);
      await access.require(
        caller,
        VAULT_ACTIONS.read,
        vaultArmId(at.subscriptionId, at.resourceGroup, ref.name),
      );
      const v = await findAt(caller, ref);
      if (!v) throw notFound(ref);
      return v;
    },

    /** Active vaults in a subscription (or one of its resource groups) that the caller may read. */
    async list(caller: Caller, subscriptionId: string, resourceGroup?: string): Promise<Vault[]> {
      const sub = await scopes.subscription(caller.tenantId, subscriptionId);
      if (resourceGroup !== undefined)
        await scopes.resourceGroup(caller.tenantId, sub.subscriptionId, resourceGroup);
      const rows = await store.inSubscription(db, caller.tenantId, sub.subscriptionId, false);
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
      const at = await scopeOf(caller, ref);
      await access.require(
        caller,
        VAULT_ACTIONS.delete,
        vaultArmId(at.subscriptionId, at.resourceGroup, ref.name),
      );
      return db.transaction(async (tx) => {
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

    async listDeleted(caller: Caller, subscriptionId: string): Promise<Vault[]> {
      const sub = await scopes.subscription(caller.tenantId, subscriptionId);
      const rows = await store.inSubscription(db, caller.tenantId, sub.subscriptionId, true);
      const out: Vault[] = [];
      for (const v of rows.map(vaultFromRecord))
        if (await access.allows(caller, VAULT_ACTIONS.deletedRead, v.armId)) out.push(v);
      return out;
    },

    async getDeleted(caller: Caller, subscriptionId: string, location: string, name: string): Promise<Vault> {
      const sub = await scopes.subscription(caller.tenantId, subscriptionId);
      const v = await rowByName(name.toLowerCase());
      const missing = () =>
        new LatchkeyError(
          'ResourceNotFound',
          `No soft-deleted vault named '${name.slice(0, 64)}' in that location.`,
        );
      if (
        !v ||
        v.deletedAt === null ||
        v.tenantId !== caller.tenantId ||
        v.subscriptionId !== sub.subscriptionId
      )
        throw missing();
      if (v.location !== location.replaceAll(' ', '').toLowerCase()) throw missing();
      await access.require(caller, VAULT_ACTIONS.deletedRead, v.armId);
      return v;
    },

    /** Purges a soft-deleted vault now: its objects and the role assignments at or below it go too. */
    async purgeDeleted(
      caller: Caller,
      meta: RequestMeta,
      subscriptionId: string,
      location: string,
      name: string,
    ): Promise<void> {
      const v = await this.getDeleted(caller, subscriptionId, location, name);
      try {
        await access.require(caller, VAULT_ACTIONS.purge, v.armId);
        if (v.enablePurgeProtection && v.scheduledPurgeAt !== null && clock.now() < v.scheduledPurgeAt)
          throw new LatchkeyError(
            'Conflict',
            `Vault '${v.name}' has purge protection enabled: it cannot be purged before its scheduled purge date (${new Date(v.scheduledPurgeAt).toISOString()}).`,
          );
        await db.transaction(async (tx) => {
          await purgeNow(v, tx);
          await audit.append(tx, vaultEvent(caller, meta, 'VaultPurge', v.armId, v.nameLower, 200));
        });
      } catch (e) {
        await audit.record(vaultEvent(caller, meta, 'VaultPurge', v.armId, v.nameLower, statusOf(e)));
        throw e;
      }
    },

    /** `accessPolicies/{add|replace|remove}`; returns the vault's resulting policies. */
    async updateAccessPolicies(
      caller: Caller,
      meta: RequestMeta,
      ref: VaultRef,
      kind: 'add' | 'replace' | 'remove',
      policies: AccessPolicy[],
    ): Promise<Vault> {
      const at = await scopeOf(caller, ref);
      const armId = vaultArmId(at.subscriptionId, at.resourceGroup, ref.name);
      await access.require(caller, VAULT_ACTIONS.accessPolicies, armId);
      await requireGrantAccess(caller, armId, 'access policies');
      return db.transaction(async (tx) => {
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

    /** Purge job: soft-deleted vaults past their retention are purged for good. Returns how many. */
    async purgeDue(now: number, limit = 100): Promise<number> {
      const due = await store.due(db, now, limit);
      for (const r of due) {
        await db.transaction(async (tx) => {
          // Re-read inside the transaction: a vault recovered meanwhile is left alone.
          const current = await store.stillDue(tx, r.id, now);
          if (!current) return;
          const v = vaultFromRecord(current);
          await purgeNow(v, tx);
          await audit.append(tx, {
            tenantId: v.tenantId,
            callerKind: 'system',
            operation: 'VaultPurge',
            target: v.armId,
            vault: v.nameLower,
            status: 200,
            details: { scheduled: true },
          });
        });
      }
      return due.length;
    },
  };
}
export type Vaults = ReturnType<typeof createVaults>;
