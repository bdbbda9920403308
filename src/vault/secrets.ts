import type { Caller } from '../access/caller.js';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';
import type { CacheStats } from '../lib/cache-stats.js';
import type { ChangeBus } from '../lib/events.js';
import { type SealedSecret, type SecretRecord, secretStore as store } from '../storage/vault/secret-store.js';
import { openBackup, type SecretBackup, sealBackup } from './backup.js';
import { certificateOwns, refuseManaged, refuseNonExportable } from './certificate-managed.js';
import type { Vault } from './model.js';
import { createObjectGuard, type ObjectCallContext, type ObjectOperation } from './object-guard.js';
import { actionOperation, lifecycleOperations } from './object-kind.js';
import {
  createObjectLifecycle,
  createObjectVersions,
  newAttributes,
  type ObjectServiceDeps,
} from './objects.js';
import { createSecretCache } from './secret-cache.js';
import {
  checkContentType,
  checkSecretName,
  checkTags,
  checkValue,
  checkVersion,
  checkWindow,
  SECRET_RULES,
} from './secret-rules.js';

export type { SecretRecord } from '../storage/vault/secret-store.js';
export type { Page } from './objects.js';

/** Who calls, on which vault; `baseUrl` is the vault's canonical URL (audit targets). */
export type SecretCallContext = ObjectCallContext;

export interface SecretAttributesInput {
  enabled?: boolean;
  /** Epoch ms; null clears (update). */
  nbf?: number | null;
  exp?: number | null;
}
export interface SetSecretInput extends SecretAttributesInput {
  value: string;
  contentType?: string | null;
  tags?: Record<string, string> | null;
}
export interface UpdateSecretInput extends SecretAttributesInput {
  contentType?: string | null;
  tags?: Record<string, string> | null;
}

const S = 'Microsoft.KeyVault/vaults/secrets';
/** Each operation: audit name, RBAC data action, access-policy permission. */
const OPS = {
  set: { op: 'SecretSet', action: `${S}/setSecret/action`, perm: 'set' },
  get: { op: 'SecretGet', action: `${S}/getSecret/action`, perm: 'get' },
  properties: { op: 'SecretGetProperties', action: `${S}/readMetadata/action`, perm: 'list' },
  update: { op: 'SecretUpdate', action: `${S}/update/action`, perm: 'set' },
  ...lifecycleOperations('Secret', S, `${S}/readMetadata/action`),
  backup: actionOperation('Secret', S, 'backup'),
  restore: actionOperation('Secret', S, 'restore'),
} satisfies Record<string, ObjectOperation>;
const { notFound } = SECRET_RULES;

/**
 * The Key Vault secrets data plane: versions, soft delete, recover, purge,
 * backup and restore. Values are sealed with AES-256-GCM, bound by AAD to
 * tenant, vault, name and version. Every operation is authorized by the one
 * decision point first (so a refused caller learns nothing about existence)
 * and audited: mutations in their transaction, reads and refusals batched.
 */
export function createSecrets(
  deps: ObjectServiceDeps & {
    /** Invalidates the latest-version cache on other nodes (and hears theirs). */
    bus?: ChangeBus;
    /** Entries of the latest-version cache (default 10 000). */
    cacheSize?: number;
    cacheStats?: CacheStats;
  },
) {
  const { db, clock, sealer } = deps;
  const cache = createSecretCache({
    clock,
    inTransaction: () => db.current() !== undefined,
    ...(deps.bus ? { bus: deps.bus } : {}),
    ...(deps.cacheSize !== undefined ? { max: deps.cacheSize } : {}),
    ...(deps.cacheStats ? { stats: deps.cacheStats } : {}),
  });
  /** The latest version with its sealed value: from the cache, else SQL (then cached). */
  const latest = async (vaultId: string, nameLower: string): Promise<SealedSecret | undefined> => {
    const hit = cache.get(vaultId, nameLower);
    if (hit) return hit;
    const mark = cache.mark();
    const found = await store.findSealed(db, vaultId, nameLower);
    if (found) cache.put(vaultId, nameLower, found, mark);
    return found;
  };
  /**
   * Runs a change to a secret, then drops its cached latest version here and on every node.
   * After a refusal or a validation error nothing changed (and the caller may be anyone), so
   * nothing is dropped; after any other failure the commit may have landed, so it is.
   */
  const changing = async <T>(vaultId: string, nameLower: string | null, op: () => Promise<T>): Promise<T> => {
    let r: T;
    try {
      r = await op();
    } catch (e) {
      if (nameLower !== null && !(isLatchkeyError(e) && e.status < 500)) cache.changed(vaultId, nameLower);
      throw e;
    }
    if (nameLower !== null) cache.changed(vaultId, nameLower);
    return r;
  };
  /** The name a change is about, if it is a valid one (an invalid name changes nothing). */
  const nameOf = (rawName: string): string | null => {
    try {
      return checkSecretName(rawName).toLowerCase();
    } catch {
      return null;
    }
  };
  const aad = (v: Vault, nameLower: string, version: string) =>
    `secret|${v.tenantId}|${v.id}|${nameLower}|${version}`;
  const guard = createObjectGuard({
    db,
    access: deps.access,
    audit: deps.audit,
    collection: 'secrets',
    ...(deps.onAuditError ? { onAuditError: deps.onAuditError } : {}),
  });
  const { read, write } = guard;
  const kind = {
    store,
    ...SECRET_RULES,
    ops: OPS,
    // Also the purge job's, which runs on one node: the others hear it on the bus.
    onPurged: (vaultId: string, nameLower: string) => cache.changed(vaultId, nameLower),
    purgedWithOwner: certificateOwns,
  };
  /** list, listVersions, delete, listDeleted, getDeleted, recover, purge, purgeDue: shared with keys and certificates. */
  const lifecycle = createObjectLifecycle({ ...deps, guard, kind });
  const versions = createObjectVersions({ clock, guard, kind });
  /** The record with its value opened (one copy of the row: the rest of it, then `value`). */
  const withValue = (v: Vault, nameLower: string, { sealed, ...rec }: SealedSecret): SecretRecord => {
    const r = rec as SecretRecord;
    r.value = sealer.open(sealed, aad(v, nameLower, rec.version)).toString('utf8');
    return r;
  };

  const set = async (
    ctx: SecretCallContext,
    rawName: string,
    input: SetSecretInput,
  ): Promise<SecretRecord> => {
    const name = checkSecretName(rawName);
    checkValue(input.value);
    checkContentType(input.contentType);
    checkTags(input.tags);
    checkWindow(input.nbf ?? null, input.exp ?? null);
    return write(ctx, OPS.set, name, (tx) =>
      versions.add(
        tx,
        ctx.vault.id,
        name,
        { value: input.value, contentType: input.contentType ?? null, ...newAttributes(input) },
        (nameLower, version) => sealer.seal(input.value, aad(ctx.vault, nameLower, version)),
      ),
    );
  };

  /** Changes attributes, tags or content type of the latest (or a given) version; never the value. */
  const update = async (
    ctx: SecretCallContext,
    rawName: string,
    rawVersion: string | undefined,
    patch: UpdateSecretInput,
  ): Promise<SecretRecord> => {
    const name = checkSecretName(rawName);
    const version = rawVersion === undefined ? undefined : checkVersion(rawVersion);
    checkContentType(patch.contentType);
    checkTags(patch.tags);
    return versions.update(ctx, name, version, patch, (cur) => ({
      contentType: patch.contentType === undefined ? cur.contentType : patch.contentType,
    }));
  };

  return {
    ...lifecycle,
    /** Another service changed this secret's rows (a certificate's secret): drop its cached latest version everywhere. */
    changed: (vaultId: string, nameLower: string): void => cache.changed(vaultId, nameLower),

    delete: (ctx: SecretCallContext, rawName: string) =>
      changing(ctx.vault.id, nameOf(rawName), () => lifecycle.delete(ctx, rawName)),
    recover: (ctx: SecretCallContext, rawName: string) =>
      changing(ctx.vault.id, nameOf(rawName), () => lifecycle.recover(ctx, rawName)),
    purge: (ctx: SecretCallContext, rawName: string) =>
      changing(ctx.vault.id, nameOf(rawName), () => lifecycle.purge(ctx, rawName)),

    set: (ctx: SecretCallContext, rawName: string, input: SetSecretInput): Promise<SecretRecord> =>
      changing(ctx.vault.id, nameOf(rawName), () => set(ctx, rawName, input)),

    /** The value of the latest (or a given) version. A disabled version is refused (403), as Azure does. */
    async get(ctx: SecretCallContext, rawName: string, rawVersion?: string): Promise<SecretRecord> {
      const name = checkSecretName(rawName);
      const version = rawVersion === undefined ? undefined : checkVersion(rawVersion);
      // Authorized first (inside `read`); only then is the cache consulted.
      return read(ctx, OPS.get, name, async () => {
        const nameLower = name.toLowerCase();
        const found =
          version === undefined
            ? await latest(ctx.vault.id, nameLower)
            : await store.findSealed(db, ctx.vault.id, nameLower, version);
        if (!found) await refuseNonExportable(db, ctx.vault.id, name);
        if (!found || found.deletedAt !== null) throw notFound(name, version);
        if (!found.enabled)
          throw new LatchkeyError('Forbidden', 'Operation get is not allowed on a disabled secret.', {
            inner: 'SecretDisabled',
          });
        return withValue(ctx.vault, nameLower, found);
      });
    },

    /**
     * Whether `caller` (an app's Key Vault reference identity) could resolve a reference to this
     * secret, for the console's status badges: the same access decision as `get`, then a metadata
     * read (never the value). Not audited as a read: nothing is disclosed to the identity.
     */
    async referenceStatus(
      caller: Caller,
      vault: Vault,
      rawName: string,
      rawVersion: string | null,
    ): Promise<'resolved' | 'denied' | 'notFound' | 'disabled'> {
      const name = checkSecretName(rawName);
      const version = rawVersion === null ? undefined : checkVersion(rawVersion);
      try {
        await deps.access.requireVaultData(caller, vault.access, {
          dataAction: OPS.get.action,
          objectScope: `${vault.armId}/secrets/${name}`,
          policy: { kind: 'secrets', permission: OPS.get.perm },
        });
      } catch (e) {
        if (e instanceof LatchkeyError && e.status === 403) return 'denied';
        throw e;
      }
      const cur = await store.find(db, vault.id, name.toLowerCase(), version);
      if (!cur || cur.deletedAt !== null) return 'notFound';
      return cur.enabled ? 'resolved' : 'disabled';
    },

    /** The latest version's attributes, without its value: what `readMetadata` (policy: `list`) may see. */
    async properties(ctx: SecretCallContext, rawName: string): Promise<SecretRecord> {
      const name = checkSecretName(rawName);
      return read(ctx, OPS.properties, name, async () => {
        const cur = await store.find(db, ctx.vault.id, name.toLowerCase());
        if (!cur || cur.deletedAt !== null) throw notFound(name);
        return cur;
      });
    },

    /** Changes attributes, tags or content type of the latest (or a given) version; never the value. */
    update: (
      ctx: SecretCallContext,
      rawName: string,
      rawVersion: string | undefined,
      patch: UpdateSecretInput,
    ): Promise<SecretRecord> =>
      changing(ctx.vault.id, nameOf(rawName), () => update(ctx, rawName, rawVersion, patch)),

    /** A sealed blob with every version, restorable only into this installation and tenant. */
    async backup(ctx: SecretCallContext, rawName: string): Promise<Buffer> {
      const name = checkSecretName(rawName);
      return read(ctx, OPS.backup, name, async () => {
        const nameLower = name.toLowerCase();
        const rows = await store.allVersions(db, ctx.vault.id, nameLower);
        const first = rows[0];
        if (!first || first.deletedAt !== null) throw notFound(name);
        const backup: SecretBackup = {
          v: 1,
          tenantId: ctx.vault.tenantId,
          name: first.name,
          current: first.currentVersion,
          versions: rows.map((r) => {
            const { value, ...rest } = withValue(ctx.vault, nameLower, r);
            return {
              version: rest.version,
              value: value ?? '',
              contentType: rest.contentType,
              tags: rest.tags,
              enabled: rest.enabled,
              nbf: rest.nbf,
              exp: rest.exp,
              created: rest.created,
              updated: rest.updated,
            };
          }),
        };
        return sealBackup(sealer, backup);
      });
    },

    /** Restores a backup (all versions, same version ids); the name must be free in this vault. */
    async restore(ctx: SecretCallContext, blob: Buffer): Promise<SecretRecord> {
      // Only into a free name (nothing of it is cached); dropped anyway, for other nodes too.
      const restored = await write(ctx, OPS.restore, null, async (tx) => {
        const b = openBackup(sealer, ctx.vault.tenantId, blob);
        const nameLower = b.name.toLowerCase();
        if (await store.exists(tx, ctx.vault.id, nameLower)) throw SECRET_RULES.restoreConflict(b.name);
        // A certificate's secret is written only with it (a non-exportable one has none).
        await refuseManaged(tx, 'secrets', ctx.vault.id, b.name, 'restore');
        const now = clock.now();
        if (!(await store.insertNew(tx, ctx.vault.id, b.name, b.current, now)))
          throw SECRET_RULES.restoreConflict(b.name); // created meanwhile
        for (const v of b.versions) {
          checkValue(v.value);
          await store.insertVersion(tx, ctx.vault.id, nameLower, {
            ...v,
            sealed: sealer.seal(v.value, aad(ctx.vault, nameLower, v.version)),
          });
        }
        const { value: _value, ...cur } = b.versions.find((v) => v.version === b.current)!;
        return { ...cur, name: b.name, deletedAt: null, scheduledPurgeAt: null };
      });
      cache.changed(ctx.vault.id, restored.name.toLowerCase());
      return restored;
    },
  };
}
export type Secrets = ReturnType<typeof createSecrets>;
