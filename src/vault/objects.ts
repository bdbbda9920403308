import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { newVersionId } from '../lib/ids.js';
import type { Database, Queryable } from '../storage/port.js';
import type { ObjectRecord, ObjectStore, VersionFields } from '../storage/vault/object-store.js';
import { DAY_MS, VAULT_LIMITS } from './model.js';
import type { ObjectCallContext, ObjectGuard, ObjectOperation } from './object-guard.js';
import type { ObjectKindRules } from './object-kind.js';
import { checkWindow } from './secret-rules.js';

export type { Collection, ObjectCallContext } from './object-guard.js';

/**
 * What secrets, keys and certificates have in common: all are versioned, soft-deletable
 * objects in a vault, authorized and audited the same way. This module holds
 * that shared part once: the call context and the guard (authorize, read,
 * write) in object-guard.ts, names and errors in object-kind.ts; here the paging cursors
 * and the lifecycle of adding and updating versions, listing, deleting, recovering and
 * purging. What differs (values, key material, crypto, rotation, certificate policies)
 * stays in secrets.ts, the key-*.ts and the certificate*.ts files.
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

/** What a kind's service is made of (secrets, certificates; keys get theirs from key-domain.ts). */
export interface ObjectServiceDeps {
  db: Database;
  clock: Clock;
  sealer: Sealer;
  access: Access;
  audit: AuditLog;
  /** The canonical URL of a vault by its lower-case name (audit targets of the purge job). */
  baseUrlOf: (vaultNameLower: string) => string;
  onAuditError?: (e: unknown) => void;
}

/** An attribute change: undefined leaves a field as it is, null clears it. */
export interface AttributesPatch {
  enabled?: boolean;
  /** Epoch ms. */
  nbf?: number | null;
  exp?: number | null;
  tags?: Record<string, string> | null;
}

/** What the shared lifecycle needs to know of a kind of object. */
export interface ObjectKind<R extends ObjectRecord, Shown extends R = R>
  extends Pick<ObjectKindRules, 'checkName' | 'notFound' | 'deletedNotFound' | 'deletedConflict'> {
  store: ObjectStore<R>;
  ops: Record<
    'list' | 'versions' | 'update' | 'delete' | 'listDeleted' | 'getDeleted' | 'recover' | 'purge',
    ObjectOperation
  >;
  /** Runs in the purge's transaction once the rows are gone (keys drop their parsed keys). */
  onPurged?: (vaultId: string, nameLower: string) => void;
  /**
   * Runs in the transaction of a soft delete (`deletedAt` and `purgeAt` set) or a recover (both
   * null) after the object's own change: a certificate's key and secret follow it.
   */
  alsoDeleted?: (
    q: Queryable,
    vaultId: string,
    nameLower: string,
    deletedAt: number | null,
    purgeAt: number | null,
  ) => Promise<void>;
  /**
   * Runs in the transaction of every purge (asked for or scheduled) once the object's rows are
   * gone: a certificate's key and secret go with it, never apart (left behind for their own
   * schedule, they were for a while an ordinary key and secret, recoverable and changeable).
   */
  alsoPurged?: (q: Queryable, vaultId: string, nameLower: string) => Promise<void>;
  /**
   * True when the object belongs to another object of the same name whose purge takes it (a
   * certificate's key and secret): the scheduled purge leaves it to that one, so a certificate
   * is never found recoverable without its key.
   */
  purgedWithOwner?: (q: Queryable, vaultId: string, nameLower: string) => Promise<boolean>;
  /**
   * Runs in the transaction of every purge (asked for or scheduled) before the rows go: a
   * certificate signed by the tenant's CA is revoked (certificate-ca.ts).
   */
  beforePurge?: (q: Queryable, vault: { id: string; tenantId: string }, nameLower: string) => Promise<void>;
  /** What delete and recover answer with (a certificate adds its policy); default: the record. */
  shown?: (q: Queryable, vaultId: string, r: R) => Promise<Shown>;
}

/** The attributes and tags of a new version from a create, set or import (absent: enabled, no window, no tags). */
export const newAttributes = (a: AttributesPatch) => ({
  tags: a.tags ?? null,
  enabled: a.enabled ?? true,
  nbf: a.nbf ?? null,
  exp: a.exp ?? null,
});

/** A version's fields as a kind chooses them when it adds one (the lifecycle sets the rest). */
export type NewFields<R extends ObjectRecord> = Omit<VersionFields<R>, 'version' | 'created' | 'updated'>;

/** The latest (or a given) version of an active object, or of a deleted one, else the kind's 404s. */
function finders<R extends ObjectRecord>(
  kind: Pick<ObjectKind<R>, 'store' | 'notFound' | 'deletedNotFound'>,
) {
  const { store, notFound, deletedNotFound } = kind;
  return {
    async active(q: Queryable, ctx: ObjectCallContext, name: string, version?: string): Promise<R> {
      const cur = await store.find(q, ctx.vault.id, name.toLowerCase(), version);
      if (!cur || cur.deletedAt !== null) throw notFound(name, version);
      return cur;
    },
    async deleted(q: Queryable, ctx: ObjectCallContext, name: string): Promise<R> {
      const cur = await store.find(q, ctx.vault.id, name.toLowerCase());
      if (!cur || cur.deletedAt === null) throw deletedNotFound(name);
      return cur;
    },
  };
}

/**
 * Adding and updating versions, the same for secrets and keys (certificates add theirs with
 * their key and secret: certificate-versions.ts). For the kind's own service, not handed out.
 */
export function createObjectVersions<R extends ObjectRecord>(deps: {
  clock: Clock;
  guard: ObjectGuard;
  kind: ObjectKind<R>;
}) {
  const { clock, guard, kind } = deps;
  const { store } = kind;
  const { active } = finders(kind);
  return {
    /** The latest (or a given) version of an object that is not deleted, else the kind's 404. */
    active,

    /**
     * Adds a version (a new object or a new current version) in `q`'s transaction; refused
     * while the name is held by a deleted object. `seal` seals the version's material.
     */
    async add(
      q: Queryable,
      vaultId: string,
      name: string,
      fields: NewFields<R>,
      seal: (nameLower: string, version: string) => Buffer,
    ): Promise<R> {
      const now = clock.now();
      const version = newVersionId(now);
      const nameLower = name.toLowerCase();
      const stored = await store.upsert(q, vaultId, name, version, now);
      if (stored === undefined) throw kind.deletedConflict(name);
      const rec = {
        name: stored,
        version,
        ...fields,
        created: now,
        updated: now,
        deletedAt: null,
        scheduledPurgeAt: null,
      } as R;
      await store.insertVersion(q, vaultId, nameLower, { ...rec, sealed: seal(nameLower, version) });
      return rec;
    },

    /**
     * Changes the attributes and tags of the latest (or a given) version, and what `own` gives
     * of the kind's fields; never the material. `name` and `version` are checked already.
     */
    async update(
      ctx: ObjectCallContext,
      name: string,
      version: string | undefined,
      patch: AttributesPatch,
      own: (cur: R) => Partial<R> = () => ({}),
    ): Promise<R> {
      return guard.write(ctx, kind.ops.update, name, async (tx) => {
        // Claimed first: a concurrent change of the object is read after it, not written over.
        if (!(await store.claim(tx, ctx.vault.id, name.toLowerCase(), false)))
          throw kind.notFound(name, version);
        const cur = await active(tx, ctx, name, version);
        const next: R = {
          ...cur,
          ...own(cur),
          tags: patch.tags === undefined ? cur.tags : patch.tags,
          enabled: patch.enabled ?? cur.enabled,
          nbf: patch.nbf === undefined ? cur.nbf : patch.nbf,
          exp: patch.exp === undefined ? cur.exp : patch.exp,
          updated: clock.now(),
        };
        checkWindow(next.nbf, next.exp);
        await store.updateVersion(tx, ctx.vault.id, name.toLowerCase(), next);
        return next;
      });
    },
  };
}

/**
 * Listing (objects, versions, deleted objects), soft delete, recover, purge and the scheduled
 * purge, the same for every kind. A deleted object (all its versions) is recoverable until
 * its scheduled purge date.
 */
export function createObjectLifecycle<R extends ObjectRecord, Shown extends R = R>(deps: {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  guard: ObjectGuard;
  kind: ObjectKind<R, Shown>;
  /** The canonical URL of a vault by its lower-case name (audit targets of the purge job). */
  baseUrlOf: (vaultNameLower: string) => string;
}) {
  const { db, clock, guard, kind } = deps;
  const { store, checkName, ops } = kind;
  // Without `shown` the record itself is the answer (Shown is R then).
  const shown = kind.shown ?? (async (_q: Queryable, _vaultId: string, r: R) => r as Shown);

  async function pageOf(ctx: ObjectCallContext, deleted: boolean, after: string, size: number) {
    const rows = await store.page(db, ctx.vault.id, deleted, after, size + 1);
    const items = rows.slice(0, size);
    const last = items[items.length - 1];
    return rows.length > size && last
      ? { items, next: encodeCursor({ n: last.name.toLowerCase() }) }
      : { items };
  }
  const { active, deleted } = finders(kind);

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
    async delete(ctx: ObjectCallContext, rawName: string): Promise<Shown> {
      const name = checkName(rawName);
      return guard.write(ctx, ops.delete, name, async (tx) => {
        if (!(await store.claim(tx, ctx.vault.id, name.toLowerCase(), false))) throw kind.notFound(name);
        const cur = await active(tx, ctx, name);
        const now = clock.now();
        const purgeAt = now + ctx.vault.softDeleteRetentionInDays * DAY_MS;
        await store.setDeleted(tx, ctx.vault.id, name.toLowerCase(), now, purgeAt);
        await kind.alsoDeleted?.(tx, ctx.vault.id, name.toLowerCase(), now, purgeAt);
        return shown(tx, ctx.vault.id, { ...cur, deletedAt: now, scheduledPurgeAt: purgeAt });
      });
    },

    async listDeleted(ctx: ObjectCallContext, opts: { max?: number; after?: string }): Promise<Page<R>> {
      const after = decodeCursor(opts.after, isNameCursor)?.n ?? '';
      return guard.read(ctx, ops.listDeleted, null, () => pageOf(ctx, true, after, pageSize(opts.max)));
    },

    async getDeleted(ctx: ObjectCallContext, rawName: string): Promise<R> {
      const name = checkName(rawName);
      return guard.read(ctx, ops.getDeleted, name, () => deleted(db, ctx, name));
    },

    async recover(ctx: ObjectCallContext, rawName: string): Promise<Shown> {
      const name = checkName(rawName);
      return guard.write(ctx, ops.recover, name, async (tx) => {
        // Claimed first (see `claim`): a recover and a purge of one object never both succeed.
        if (!(await store.claim(tx, ctx.vault.id, name.toLowerCase(), true)))
          throw kind.deletedNotFound(name);
        const cur = await deleted(tx, ctx, name);
        await store.setDeleted(tx, ctx.vault.id, name.toLowerCase(), null, null);
        await kind.alsoDeleted?.(tx, ctx.vault.id, name.toLowerCase(), null, null);
        return shown(tx, ctx.vault.id, { ...cur, deletedAt: null, scheduledPurgeAt: null });
      });
    },

    /** Permanent deletion of a deleted object; refused while the vault has purge protection. */
    async purge(ctx: ObjectCallContext, rawName: string): Promise<void> {
      const name = checkName(rawName);
      await guard.write(ctx, ops.purge, name, async (tx) => {
        const nameLower = name.toLowerCase();
        if (!(await store.claim(tx, ctx.vault.id, nameLower, true))) throw kind.deletedNotFound(name);
        const cur = await deleted(tx, ctx, name);
        if (ctx.vault.enablePurgeProtection)
          throw new LatchkeyError(
            'Forbidden',
            'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.',
          );
        await kind.beforePurge?.(tx, ctx.vault, nameLower);
        await store.purge(tx, ctx.vault.id, nameLower);
        await kind.alsoPurged?.(tx, ctx.vault.id, nameLower);
        kind.onPurged?.(ctx.vault.id, nameLower);
        return { name: cur.name };
      });
    },

    /** Purge job: deleted objects past their scheduled purge date go for good. Returns how many. */
    async purgeDue(now: number, limit = 500): Promise<number> {
      const due = await store.due(db, now, limit);
      for (const d of due) {
        await db.transaction(async (tx) => {
          await deps.audit.hold(tx); // before the claim below: lock order (audit/log.ts)
          if (!(await store.stillDue(tx, d.vaultId, d.nameLower, now))) return; // recovered meanwhile
          if (await kind.purgedWithOwner?.(tx, d.vaultId, d.nameLower)) return; // goes with its certificate
          await kind.beforePurge?.(tx, { id: d.vaultId, tenantId: d.tenantId }, d.nameLower);
          await store.purge(tx, d.vaultId, d.nameLower);
          await kind.alsoPurged?.(tx, d.vaultId, d.nameLower);
          kind.onPurged?.(d.vaultId, d.nameLower);
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
