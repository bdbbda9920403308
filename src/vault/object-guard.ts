import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import { isLatchkeyError } from '../errors/index.js';
import { groupCommitFor } from '../storage/group-commit.js';
import type { Database, Transaction } from '../storage/port.js';
import { statusOf, vaultEvent } from './audit.js';
import { refuseManaged } from './certificate-managed.js';
import type { Vault } from './model.js';

/** Who calls, on which vault; `baseUrl` is the vault's canonical URL (audit targets). */
export interface ObjectCallContext {
  caller: Caller;
  meta: RequestMeta;
  vault: Vault;
  baseUrl: string;
}

/** The URL and RBAC scope segment of a kind of object, and its access-policy kind. */
export type Collection = 'secrets' | 'keys' | 'certificates';

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
  const onAuditError = (e: unknown): void => deps.onAuditError?.(e);
  /** Records a read or a refusal in the next batch, not awaited (`note`: no promise per request). */
  const record = (ctx: ObjectCallContext, op: ObjectOperation, tgt: string, status: number) => {
    audit.note(vaultEvent(ctx.caller, ctx.meta, op.op, tgt, ctx.vault.nameLower, status), onAuditError);
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
          // The audit lock before the object's row (a claim, an upsert): as every writer.
          await audit.hold(tx);
          // A certificate's key and secret change only with the certificate (certificate-managed.ts).
          if (name !== null && collection !== 'certificates')
            await refuseManaged(tx, collection, ctx.vault.id, name, op.perm);
          const r = await fn(tx);
          await audit.append(
            tx,
            vaultEvent(
              ctx.caller,
              ctx.meta,
              op.op,
              target(ctx, r.name ?? name, r.version, op),
              ctx.vault.nameLower,
              200,
            ),
          );
          return r;
        });
      } catch (e) {
        record(ctx, op, target(ctx, name, undefined, op), statusOf(e));
        throw e;
      }
    },
  };
}
export type ObjectGuard = ReturnType<typeof createObjectGuard>;

/**
 * The guard, with `changed` called for the object's name after every write through it: after
 * its commit, or after a failure other than a refusal or a validation error (the commit may have
 * landed). Caches of the objects (secrets', keys') drop the name so. A write without a name
 * (restore) calls `changed` itself with the name it restored.
 */
export function notifyingWrites(
  guard: ObjectGuard,
  changed: (vaultId: string, nameLower: string) => void,
): ObjectGuard {
  return {
    ...guard,
    async write(ctx, op, name, fn) {
      const drop = () => {
        if (name !== null) changed(ctx.vault.id, name.toLowerCase());
      };
      try {
        const r = await guard.write(ctx, op, name, fn);
        drop();
        return r;
      } catch (e) {
        if (!(isLatchkeyError(e) && e.status < 500)) drop();
        throw e;
      }
    },
  };
}
