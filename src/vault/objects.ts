import type { AuditLog } from '../audit/log.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import type { ObjectRecord, ObjectStore } from '../storage/vault/object-store.js';
import { DAY_MS, VAULT_LIMITS } from './model.js';
import type { ObjectCallContext, ObjectGuard, ObjectOperation } from './object-guard.js';

export type { Collection, ObjectCallContext } from './object-guard.js';

/**
 * What secrets and keys have in common: both are versioned, soft-deletable
 * objects in a vault, authorized and audited the same way. This module holds
 * that shared part once: the call context and the guard (authorize, read,
 * write) in object-guard.ts; here the paging cursors and the lifecycle of listing, deleting, recovering and
 * purging. What differs (values, key material, crypto, rotation) stays in
 * secrets.ts and the key-*.ts files.
 */

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, absent on the last one. */
  next?: string;
}

const pageSize = (max: number | undefined) =>
  Math.min(Math.max(max ?? VAULT_LIMITS.pageMax, 1), VAULT_LIMITS.pageMax);

/** Paging cursors (`$skiptoken`): `{n}`, the last name of a page (lower-case); `{c, v}`, the last version's created time and id. */
const encodeCursor = (c: unknown) => Buffer.from(JSON.stringify(c)).toString('base64url');
function decodeCursor<T>(token: string | undefined, check: (x: unknown) => x is T): T | undefined {
  if (token === undefined) return undefined;
  try {
    const x: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (check(x)) return x;
  } catch {}
  throw new LatchkeyError('BadParameter', 'The $skiptoken is not valid.');
}
const isNameCursor = (x: unknown): x is { n: string } =>
  typeof x === 'object' &&
  x !== null &&
  typeof (x as { n: unknown }).n === 'string' &&
  (x as { n: string }).n.length <= 127;
const isVersionCursor = (x: unknown): x is { c: number; v: string } =>
  typeof x === 'object' &&
  x !== null &&
  Number.isSafeInteger((x as { c: unknown }).c) &&
  typeof (x as { v: unknown }).v === 'string' &&
  (x as { v: string }).v.length <= 32;

/** What the shared lifecycle needs to know of a kind of object. */
export interface ObjectKind<R extends ObjectRecord> {
  store: ObjectStore<R>;
  /** Validates a name from a URL (the message names the kind). */
  checkName: (raw: string) => string;
  notFound: (name: string, version?: string) => LatchkeyError;
  deletedNotFound: (name: string) => LatchkeyError;
  ops: Record<
    'list' | 'versions' | 'delete' | 'listDeleted' | 'getDeleted' | 'recover' | 'purge',
    ObjectOperation
  >;
  /** Runs in the purge's transaction once the rows are gone (keys drop their parsed keys). */
  onPurged?: (vaultId: string, nameLower: string) => void;
}

/**
 * Listing (objects, versions, deleted objects), soft delete, recover, purge
 * and the scheduled purge, the same for secrets and keys. A deleted object
 * (all its versions) is recoverable until its scheduled purge date.
 */
export function createObjectLifecycle<R extends ObjectRecord>(deps: {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  guard: ObjectGuard;
  kind: ObjectKind<R>;
  /** The canonical URL of a vault by its lower-case name (audit targets of the purge job). */
  baseUrlOf: (vaultNameLower: string) => string;
}) {
  const { db, clock, guard } = deps;
  const { store, checkName, notFound, deletedNotFound, ops } = deps.kind;

  async function pageOf(ctx: ObjectCallContext, deleted: boolean, after: string, size: number) {
    const rows = await store.page(db, ctx.vault.id, deleted, after, size + 1);
    const items = rows.slice(0, size);
    const last = items[items.length - 1];
    return rows.length > size && last
      ? { items, next: encodeCursor({ n: last.name.toLowerCase() }) }
      : { items };
  }

  return {
    async list(ctx: ObjectCallContext, opts: { max?: number; after?: string }): Promise<Page<R>> {
      const after = decodeCursor(opts.after, isNameCursor)?.n ?? '';
      return guard.read(ctx, ops.list, null, () => pageOf(ctx, false, after, pageSize(opts.max)));
    },

    async listVersions(
      ctx: ObjectCallContext,
      rawName: string,
      opts: { max?: number; after?: string; newestFirst?: boolean },
    ): Promise<Page<R>> {
      const name = checkName(rawName);
      const after = decodeCursor(opts.after, isVersionCursor);
      const size = pageSize(opts.max);
      return guard.read(ctx, ops.versions, name, async () => {
        const rows = await store.versions(
          db,
          ctx.vault.id,
          name.toLowerCase(),
          after && { created: after.c, version: after.v },
          size + 1,
          opts.newestFirst === true,
        );
        const items = rows.slice(0, size);
        const last = items[items.length - 1];
        return rows.length > size && last
          ? { items, next: encodeCursor({ c: last.created, v: last.version }) }
          : { items };
      });
    },

    /** Soft delete: the object (all versions) is recoverable until its scheduled purge date. */
    async delete(ctx: ObjectCallContext, rawName: string): Promise<R> {
      const name = checkName(rawName);
      return guard.write(ctx, ops.delete, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const cur = await store.find(tx, ctx.vault.id, nameLower);
        if (!cur || cur.deletedAt !== null) throw notFound(name);
        const now = clock.now();
        const purgeAt = now + ctx.vault.softDeleteRetentionInDays * DAY_MS;
        await store.setDeleted(tx, ctx.vault.id, nameLower, now, purgeAt);
        return { ...cur, deletedAt: now, scheduledPurgeAt: purgeAt };
      });
    },

    async listDeleted(ctx: ObjectCallContext, opts: { max?: number; after?: string }): Promise<Page<R>> {
      const after = decodeCursor(opts.after, isNameCursor)?.n ?? '';
      return guard.read(ctx, ops.listDeleted, null, () => pageOf(ctx, true, after, pageSize(opts.max)));
    },

    async getDeleted(ctx: ObjectCallContext, rawName: string): Promise<R> {
      const name = checkName(rawName);
      return guard.read(ctx, ops.getDeleted, name, async () => {
        const cur = await store.find(db, ctx.vault.id, name.toLowerCase());
        if (!cur || cur.deletedAt === null) throw deletedNotFound(name);
        return cur;
      });
    },

    async recover(ctx: ObjectCallContext, rawName: string): Promise<R> {
      const name = checkName(rawName);
      return guard.write(ctx, ops.recover, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const cur = await store.find(tx, ctx.vault.id, nameLower);
        if (!cur || cur.deletedAt === null) throw deletedNotFound(name);
        await store.setDeleted(tx, ctx.vault.id, nameLower, null, null);
        return { ...cur, deletedAt: null, scheduledPurgeAt: null };
      });
    },

    /** Permanent deletion of a deleted object; refused while the vault has purge protection. */
    async purge(ctx: ObjectCallContext, rawName: string): Promise<void> {
      const name = checkName(rawName);
      await guard.write(ctx, ops.purge, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const cur = await store.find(tx, ctx.vault.id, nameLower);
        if (!cur || cur.deletedAt === null) throw deletedNotFound(name);
        if (ctx.vault.enablePurgeProtection)
          throw new LatchkeyError(
            'Forbidden',
            'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.',
          );
        await store.purge(tx, ctx.vault.id, nameLower);
        deps.kind.onPurged?.(ctx.vault.id, nameLower);
        return { name: cur.name };
      });
    },

    /** Purge job: deleted objects past their scheduled purge date go for good. Returns how many. */
    async purgeDue(now: number, limit = 500): Promise<number> {
      const due = await store.due(db, now, limit);
      for (const d of due) {
        await db.transaction(async (tx) => {
          if (!(await store.stillDue(tx, d.vaultId, d.nameLower, now))) return; // recovered meanwhile
          await store.purge(tx, d.vaultId, d.nameLower);
          deps.kind.onPurged?.(d.vaultId, d.nameLower);
          await deps.audit.append(tx, {
            tenantId: d.tenantId,
            callerKind: 'system',
            operation: ops.purge.op,
            target: `${deps.baseUrlOf(d.vault)}/${guard.collection}/${d.name}`,
            vault: d.vault,
            status: 200,
            details: { scheduled: true },
          });
        });
      }
      return due.length;
    },
  };
}
