import type { Queryable } from '../port.js';

/** A federated identity credential as stored (migration 0015). */
export interface StoredFederatedCredential {
  rowId: string;
  tenantId: string;
  /** Row id of the user-assigned identity it belongs to. */
  identityId: string;
  /** The identity's principal (whose client id exchanges tokens). */
  principalId: string;
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
  description: string;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  id: string;
  tenant_id: string;
  identity_id: string;
  principal_id: string;
  name: string;
  issuer: string;
  subject: string;
  audiences: string;
  description: string;
  created_at: number;
  updated_at: number;
}

const COLUMNS =
  'id, tenant_id, identity_id, principal_id, name, issuer, subject, audiences, description, created_at, updated_at';

/** Stored audiences are a JSON array of strings; anything else reads as none (matches nothing). */
const audiencesOf = (text: string): string[] => {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.filter((a): a is string => typeof a === 'string') : [];
  } catch {
    return [];
  }
};

const fromRow = (r: Row): StoredFederatedCredential => ({
  rowId: r.id,
  tenantId: r.tenant_id,
  identityId: r.identity_id,
  principalId: r.principal_id,
  name: r.name,
  issuer: r.issuer,
  subject: r.subject,
  audiences: audiencesOf(r.audiences),
  description: r.description,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

/** The SQL behind federated identity credentials (src/management/federated-credentials.ts, src/authority/federation.ts). */
export const federatedCredentialStore = {
  /** An identity's credential by lower-cased name. */
  async find(
    q: Queryable,
    identityId: string,
    nameLower: string,
  ): Promise<StoredFederatedCredential | undefined> {
    const r = await q.get<Row>(
      `SELECT ${COLUMNS} FROM federated_credentials WHERE identity_id = $1 AND name_lower = $2`,
      [identityId, nameLower],
    );
    return r && fromRow(r);
  },
  /** An identity's credentials, by name. */
  async listByIdentity(q: Queryable, identityId: string): Promise<StoredFederatedCredential[]> {
    const rows = await q.all<Row>(
      `SELECT ${COLUMNS} FROM federated_credentials WHERE identity_id = $1 ORDER BY name_lower`,
      [identityId],
    );
    return rows.map(fromRow);
  },
  /** The credentials a principal (by its id) may exchange external tokens with. */
  async listByPrincipal(
    q: Queryable,
    tenantId: string,
    principalId: string,
  ): Promise<StoredFederatedCredential[]> {
    const rows = await q.all<Row>(
      `SELECT ${COLUMNS} FROM federated_credentials WHERE tenant_id = $1 AND principal_id = $2 ORDER BY name_lower`,
      [tenantId, principalId],
    );
    return rows.map(fromRow);
  },
  async countByIdentity(q: Queryable, identityId: string): Promise<number> {
    const r = await q.get<{ n: number }>(
      'SELECT COUNT(*) AS n FROM federated_credentials WHERE identity_id = $1',
      [identityId],
    );
    return Number(r?.n ?? 0);
  },
  async insert(q: Queryable, c: Omit<StoredFederatedCredential, 'updatedAt'>): Promise<void> {
    await q.run(
      `INSERT INTO federated_credentials (${COLUMNS}, name_lower)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)`,
      [
        c.rowId,
        c.tenantId,
        c.identityId,
        c.principalId,
        c.name,
        c.issuer,
        c.subject,
        JSON.stringify(c.audiences),
        c.description,
        c.createdAt,
        c.name.toLowerCase(),
      ],
    );
  },
  async update(
    q: Queryable,
    rowId: string,
    c: { issuer: string; subject: string; audiences: string[]; description: string; updatedAt: number },
  ): Promise<void> {
    await q.run(
      'UPDATE federated_credentials SET issuer = $1, subject = $2, audiences = $3, description = $4, updated_at = $5 WHERE id = $6',
      [c.issuer, c.subject, JSON.stringify(c.audiences), c.description, c.updatedAt, rowId],
    );
  },
  /** True if a row was deleted. */
  async delete(q: Queryable, rowId: string): Promise<boolean> {
    const r = await q.run('DELETE FROM federated_credentials WHERE id = $1', [rowId]);
    return r.changes > 0;
  },
};
