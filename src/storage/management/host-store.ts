import type { Queryable } from '../port.js';
import { placementOf, type ResourceRow, type StoredPlacement } from './resource-row.js';

/** A host as stored (migration 0005), with its principal's client id. */
export interface StoredHost extends StoredPlacement {
  id: string;
  /** The host's own principal: the endpoint authenticates as it (certificate) to the management API. */
  principalId: string;
  /** The principal's app id ('' if it has none). */
  clientId: string;
  builtIn: boolean;
  createdAt: number;
}

interface Row extends ResourceRow {
  principal_id: string;
  app_id: string | null;
  built_in: number;
}

const SELECT = `SELECT h.id, h.tenant_id, h.subscription_id, h.resource_group, h.name, h.principal_id, p.app_id,
  h.built_in, h.created_at FROM hosts h JOIN principals p ON p.id = h.principal_id`;

const fromRow = (r: Row): StoredHost => ({
  id: r.id,
  ...placementOf(r),
  principalId: r.principal_id,
  clientId: r.app_id ?? '',
  builtIn: Number(r.built_in) === 1,
  createdAt: Number(r.created_at),
});

/** The SQL behind hosts (src/management/hosts.ts, host-agent.ts). */
export const hostStore = {
  async insert(q: Queryable, h: Omit<StoredHost, 'clientId'>): Promise<void> {
    await q.run(
      `INSERT INTO hosts (id, tenant_id, subscription_id, resource_group, name, name_lower, principal_id, built_in,
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
      [
        h.id,
        h.tenantId,
        h.subscriptionId,
        h.resourceGroup,
        h.name,
        h.name.toLowerCase(),
        h.principalId,
        h.builtIn ? 1 : 0,
        h.createdAt,
      ],
    );
  },
  async findById(q: Queryable, tenantId: string, id: string): Promise<StoredHost | undefined> {
    const r = await q.get<Row>(`${SELECT} WHERE h.id = $1 AND h.tenant_id = $2`, [id, tenantId]);
    return r && fromRow(r);
  },
  async findByName(q: Queryable, tenantId: string, nameLower: string): Promise<StoredHost | undefined> {
    const r = await q.get<Row>(`${SELECT} WHERE h.tenant_id = $1 AND h.name_lower = $2`, [
      tenantId,
      nameLower,
    ]);
    return r && fromRow(r);
  },
  /** The tenant's built-in host (`local`), if made. */
  async findBuiltIn(q: Queryable, tenantId: string): Promise<StoredHost | undefined> {
    const r = await q.get<Row>(`${SELECT} WHERE h.tenant_id = $1 AND h.built_in = 1`, [tenantId]);
    return r && fromRow(r);
  },
  async listByTenant(q: Queryable, tenantId: string): Promise<StoredHost[]> {
    return (await q.all<Row>(`${SELECT} WHERE h.tenant_id = $1 ORDER BY h.name_lower`, [tenantId])).map(
      fromRow,
    );
  },
  async touch(q: Queryable, id: string, now: number): Promise<void> {
    await q.run('UPDATE hosts SET updated_at = $1 WHERE id = $2', [now, id]);
  },
  /** How many apps are placed on the host. */
  async countApps(q: Queryable, id: string): Promise<number> {
    const placed = await q.get<{ n: number }>('SELECT COUNT(*) AS n FROM apps WHERE host_id = $1', [id]);
    return Number(placed?.n ?? 0);
  },
  async delete(q: Queryable, id: string): Promise<void> {
    await q.run('DELETE FROM hosts WHERE id = $1', [id]);
  },
  /**
   * Removes a principal's expired certificates that a host registered (its tag as the
   * credential's display name): they go before a new one is added.
   */
  async deleteExpiredHostCredentials(
    q: Queryable,
    principalId: string,
    tag: string,
    now: number,
  ): Promise<void> {
    await q.run('DELETE FROM credentials WHERE principal_id = $1 AND display_name = $2 AND end_at <= $3', [
      principalId,
      tag,
      now,
    ]);
  },
  /**
   * Removes the certificates a host registered (its tag) for a principal that no app on the
   * host has as its system identity or an attached user identity any more.
   */
  async deleteUnservedCredentials(
    q: Queryable,
    hostId: string,
    principalId: string,
    tag: string,
  ): Promise<void> {
    await q.run(
      `DELETE FROM credentials WHERE principal_id = $1 AND display_name = $2 AND NOT EXISTS (
         SELECT 1 FROM apps a WHERE a.host_id = $3 AND (a.system_principal_id = $1 OR EXISTS (
           SELECT 1 FROM app_identities ai JOIN user_identities u ON u.id = ai.identity_id
           WHERE ai.app_id = a.id AND u.principal_id = $1)))`,
      [principalId, tag, hostId],
    );
  },
};
