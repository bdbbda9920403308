import type { Queryable, SqlValue } from '../port.js';

/** The columns every object version (secret or key) has, joined with its object's state (deleted or not). */
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

/** A new version as a kind writes it: the record without the object's state, and the sealed material. */
export type NewVersion<R extends ObjectRecord> = Omit<R, 'name' | 'deletedAt' | 'scheduledPurgeAt'> & {
  sealed: Buffer;
};

/** A version column of one kind besides the common ones, and how a record fills it. */
export interface OwnColumn<R extends ObjectRecord> {
  name: string;
  value: (r: Omit<R, 'name' | 'deletedAt' | 'scheduledPurgeAt'>) => SqlValue;
  /** Written again by an attribute update (else only when the version is created). */
  updatable?: boolean;
}

/** A soft-deleted object whose scheduled purge date has come (purge job). */
export interface DuePurge {
  vault_id: string;
  name_lower: string;
  name: string;
  tenant_id: string;
  vault: string;
}

/** The tables of one kind of object; both kinds share the layout of migration 0004 (0007 mirrors it). */
export interface ObjectTables<R extends ObjectRecord> {
  /** One row per name: its current version and deleted state (`secrets`, `keys`). */
  objects: string;
  /** One row per version (`secret_versions`, `key_versions`). */
  versions: string;
  /** The version columns of this kind besides the common ones. */
  columns: readonly OwnColumn<R>[];
  /** The version column that holds the sealed material (the value, the private key). */
  sealed: string;
  /** Tables keyed by (vault_id, name_lower) that a purge empties first (a key's rotation policy). */
  dependents?: readonly string[];
}

/**
 * The SQL that secrets and keys share, written once for both tables: every
 * lookup is a primary-key or index range read (see migrations 0004 and 0007).
 * The statements are built once here, so a call costs no string work.
 */
export function objectStore<Row extends ObjectRow, R extends ObjectRecord>(t: ObjectTables<R>) {
  const own = t.columns.map((c) => `v.${c.name}`).join(', ');
  const cols = `o.name, o.current_version, o.deleted_at, o.scheduled_purge_at, v.version, ${own},
  v.tags, v.enabled, v.nbf, v.exp, v.created_at, v.updated_at`;
  const from = `FROM ${t.objects} o JOIN ${t.versions} v ON v.vault_id = o.vault_id AND v.name_lower = o.name_lower`;
  const latest = `${from} AND v.version = o.current_version WHERE o.vault_id = $1 AND o.name_lower = $2`;
  const given = `${from} WHERE o.vault_id = $1 AND o.name_lower = $2 AND v.version = $3`;
  const page = (deleted: boolean) =>
    `SELECT ${cols} ${from} AND v.version = o.current_version
     WHERE o.vault_id = $1 AND o.deleted_at IS ${deleted ? 'NOT NULL' : 'NULL'} AND o.name_lower > $2
     ORDER BY o.name_lower LIMIT $3`;
  const updatable = t.columns.filter((c) => c.updatable);
  const sql = {
    latest: `SELECT ${cols} ${latest}`,
    latestSealed: `SELECT ${cols}, v.${t.sealed} ${latest}`,
    given: `SELECT ${cols} ${given}`,
    givenSealed: `SELECT ${cols}, v.${t.sealed} ${given}`,
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
    allVersions: `SELECT ${cols}, v.${t.sealed} ${from} WHERE o.vault_id = $1 AND o.name_lower = $2 ORDER BY v.created_at, v.version`,
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
    insertVersion: `INSERT INTO ${t.versions} (vault_id, name_lower, version, ${t.sealed}, ${t.columns.map((c) => c.name).join(', ')},
       tags, enabled, nbf, exp, created_at, updated_at)
       VALUES (${Array.from({ length: 10 + t.columns.length }, (_, i) => `$${i + 1}`).join(', ')})`,
    updateVersion: `UPDATE ${t.versions} SET ${[...updatable.map((c) => c.name), 'tags', 'enabled', 'nbf', 'exp', 'updated_at'].map((c, i) => `${c} = $${i + 4}`).join(', ')}
       WHERE vault_id = $1 AND name_lower = $2 AND version = $3`,
    stillDue: `SELECT 1 AS x FROM ${t.objects} WHERE vault_id = $1 AND name_lower = $2 AND scheduled_purge_at IS NOT NULL AND scheduled_purge_at <= $3`,
  };

  return {
    /** The latest version (or a given one), with its sealed material when asked, and whether the object is deleted. */
    find(
      q: Queryable,
      vaultId: string,
      nameLower: string,
      version?: string,
      withSealed = false,
    ): Promise<Row | undefined> {
      return version === undefined
        ? q.get<Row>(withSealed ? sql.latestSealed : sql.latest, [vaultId, nameLower])
        : q.get<Row>(withSealed ? sql.givenSealed : sql.given, [vaultId, nameLower, version]);
    },
    /** One page of objects (latest versions) after `after` in name order; `limit + 1` rows tell if there is more. */
    page(q: Queryable, vaultId: string, deleted: boolean, after: string, limit: number): Promise<Row[]> {
      return q.all<Row>(deleted ? sql.deletedPage : sql.page, [vaultId, after, limit]);
    },
    /**
     * One page of an object's versions in creation order after (created, version);
     * `newestFirst`: in reverse order, before it (the console's version lists).
     */
    versions(
      q: Queryable,
      vaultId: string,
      nameLower: string,
      after: { created: number; version: string } | undefined,
      limit: number,
      newestFirst = false,
    ): Promise<Row[]> {
      if (newestFirst) {
        // Versions are 32 hex digits: 'g' sorts after every one of them.
        const b = after ?? { created: Number.MAX_SAFE_INTEGER, version: 'g' };
        return q.all<Row>(sql.versionsDesc, [vaultId, nameLower, b.created, b.version, limit]);
      }
      const a = after ?? { created: -1, version: '' };
      return q.all<Row>(sql.versions, [vaultId, nameLower, a.created, a.version, limit]);
    },
    /** Every version with its sealed material (backup). */
    allVersions(q: Queryable, vaultId: string, nameLower: string): Promise<Row[]> {
      return q.all<Row>(sql.allVersions, [vaultId, nameLower]);
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
    due(q: Queryable, now: number, limit: number): Promise<DuePurge[]> {
      return q.all<DuePurge>(sql.due, [now, limit]);
    },
    /** A new version (the object row is written apart, by `upsert`). */
    async insertVersion(q: Queryable, vaultId: string, nameLower: string, v: NewVersion<R>): Promise<void> {
      await q.run(sql.insertVersion, [
        vaultId,
        nameLower,
        v.version,
        v.sealed,
        ...t.columns.map((c) => c.value(v)),
        v.tags ? JSON.stringify(v.tags) : null,
        v.enabled ? 1 : 0,
        v.nbf,
        v.exp,
        v.created,
        v.updated,
      ]);
    },
    /** Writes a version's changeable attributes (tags, enabled, nbf, exp, updated and the kind's updatable columns). */
    async updateVersion(q: Queryable, vaultId: string, nameLower: string, r: R): Promise<void> {
      await q.run(sql.updateVersion, [
        vaultId,
        nameLower,
        r.version,
        ...updatable.map((c) => c.value(r)),
        r.tags ? JSON.stringify(r.tags) : null,
        r.enabled ? 1 : 0,
        r.nbf,
        r.exp,
        r.updated,
      ]);
    },
    /** Whether the object is still due (not recovered meanwhile). */
    async stillDue(q: Queryable, vaultId: string, nameLower: string, now: number): Promise<boolean> {
      return !!(await q.get(sql.stillDue, [vaultId, nameLower, now]));
    },
  };
}
export type ObjectStore<Row extends ObjectRow, R extends ObjectRecord> = ReturnType<
  typeof objectStore<Row, R>
>;
