import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { groupCommitFor } from '../storage/group-commit.js';
import type { Database, Transaction } from '../storage/port.js';
import { statusOf, vaultEvent } from './audit.js';
import { DAY_MS, VAULT_LIMITS, type Vault } from './model.js';
import type { ObjectRecord, ObjectRow, ObjectStore } from './object-store.js';

/**
 * What secrets and keys have in common: both are versioned, soft-deletable
 * objects in a vault, authorized and audited the same way. This module holds
 * that shared part once: the call context, the guard (authorize, read, write),
 * paging cursors, and the lifecycle of listing, deleting, recovering and
 * purging. What differs (values, key material, crypto, rotation) stays in
 * secrets.ts and the key-*.ts files.
 */

/** Who calls, on which vault; `baseUrl` is the vault's canonical URL (audit targets). */
export interface ObjectCallContext {
  caller: Caller;
  meta: RequestMeta;
  vault: Vault;
  baseUrl: string;
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, absent on the last one. */
  next?: string;
}

/** The URL and RBAC scope segment of a kind of object, and its access-policy kind. */
export type Collection = 'secrets' | 'keys';

/** An operation: audit name, RBAC data action, access-policy permission. */
export interface ObjectOperation {
  op: string;
  action: string;
  perm: string;
  /** RBAC vaults: also allowed to whoever may do the guard's `orRead` operation. */
  orRead?: boolean;
  /** The audit target's path under the vault when no object is named (default: the collection). */
  targetPath?: string;
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

/**
 * Authorization and audit for one collection, through the one decision point:
 * a refused caller learns nothing about existence; reads are recorded in
 * batches (not awaited: group commit), changes audited in their transaction.
 */
export function createObjectGuard(deps: {
  db: Database;
  access: Access;
  audit: AuditLog;
  collection: Collection;
  /** The operation whose grant also allows the operations marked `orRead`. */
  orRead?: ObjectOperation;
  onAuditError?: (e: unknown) => void;
}) {
  const { db, access, audit, collection, orRead } = deps;
  const target = (ctx: ObjectCallContext, name: string | null, version?: string, op?: ObjectOperation) =>
    name === null
      ? `${ctx.baseUrl}/${op?.targetPath ?? collection}`
      : `${ctx.baseUrl}/${collection}/${name}${version ? `/${version}` : ''}`;
  const record = (ctx: ObjectCallContext, op: ObjectOperation, tgt: string, status: number) => {
    audit
      .record(vaultEvent(ctx.caller, ctx.meta, op.op, tgt, ctx.vault.nameLower, status))
      .catch((e) => deps.onAuditError?.(e));
  };
  const require = (ctx: ObjectCallContext, op: ObjectOperation, name: string | null) =>
    access.requireVaultData(ctx.caller, ctx.vault.access, {
      dataAction: op.action,
      objectScope: name === null ? ctx.vault.armId : `${ctx.vault.armId}/${collection}/${name}`,
      policy: { kind: collection, permission: op.perm },
    });
  /** An `orRead` operation refused (403) on an RBAC vault is allowed if `fallback` is; else its own refusal stands. */
  const requireOrRead = async (
    ctx: ObjectCallContext,
    op: ObjectOperation,
    name: string | null,
    fallback: ObjectOperation,
  ) => {
    try {
      await require(ctx, op, name);
    } catch (e) {
      if (!ctx.vault.enableRbacAuthorization || !isLatchkeyError(e) || e.status !== 403) throw e;
      try {
        await require(ctx, fallback, name);
      } catch {
        throw e;
      }
    }
  };
  const authorize = (ctx: ObjectCallContext, op: ObjectOperation, name: string | null): Promise<void> =>
    op.orRead && orRead ? requireOrRead(ctx, op, name, orRead) : require(ctx, op, name);

  return {
    collection,
    /** Authorizes before costly work done outside `write` (key generation); a refusal is recorded. */
    async precheck(ctx: ObjectCallContext, op: ObjectOperation, name: string | null): Promise<void> {
      try {
        await authorize(ctx, op, name);
      } catch (e) {
        record(ctx, op, target(ctx, name), statusOf(e));
        throw e;
      }
    },
    /** A read: authorize, run, record the outcome; `version` goes into the audit target. */
    async read<T>(
      ctx: ObjectCallContext,
      op: ObjectOperation,
      name: string | null,
      fn: () => Promise<T>,
      version?: string,
    ): Promise<T> {
      try {
        await authorize(ctx, op, name);
        const r = await fn();
        record(ctx, op, target(ctx, name, version, op), 200);
        return r;
      } catch (e) {
        record(ctx, op, target(ctx, name, version, op), statusOf(e));
        throw e;
      }
    },
    /** A change: authorize, then change and audit in one transaction; refusals and failures are recorded. */
    async write<T extends { version?: string; name?: string }>(
      ctx: ObjectCallContext,
      op: ObjectOperation,
      name: string | null,
      fn: (tx: Transaction) => Promise<T>,
    ): Promise<T> {
      try {
        await authorize(ctx, op, name);
        // Group commit: one transaction (one fsync) for the writes of an event-loop turn; each
        // caller is answered after the commit that holds its change (src/storage/group-commit.ts).
        return await groupCommitFor(db).run(async (tx) => {
          const r = await fn(tx);
          await audit.append(
            tx,
            vaultEvent(
              ctx.caller,
              ctx.meta,
              op.op,
              target(ctx, r.name ?? name, r.version),
              ctx.vault.nameLower,
              200,
            ),
          );
          return r;
        });
      } catch (e) {
        record(ctx, op, target(ctx, name), statusOf(e));
        throw e;
      }
    },
  };
}
export type ObjectGuard = ReturnType<typeof createObjectGuard>;

/** What the shared lifecycle needs to know of a kind of object. */
export interface ObjectKind<Row extends ObjectRow, R extends ObjectRecord> {
  store: ObjectStore<Row>;
  fromRow: (row: Row) => R;
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
export function createObjectLifecycle<Row extends ObjectRow, R extends ObjectRecord>(deps: {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  guard: ObjectGuard;
  kind: ObjectKind<Row, R>;
  /** The canonical URL of a vault by its lower-case name (audit targets of the purge job). */
  baseUrlOf: (vaultNameLower: string) => string;
}) {
  const { db, clock, guard } = deps;
  const { store, fromRow, checkName, notFound, deletedNotFound, ops } = deps.kind;

  async function pageOf(ctx: ObjectCallContext, deleted: boolean, after: string, size: number) {
    const rows = await store.page(db, ctx.vault.id, deleted, after, size + 1);
    const items = rows.slice(0, size).map(fromRow);
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
        const items = rows.slice(0, size).map(fromRow);
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
        const row = await store.find(tx, ctx.vault.id, nameLower);
        if (!row || row.deleted_at !== null) throw notFound(name);
        const now = clock.now();
        const purgeAt = now + ctx.vault.softDeleteRetentionInDays * DAY_MS;
        await store.setDeleted(tx, ctx.vault.id, nameLower, now, purgeAt);
        return { ...fromRow(row), deletedAt: now, scheduledPurgeAt: purgeAt };
      });
    },

    async listDeleted(ctx: ObjectCallContext, opts: { max?: number; after?: string }): Promise<Page<R>> {
      const after = decodeCursor(opts.after, isNameCursor)?.n ?? '';
      return guard.read(ctx, ops.listDeleted, null, () => pageOf(ctx, true, after, pageSize(opts.max)));
    },

    async getDeleted(ctx: ObjectCallContext, rawName: string): Promise<R> {
      const name = checkName(rawName);
      return guard.read(ctx, ops.getDeleted, name, async () => {
        const row = await store.find(db, ctx.vault.id, name.toLowerCase());
        if (!row || row.deleted_at === null) throw deletedNotFound(name);
        return fromRow(row);
      });
    },

    async recover(ctx: ObjectCallContext, rawName: string): Promise<R> {
      const name = checkName(rawName);
      return guard.write(ctx, ops.recover, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const row = await store.find(tx, ctx.vault.id, nameLower);
        if (!row || row.deleted_at === null) throw deletedNotFound(name);
        await store.setDeleted(tx, ctx.vault.id, nameLower, null, null);
        return { ...fromRow(row), deletedAt: null, scheduledPurgeAt: null };
      });
    },

    /** Permanent deletion of a deleted object; refused while the vault has purge protection. */
    async purge(ctx: ObjectCallContext, rawName: string): Promise<void> {
      const name = checkName(rawName);
      await guard.write(ctx, ops.purge, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const row = await store.find(tx, ctx.vault.id, nameLower);
        if (!row || row.deleted_at === null) throw deletedNotFound(name);
        if (ctx.vault.enablePurgeProtection)
          throw new LatchkeyError(
            'Forbidden',
            'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.',
          );
        await store.purge(tx, ctx.vault.id, nameLower);
        deps.kind.onPurged?.(ctx.vault.id, nameLower);
        return { name: row.name };
      });
    },

    /** Purge job: deleted objects past their scheduled purge date go for good. Returns how many. */
    async purgeDue(now: number, limit = 500): Promise<number> {
      const due = await store.due(db, now, limit);
      for (const d of due) {
        await db.transaction(async (tx) => {
          if (!(await store.stillDue(tx, d.vault_id, d.name_lower, now))) return; // recovered meanwhile
          await store.purge(tx, d.vault_id, d.name_lower);
          deps.kind.onPurged?.(d.vault_id, d.name_lower);
          await deps.audit.append(tx, {
            tenantId: d.tenant_id,
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
