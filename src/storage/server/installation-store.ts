import type { Queryable } from '../port.js';

/**
 * Installation-wide facts in the `meta` table (migration 0001): the default tenant and admin
 * user made at bootstrap, and the root key's check value.
 */
const getMeta = async (q: Queryable, key: string): Promise<string | undefined> =>
  (await q.get<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]))?.value;

export const installationStore = {
  /** The tenant bootstrap created, if any (also: "is this database bootstrapped?"). */
  defaultTenant: (q: Queryable): Promise<string | undefined> => getMeta(q, 'default_tenant'),
  adminUser: (q: Queryable): Promise<string | undefined> => getMeta(q, 'admin_user'),
  async recordBootstrap(q: Queryable, tenantId: string, adminUserName: string): Promise<void> {
    await q.run("INSERT INTO meta (key, value) VALUES ('default_tenant', $1)", [tenantId]);
    await q.run("INSERT INTO meta (key, value) VALUES ('admin_user', $1)", [adminUserName]);
  },
  /** The schema versions (migrations) applied to this store. */
  async schemaVersions(q: Queryable): Promise<number[]> {
    return (await q.all<{ version: number }>('SELECT version FROM schema_migrations')).map((r) =>
      Number(r.version),
    );
  },
  /** The root key's check value recorded at the first start, if any. */
  rootKeyCheck: (q: Queryable): Promise<string | undefined> => getMeta(q, 'root_key_check'),
  /** Records the check value unless one is there (the first node to start wins). */
  async recordRootKeyCheck(q: Queryable, value: string): Promise<void> {
    await q.run("INSERT INTO meta (key, value) VALUES ('root_key_check', $1) ON CONFLICT (key) DO NOTHING", [
      value,
    ]);
  },
};
