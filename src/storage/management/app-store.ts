import type { Queryable } from '../port.js';
import { placementOf, placementValues, type ResourceRow, type StoredPlacement } from './resource-row.js';
import { tagsOf } from './tags.js';

/** An app as stored (migration 0005), with its system identity's client id; settings apart (sealed). */
export interface StoredApp extends StoredPlacement {
  rowId: string;
  hostId: string;
  systemPrincipalId: string | null;
  /** The system identity's app id (null without one). */
  systemClientId: string | null;
  keyVaultReferenceIdentity: string | null;
  location: string;
  tags: Record<string, string>;
  createdAt: number;
}

interface Row extends ResourceRow {
  host_id: string;
  system_principal_id: string | null;
  system_app_id: string | null;
  kv_reference_identity: string | null;
  location: string;
  tags: string;
}
const SELECT = `SELECT a.id, a.tenant_id, a.subscription_id, a.resource_group, a.name, a.host_id, a.system_principal_id,
  p.app_id AS system_app_id, a.kv_reference_identity, a.location, a.tags, a.created_at
  FROM apps a LEFT JOIN principals p ON p.id = a.system_principal_id`;

const fromRow = (r: Row): StoredApp => ({
  rowId: r.id,
  ...placementOf(r),
  hostId: r.host_id,
  systemPrincipalId: r.system_principal_id,
  systemClientId: r.system_principal_id ? r.system_app_id : null,
  keyVaultReferenceIdentity: r.kv_reference_identity,
  location: r.location,
  tags: tagsOf(r.tags),
  createdAt: Number(r.created_at),
});

/** The SQL behind apps (src/management/apps.ts, app-identity.ts); `appRowId` is the row id. */
export const appStore = {
  async findByName(q: Queryable, tenantId: string, nameLower: string): Promise<StoredApp | undefined> {
    const r = await q.get<Row>(`${SELECT} WHERE a.tenant_id = $1 AND a.name_lower = $2`, [
      tenantId,
      nameLower,
    ]);
    return r && fromRow(r);
  },
  async findByRowId(q: Queryable, tenantId: string, appRowId: string): Promise<StoredApp | undefined> {
    const r = await q.get<Row>(`${SELECT} WHERE a.tenant_id = $1 AND a.id = $2`, [tenantId, appRowId]);
    return r && fromRow(r);
  },
  async listByHost(q: Queryable, tenantId: string, hostId: string): Promise<StoredApp[]> {
    const rows = await q.all<Row>(
      `${SELECT} WHERE a.tenant_id = $1 AND a.host_id = $2 ORDER BY a.name_lower`,
      [tenantId, hostId],
    );
    return rows.map(fromRow);
  },
  async listBySubscription(q: Queryable, tenantId: string, subscriptionId: string): Promise<StoredApp[]> {
    const rows = await q.all<Row>(
      `${SELECT} WHERE a.tenant_id = $1 AND a.subscription_id = $2 ORDER BY a.name_lower`,
      [tenantId, subscriptionId],
    );
    return rows.map(fromRow);
  },
  async insert(q: Queryable, a: Omit<StoredApp, 'systemPrincipalId' | 'systemClientId'>): Promise<void> {
    await q.run(
      `INSERT INTO apps (id, tenant_id, subscription_id, resource_group, resource_group_lower, name, name_lower, host_id,
         system_principal_id, kv_reference_identity, settings_sealed, location, tags, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, NULL, $10, $11, $12, $12)`,
      [
        a.rowId,
        ...placementValues(a),
        a.hostId,
        a.keyVaultReferenceIdentity,
        a.location,
        JSON.stringify(a.tags),
        a.createdAt,
      ],
    );
  },
  async setHost(q: Queryable, appRowId: string, hostId: string): Promise<void> {
    await q.run('UPDATE apps SET host_id = $1 WHERE id = $2', [hostId, appRowId]);
  },
  async updateProperties(
    q: Queryable,
    appRowId: string,
    p: Pick<StoredApp, 'tags' | 'location' | 'keyVaultReferenceIdentity'>,
  ): Promise<void> {
    const values = [JSON.stringify(p.tags), p.location, p.keyVaultReferenceIdentity, appRowId];
    await q.run('UPDATE apps SET tags = $1, location = $2, kv_reference_identity = $3 WHERE id = $4', values);
  },
  async touch(q: Queryable, appRowId: string, now: number): Promise<void> {
    await q.run('UPDATE apps SET updated_at = $1 WHERE id = $2', [now, appRowId]);
  },
  async delete(q: Queryable, appRowId: string): Promise<void> {
    await q.run('DELETE FROM apps WHERE id = $1', [appRowId]);
  },
  /** The app's sealed settings (null when it has none). */
  async sealedSettings(q: Queryable, appRowId: string): Promise<Buffer | null | undefined> {
    const r = await q.get<{ settings_sealed: Buffer | null }>(
      'SELECT settings_sealed FROM apps WHERE id = $1',
      [appRowId],
    );
    return r?.settings_sealed;
  },
  async writeSettings(q: Queryable, appRowId: string, sealed: Buffer, now: number): Promise<void> {
    await q.run('UPDATE apps SET settings_sealed = $1, updated_at = $2 WHERE id = $3', [
      sealed,
      now,
      appRowId,
    ]);
  },
  /** Sets (or with null clears) the app's system-assigned identity. */
  async setSystemPrincipal(q: Queryable, appRowId: string, principalId: string | null): Promise<void> {
    if (principalId === null)
      await q.run('UPDATE apps SET system_principal_id = NULL WHERE id = $1', [appRowId]);
    else await q.run('UPDATE apps SET system_principal_id = $1 WHERE id = $2', [principalId, appRowId]);
  },
  async linkIdentity(q: Queryable, appRowId: string, identityRowId: string, now: number): Promise<void> {
    await q.run('INSERT INTO app_identities (app_id, identity_id, created_at) VALUES ($1, $2, $3)', [
      appRowId,
      identityRowId,
      now,
    ]);
  },
  async unlinkIdentity(q: Queryable, appRowId: string, identityRowId: string): Promise<void> {
    await q.run('DELETE FROM app_identities WHERE app_id = $1 AND identity_id = $2', [
      appRowId,
      identityRowId,
    ]);
  },
};
