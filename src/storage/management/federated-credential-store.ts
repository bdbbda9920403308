import type { Queryable } from '../port.js';

/** A federated identity credential as stored (migrations 0015 and 0017). */
export interface StoredFederatedCredential {
  rowId: string;
  tenantId: string;
  /** Row id of the user-assigned identity it belongs to ('' for an application's). */
  identityId: string;
  /** The principal whose client id exchanges tokens: the identity's, or the application itself. */
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
  identity_id: string | null;
  principal_id: string;
  name: string;
  issuer: string;
  subject: string;
  audiences: string;
  description: string;
  created_at: number;
  updated_at: number;
}

/**
 * Who owns credentials: a user-assigned identity (table `federated_credentials`, by identity row
 * id) or an application registration (table `app_federated_credentials`, by its principal id).
 */
export type FederatedCredentialOwner =
  | { kind: 'identity'; identityId: string }
  | { kind: 'application'; principalId: string };

const TABLES = {
  identity: { table: 'federated_credentials', owner: 'identity_id', identity: 'identity_id' },
  application: { table: 'app_federated_credentials', owner: 'principal_id', identity: 'NULL' },
} as const;

const BASE =
  'id, tenant_id, principal_id, name, issuer, subject, audiences, description, created_at, updated_at';
const select = (o: FederatedCredentialOwner) => {
  const t = TABLES[o.kind];
  return `SELECT ${BASE}, ${t.identity} AS identity_id FROM ${t.table}`;
};
const ownerId = (o: FederatedCredentialOwner) => (o.kind === 'identity' ? o.identityId : o.principalId);

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
  identityId: r.identity_id ?? '',
  principalId: r.principal_id,
  name: r.name,
  issuer: r.issuer,
  subject: r.subject,
  audiences: audiencesOf(r.audiences),
  description: r.description,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

type Fields = {
  issuer: string;
  subject: string;
  audiences: string[];
  description: string;
  updatedAt: number;
};

/** The SQL of one owner kind's credentials. */
const ownedBy = (o: FederatedCredentialOwner) => {
  const t = TABLES[o.kind];
  return {
    /** A credential by lower-cased name. */
    async find(q: Queryable, nameLower: string): Promise<StoredFederatedCredential | undefined> {
      const r = await q.get<Row>(`${select(o)} WHERE ${t.owner} = $1 AND name_lower = $2`, [
        ownerId(o),
        nameLower,
      ]);
      return r && fromRow(r);
    },
    /** A credential by its row id (Graph addresses them by id). */
    async findById(q: Queryable, rowId: string): Promise<StoredFederatedCredential | undefined> {
      const r = await q.get<Row>(`${select(o)} WHERE ${t.owner} = $1 AND id = $2`, [ownerId(o), rowId]);
      return r && fromRow(r);
    },
    /** The owner's credentials, by name. */
    async list(q: Queryable): Promise<StoredFederatedCredential[]> {
      const rows = await q.all<Row>(`${select(o)} WHERE ${t.owner} = $1 ORDER BY name_lower`, [ownerId(o)]);
      return rows.map(fromRow);
    },
    async count(q: Queryable): Promise<number> {
      const r = await q.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t.table} WHERE ${t.owner} = $1`, [
        ownerId(o),
      ]);
      return Number(r?.n ?? 0);
    },
    async insert(q: Queryable, c: Omit<StoredFederatedCredential, 'updatedAt'>): Promise<void> {
      const values = [
        c.rowId,
        c.tenantId,
        c.principalId,
        c.name,
        c.issuer,
        c.subject,
        JSON.stringify(c.audiences),
        c.description,
        c.createdAt,
        c.name.toLowerCase(),
      ];
      if (o.kind === 'identity')
        await q.run(
          `INSERT INTO federated_credentials (${BASE}, name_lower, identity_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)`,
          [...values, o.identityId],
        );
      else
        await q.run(
          `INSERT INTO app_federated_credentials (${BASE}, name_lower)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)`,
          values,
        );
    },
    async update(q: Queryable, rowId: string, c: Fields): Promise<void> {
      await q.run(
        `UPDATE ${t.table} SET issuer = $1, subject = $2, audiences = $3, description = $4, updated_at = $5 WHERE id = $6 AND ${t.owner} = $7`,
        [c.issuer, c.subject, JSON.stringify(c.audiences), c.description, c.updatedAt, rowId, ownerId(o)],
      );
    },
    /** True if a row was deleted. */
    async delete(q: Queryable, rowId: string): Promise<boolean> {
      const r = await q.run(`DELETE FROM ${t.table} WHERE id = $1 AND ${t.owner} = $2`, [rowId, ownerId(o)]);
      return r.changes > 0;
    },
  };
};
export type OwnedFederatedCredentialStore = ReturnType<typeof ownedBy>;

/** The SQL behind federated identity credentials (src/management/federated-credentials.ts, src/authority/federation.ts). */
export const federatedCredentialStore = {
  ownedBy,
  /** An identity's credential by lower-cased name. */
  find: (q: Queryable, identityId: string, nameLower: string) =>
    ownedBy({ kind: 'identity', identityId }).find(q, nameLower),
  /** An identity's credentials, by name. */
  listByIdentity: (q: Queryable, identityId: string) => ownedBy({ kind: 'identity', identityId }).list(q),
  countByIdentity: (q: Queryable, identityId: string) => ownedBy({ kind: 'identity', identityId }).count(q),
  insert: (q: Queryable, c: Omit<StoredFederatedCredential, 'updatedAt'>) =>
    ownedBy({ kind: 'identity', identityId: c.identityId }).insert(q, c),
  /**
   * The credentials a principal (by its id) may exchange external tokens with: a user-assigned
   * identity's (by its principal) and an application's own, read at every exchange (no cache).
   */
  async listByPrincipal(
    q: Queryable,
    tenantId: string,
    principalId: string,
  ): Promise<StoredFederatedCredential[]> {
    const rows = await q.all<Row>(
      `SELECT ${BASE}, identity_id FROM federated_credentials WHERE tenant_id = $1 AND principal_id = $2
       UNION ALL
       SELECT ${BASE}, NULL AS identity_id FROM app_federated_credentials WHERE tenant_id = $1 AND principal_id = $2
       ORDER BY name`,
      [tenantId, principalId],
    );
    return rows.map(fromRow);
  },
};
