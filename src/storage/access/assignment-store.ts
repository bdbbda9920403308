import type { Queryable } from '../port.js';

/** A role assignment as stored (migration 0003). */
export interface StoredRoleAssignment {
  id: string;
  tenantId: string;
  principalId: string;
  roleId: string;
  scope: string;
  createdAt: number;
  createdBy: string | null;
}

interface Row {
  id: string;
  tenant_id: string;
  principal_id: string;
  role_id: string;
  scope: string;
  created_at: number;
  created_by: string | null;
}

const fromRow = (r: Row): StoredRoleAssignment => ({
  id: r.id,
  tenantId: r.tenant_id,
  principalId: r.principal_id,
  roleId: r.role_id,
  scope: r.scope,
  createdAt: Number(r.created_at),
  createdBy: r.created_by,
});

/** The SQL behind role assignments (src/access/decision.ts, assignments-service.ts). */
export const assignmentStore = {
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  async listByPrincipal(
    q: Queryable,
    tenantId: string,
    principalId: string,
  ): Promise<StoredRoleAssignment[]> {
    const rows = await q.all<Row>(
      'SELECT * FROM role_assignments WHERE principal_id = $1 AND tenant_id = $2',
      [principalId, tenantId],
    );
    return rows.map(fromRow);
  },
  /** A tenant's assignments (of one principal, if given), oldest first. */
  // duplicate-ok: a store list of the house pattern (optional filter, one statement, row mapping); the SQL differs
  async listByTenant(q: Queryable, tenantId: string, principalId?: string): Promise<StoredRoleAssignment[]> {
    const rows = principalId
      ? await q.all<Row>(
          'SELECT * FROM role_assignments WHERE tenant_id = $1 AND principal_id = $2 ORDER BY created_at, id',
          [tenantId, principalId],
        )
      : await q.all<Row>('SELECT * FROM role_assignments WHERE tenant_id = $1 ORDER BY created_at, id', [
          tenantId,
        ]);
    return rows.map(fromRow);
  },
  /** Every assignment of a tenant, in no particular order. */
  async listAll(q: Queryable, tenantId: string): Promise<StoredRoleAssignment[]> {
    return (await q.all<Row>('SELECT * FROM role_assignments WHERE tenant_id = $1', [tenantId])).map(fromRow);
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  async find(q: Queryable, tenantId: string, id: string): Promise<StoredRoleAssignment | undefined> {
    const r = await q.get<Row>('SELECT * FROM role_assignments WHERE id = $1 AND tenant_id = $2', [
      id,
      tenantId,
    ]);
    return r && fromRow(r);
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  async findSame(
    q: Queryable,
    principalId: string,
    roleId: string,
    scope: string,
  ): Promise<StoredRoleAssignment | undefined> {
    const r = await q.get<Row>(
      'SELECT * FROM role_assignments WHERE principal_id = $1 AND role_id = $2 AND scope = $3',
      [principalId, roleId, scope],
    );
    return r && fromRow(r);
  },
  async insert(q: Queryable, a: StoredRoleAssignment): Promise<void> {
    await q.run(
      'INSERT INTO role_assignments (id, tenant_id, principal_id, role_id, scope, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [a.id, a.tenantId, a.principalId, a.roleId, a.scope, a.createdAt, a.createdBy],
    );
  },
  async delete(q: Queryable, tenantId: string, id: string): Promise<void> {
    await q.run('DELETE FROM role_assignments WHERE id = $1 AND tenant_id = $2', [id, tenantId]);
  },
};
