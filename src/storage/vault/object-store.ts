import type { Queryable, SqlValue } from '../port.js';

/** The columns every object version (secret, key or certificate) has, joined with its object's state (deleted or not). */
export interface ObjectRow {
  name: string;
  version: string;
  current_version: string;
  tags: string | null;
  enabled: number;
  nbf: number | null;
  exp: number | null;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
  scheduled_purge_at: number | null;
  /** 1 when an object of the managing kind holds the name (`ObjectTables.managedBy`), else 0 or absent. */
  managed?: number;
}

/** The attributes every object version has (times in epoch ms). */
export interface ObjectAttributes {
  tags: Record<string, string> | null;
  enabled: boolean;
  nbf: number | null;
  exp: number | null;
  created: number;
  updated: number;
}

/** What every object version is in the domain; secrets and keys add their own fields. */
export interface ObjectRecord extends ObjectAttributes {
  name: string;
  version: string;
  deletedAt: number | null;
  scheduledPurgeAt: number | null;
  /**
   * Azure's `managed: true`: the version belongs to an object of another kind of the same name
   * (a certificate's key or secret; `ObjectTables.managedBy`). Absent otherwise.
   */
  managed?: true;
}

/** The common attributes and state of a stored version, for a kind's row-to-record function. */
export const attributesFromRow = (r: ObjectRow): Omit<ObjectRecord, 'name' | 'version'> => ({
  tags: r.tags ? (JSON.parse(r.tags) as Record<string, string>) : null,
  enabled: Number(r.enabled) === 1,
  nbf: r.nbf === null ? null : Number(r.nbf),
  exp: r.exp === null ? null : Number(r.exp),
  created: Number(r.created_at),
  updated: Number(r.updated_at),
  deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
  scheduledPurgeAt: r.scheduled_purge_at === null ? null : Number(r.scheduled_purge_at),
});

/** A version as a kind writes it: the record without the object's state. */
export type VersionFields<R extends ObjectRecord> = Omit<R, 'name' | 'deletedAt' | 'scheduledPurgeAt'>;

/** A new version as a kind with sealed material writes it: the record without the object's state, and the sealed material. */
export type NewVersion<R extends ObjectRecord> = VersionFields<R> & { sealed: Buffer };

/** A stored version with its sealed material (the value, the private key), as `findSealed` reads it. */
export type SealedVersion<R extends ObjectRecord> = R & { sealed: Buffer };

/** Every version of an object with its sealed material and the object's current version (backup). */
export type BackupVersion<R extends ObjectRecord> = SealedVersion<R> & { currentVersion: string };

/** A version column of one kind besides the common ones, and how a record fills it. */
export interface OwnColumn<R extends ObjectRecord> {
  name: string;
  value: (r: VersionFields<R>) => SqlValue;
  /** Written again by an attribute update (else only when the version is created). */
  updatable?: boolean;
}

/** A soft-deleted object whose scheduled purge date has come (purge job). */
export interface DuePurge {
  vaultId: string;
  nameLower: string;
  name: string;
  tenantId: string;
  /** The vault's lower-case name. */
  vault: string;
}

interface DuePurgeRow {
  vault_id: string;
  name_lower: string;
  name: string;
  tenant_id: string;
  vault: string;
}

/** A stored policy or pending operation: the JSON the domain wrote, and its times (epoch ms). */
export interface StoredDocument {
  json: string;
  created: number;
  updated: number;
}

/**
 * The tables of one kind of object; every kind shares the layout of migration 0004
 * (0007 and 0013 mirror it).
 */
export interface ObjectTables<Row extends ObjectRow, R extends ObjectRecord> {
  /** One row per name: its current version and deleted state (`secrets`, `keys`). */
  objects: string;
  /** One row per version (`secret_versions`, `key_versions`). */
  versions: string;
  /** The version columns of this kind besides the common ones. */
  columns: readonly OwnColumn<R>[];
  /** The kind's own fields of a row (the common ones come from `attributesFromRow`). */
  fromRow: (r: Row) => Omit<R, keyof ObjectRecord>;
  /**
   * The version column that holds the sealed material (the value, the private key), read only
   * when asked for; null for a kind with nothing sealed (certificates: all of a version is public).
   */
  sealed: string | null;
  /** nbf and exp are the version's own and never change (certificates): an update leaves them. */
  fixedWindow?: boolean;
  /** Tables keyed by (vault_id, name_lower) that a purge empties first (a key's rotation policy). */
  dependents?: readonly string[];
  /**
   * The objects table of the kind that manages one of this kind of the same name (`certificates`
   * for keys and secrets): every read then says `managed` (a primary-key lookup per row).
   */
  managedBy?: string;
}

/**
 * The SQL that secrets, keys and certificates share, written once for every kind's tables:
 * every lookup is a primary-key or index range read (see migrations 0004, 0007 and 0013).
 * The statements are built once here, so a call costs no string work. Rows become the
 * kind's camelCase records here, at the store boundary.
 */
export function objectStore<
  Row extends ObjectRow,
  R extends ObjectRecord,
  V extends VersionFields<R> & { sealed?: Buffer } = NewVersion<R>,
>(t: ObjectTables<Row, R>) {
  const own = t.columns.map((c) => `v.${c.name}`).join(', ');
  const managed =
    t.managedBy === undefined
      ? ''
      : `, CASE WHEN EXISTS (SELECT 1 FROM ${t.managedBy} m WHERE m.vault_id = o.vault_id AND m.name_lower = o.name_lower) THEN 1 ELSE 0 END AS managed`;
  const cols = `o.name, o.current_version, o.deleted_at, o.scheduled_purge_at, v.version, ${own},
  v.tags, v.enabled, v.nbf, v.exp, v.created_at, v.updated_at${managed}`;
  const sealedCols = t.sealed === null ? cols : `${cols}, v.${t.sealed}`;
  const from = `FROM ${t.objects} o JOIN ${t.versions} v ON v.vault_id = o.vault_id AND v.name_lower = o.name_lower`;
  const latest = `${from} AND v.version = o.current_version WHERE o.vault_id = $1 AND o.name_lower = $2`;
  const given = `${from} WHERE o.vault_id = $1 AND o.name_lower = $2 AND v.version = $3`;
  const page = (deleted: boolean) =>
    `SELECT ${cols} ${from} AND v.version = o.current_version
     WHERE o.vault_id = $1 AND o.deleted_at IS ${deleted ? 'NOT NULL' : 'NULL'} AND o.name_lower > $2
     ORDER BY o.name_lower LIMIT $3`;
  const updatable = t.columns.filter((c) => c.updatable);
  const window = t.fixedWindow ? [] : ['nbf', 'exp'];
  const written = [...(t.sealed === null ? [] : [t.sealed]), ...t.columns.map((c) => c.name)];
  const sql = {
    latest: `SELECT ${cols} ${latest}`,
    latestSealed: `SELECT ${sealedCols} ${latest}`,
    given: `SELECT ${cols} ${given}`,
    givenSealed: `SELECT ${sealedCols} ${given}`,
    page: page(false),
    deletedPage: page(true),
    versions: `SELECT ${cols} ${from}
       WHERE o.vault_id = $1 AND o.name_lower = $2 AND o.deleted_at IS NULL
         AND (v.created_at > $3 OR (v.created_at = $3 AND v.version > $4))
       ORDER BY v.created_at, v.version LIMIT $5`,
    versionsDesc: `SELECT ${cols} ${from}
       WHERE o.vault_id = $1 AND o.name_lower = $2 AND o.deleted_at IS NULL
         AND (v.created_at < $3 OR (v.created_at = $3 AND v.version < $4))
       ORDER BY v.created_at DESC, v.version DESC LIMIT $5`,
    allVersions: `SELECT ${sealedCols} ${from} WHERE o.vault_id = $1 AND o.name_lower = $2 ORDER BY v.created_at, v.version`,
    upsert: `INSERT INTO ${t.objects} (vault_id, name_lower, name, current_version, deleted_at, scheduled_purge_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, NULL, NULL, $5, $5)
       ON CONFLICT (vault_id, name_lower) DO UPDATE SET current_version = excluded.current_version, updated_at = excluded.updated_at
       WHERE ${t.objects}.deleted_at IS NULL
       RETURNING name`,
    setDeleted: `UPDATE ${t.objects} SET deleted_at = $3, scheduled_purge_at = $4 WHERE vault_id = $1 AND name_lower = $2`,
    purge: [...(t.dependents ?? []), t.versions, t.objects].map(
      (table) => `DELETE FROM ${table} WHERE vault_id = $1 AND name_lower = $2`,
    ),
    exists: `SELECT 1 AS x FROM ${t.objects} WHERE vault_id = $1 AND name_lower = $2`,
    due: `SELECT o.vault_id, o.name_lower, o.name, vt.tenant_id, vt.name_lower AS vault FROM ${t.objects} o JOIN vaults vt ON vt.id = o.vault_id
         WHERE o.scheduled_purge_at IS NOT NULL AND o.scheduled_purge_at <= $1 ORDER BY o.scheduled_purge_at LIMIT $2`,
    insertVersion: `INSERT INTO ${t.versions} (vault_id, name_lower, version, ${written.join(', ')},
       tags, enabled, nbf, exp, created_at, updated_at)
       VALUES (${Array.from({ length: 9 + written.length }, (_, i) => `$${i + 1}`).join(', ')})`,
    updateVersion: `UPDATE ${t.versions} SET ${[...updatable.map((c) => c.name), 'tags', 'enabled', ...window, 'updated_at'].map((c, i) => `${c} = $${i + 4}`).join(', ')}
       WHERE vault_id = $1 AND name_lower = $2 AND version = $3`,
    // Claims (below): an UPDATE that changes nothing but takes the object's row lock (PostgreSQL)
    // and tests its state on the newest committed row once the lock is had.
    insertNew: `INSERT INTO ${t.objects} (vault_id, name_lower, name, current_version, deleted_at, scheduled_purge_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, NULL, NULL, $5, $5)
       ON CONFLICT (vault_id, name_lower) DO NOTHING`,
    stillDue: `UPDATE ${t.objects} SET deleted_at = deleted_at WHERE vault_id = $1 AND name_lower = $2 AND scheduled_purge_at IS NOT NULL AND scheduled_purge_at <= $3`,
    claimActive: `UPDATE ${t.objects} SET deleted_at = deleted_at WHERE vault_id = $1 AND name_lower = $2 AND deleted_at IS NULL`,
    claimDeleted: `UPDATE ${t.objects} SET deleted_at = deleted_at WHERE vault_id = $1 AND name_lower = $2 AND deleted_at IS NOT NULL`,
  };

  const record = (r: Row): R =>
    ({
      name: r.name,
      version: r.version,
      ...t.fromRow(r),
      ...attributesFromRow(r),
      ...(Number(r.managed) === 1 ? { managed: true } : {}),
    }) as R;
  const sealedRecord = (r: Row): SealedVersion<R> => ({
    ...record(r),
    sealed: (t.sealed === null ? null : (r as unknown as Record<string, unknown>)[t.sealed]) as Buffer,
  });

  return {
    /** The latest version (or a given one), deleted or not (`deletedAt`). */
    async find(q: Queryable, vaultId: string, nameLower: string, version?: string): Promise<R | undefined> {
      const r =
        version === undefined
          ? await q.get<Row>(sql.latest, [vaultId, nameLower])
          : await q.get<Row>(sql.given, [vaultId, nameLower, version]);
      return r && record(r);
    },
    /** As `find`, with the version's sealed material (the value, the private key). */
    async findSealed(
      q: Queryable,
      vaultId: string,
      nameLower: string,
      version?: string,
    ): Promise<SealedVersion<R> | undefined> {
      const r =
        version === undefined
          ? await q.get<Row>(sql.latestSealed, [vaultId, nameLower])
          : await q.get<Row>(sql.givenSealed, [vaultId, nameLower, version]);
      return r && sealedRecord(r);
    },
    /** One page of objects (latest versions) after `after` in name order; `limit + 1` rows tell if there is more. */
    async page(q: Queryable, vaultId: string, deleted: boolean, after: string, limit: number): Promise<R[]> {
      const rows = await q.all<Row>(deleted ? sql.deletedPage : sql.page, [vaultId, after, limit]);
      return rows.map(record);
    },
    /**
     * One page of an object's versions in creation order after (created, version);
     * `newestFirst`: in reverse order, before it (the console's version lists).
     */
    async versions(
      q: Queryable,
      vaultId: string,
      nameLower: string,
      after: { created: number; version: string } | undefined,
      limit: number,
      newestFirst = false,
    ): Promise<R[]> {
      if (newestFirst) {
        // Versions are 32 hex digits: 'g' sorts after every one of them.
        const b = after ?? { created: Number.MAX_SAFE_INTEGER, version: 'g' };
        return (await q.all<Row>(sql.versionsDesc, [vaultId, nameLower, b.created, b.version, limit])).map(
          record,
        );
      }
      const a = after ?? { created: -1, version: '' };
      return (await q.all<Row>(sql.versions, [vaultId, nameLower, a.created, a.version, limit])).map(record);
    },
    /** Every version with its sealed material and the object's current version (backup). */
    async allVersions(q: Queryable, vaultId: string, nameLower: string): Promise<BackupVersion<R>[]> {
      const rows = await q.all<Row>(sql.allVersions, [vaultId, nameLower]);
      return rows.map((r) => ({ ...sealedRecord(r), currentVersion: r.current_version }));
    },
    /**
     * Points the object at a new current version, creating it if needed. Returns
     * the stored name, or undefined when the name is held by a deleted object.
     */
    async upsert(
      q: Queryable,
      vaultId: string,
      name: string,
      version: string,
      now: number,
    ): Promise<string | undefined> {
      const r = await q.get<{ name: string }>(sql.upsert, [vaultId, name.toLowerCase(), name, version, now]);
      return r?.name;
    },
    /**
     * Inserts the object row of a restore: only where the name is free. False when another
     * transaction has the name (on PostgreSQL a concurrent create waits here and wins): the
     * caller's `exists` check alone would let the restore merge into what was created meanwhile.
     */
    async insertNew(
      q: Queryable,
      vaultId: string,
      name: string,
      version: string,
      now: number,
    ): Promise<boolean> {
      const r = await q.run(sql.insertNew, [vaultId, name.toLowerCase(), name, version, now]);
      return r.changes > 0;
    },
    async setDeleted(
      q: Queryable,
      vaultId: string,
      nameLower: string,
      deletedAt: number | null,
      purgeAt: number | null,
    ): Promise<number> {
      return (await q.run(sql.setDeleted, [vaultId, nameLower, deletedAt, purgeAt])).changes;
    },
    /** Removes the object, its versions and its dependents for good. */
    async purge(q: Queryable, vaultId: string, nameLower: string): Promise<void> {
      for (const statement of sql.purge) await q.run(statement, [vaultId, nameLower]);
    },
    async exists(q: Queryable, vaultId: string, nameLower: string): Promise<boolean> {
      return !!(await q.get(sql.exists, [vaultId, nameLower]));
    },
    /** Deleted objects past their scheduled purge date, oldest first. */
    async due(q: Queryable, now: number, limit: number): Promise<DuePurge[]> {
      const rows = await q.all<DuePurgeRow>(sql.due, [now, limit]);
      return rows.map((r) => ({
        vaultId: r.vault_id,
        nameLower: r.name_lower,
        name: r.name,
        tenantId: r.tenant_id,
        vault: r.vault,
      }));
    },
    /** A new version (the object row is written apart, by `upsert`). */
    async insertVersion(q: Queryable, vaultId: string, nameLower: string, v: V): Promise<void> {
      await q.run(sql.insertVersion, [
        vaultId,
        nameLower,
        v.version,
        ...(t.sealed === null ? [] : [v.sealed as Buffer]),
        ...t.columns.map((c) => c.value(v)),
        v.tags ? JSON.stringify(v.tags) : null,
        v.enabled ? 1 : 0,
        v.nbf,
        v.exp,
        v.created,
        v.updated,
      ]);
    },
    /** Writes a version's changeable attributes (tags, enabled, nbf and exp unless fixed, updated, the kind's updatable columns). */
    async updateVersion(q: Queryable, vaultId: string, nameLower: string, r: R): Promise<void> {
      await q.run(sql.updateVersion, [
        vaultId,
        nameLower,
        r.version,
        ...updatable.map((c) => c.value(r)),
        r.tags ? JSON.stringify(r.tags) : null,
        r.enabled ? 1 : 0,
        ...(t.fixedWindow ? [] : [r.nbf, r.exp]),
        r.updated,
      ]);
    },
    /** Whether the object is still due (not recovered meanwhile). */
    /** Claims a deleted object past its purge date for the scheduled purge (false: recovered meanwhile, or gone). */
    async stillDue(q: Queryable, vaultId: string, nameLower: string, now: number): Promise<boolean> {
      return (await q.run(sql.stillDue, [vaultId, nameLower, now])).changes > 0;
    },
    /**
     * Claims the object for a change in `q`'s transaction, if it is in the state the change needs
     * (`deleted`: soft-deleted, else active); false if not (or absent). On PostgreSQL the claim
     * holds the object's row lock until the commit, so two changes of one object (a recover and a
     * purge from two nodes, say) run one after the other, the second deciding on what the first
     * left, never both on what they read before it. SQLite's writers are serialized already.
     */
    async claim(q: Queryable, vaultId: string, nameLower: string, deleted: boolean): Promise<boolean> {
      return (await q.run(deleted ? sql.claimDeleted : sql.claimActive, [vaultId, nameLower])).changes > 0;
    },
  };
}
/** The shared object operations over one kind's records (what the domain's lifecycle uses). */
export type ObjectStore<R extends ObjectRecord> = Pick<
  ReturnType<typeof objectStore<ObjectRow, R, VersionFields<R> & { sealed?: Buffer }>>,
  | 'find'
  | 'page'
  | 'versions'
  | 'upsert'
  | 'insertNew'
  | 'insertVersion'
  | 'updateVersion'
  | 'setDeleted'
  | 'purge'
  | 'due'
  | 'stillDue'
  | 'claim'
>;

interface DocumentRow {
  doc: string;
  created_at: number;
  updated_at: number;
}

/**
 * A JSON document kept per object (a key's rotation policy, a certificate's policy and pending
 * operation) in `table (vault_id, name_lower, <column>, created_at, updated_at)`. `put` keeps the
 * first creation time, or with `replaceCreated` starts it again (a new pending operation).
 */
export function documentStore(table: string, column: string, opts: { replaceCreated?: boolean } = {}) {
  const sql = {
    get: `SELECT ${column} AS doc, created_at, updated_at FROM ${table} WHERE vault_id = $1 AND name_lower = $2`,
    put: `INSERT INTO ${table} (vault_id, name_lower, ${column}, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (vault_id, name_lower) DO UPDATE SET ${column} = excluded.${column},${opts.replaceCreated ? ' created_at = excluded.created_at,' : ''} updated_at = excluded.updated_at`,
    delete: `DELETE FROM ${table} WHERE vault_id = $1 AND name_lower = $2`,
  };
  return {
    async get(q: Queryable, vaultId: string, nameLower: string): Promise<StoredDocument | undefined> {
      const r = await q.get<DocumentRow>(sql.get, [vaultId, nameLower]);
      return r && { json: r.doc, created: Number(r.created_at), updated: Number(r.updated_at) };
    },
    /** Writes the document, created at `created` (default `now`) when new. */
    async put(
      q: Queryable,
      vaultId: string,
      nameLower: string,
      json: string,
      now: number,
      created = now,
    ): Promise<void> {
      await q.run(sql.put, [vaultId, nameLower, json, created, now]);
    },
    /** Removes the document; returns whether there was one. */
    async delete(q: Queryable, vaultId: string, nameLower: string): Promise<boolean> {
      return (await q.run(sql.delete, [vaultId, nameLower])).changes > 0;
    },
  };
}
