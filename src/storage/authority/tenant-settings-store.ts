import type { Queryable } from '../port.js';

/** A tenant's Latchkey-specific settings (migration 0019); a tenant without a row has none set. */
export interface TenantSettings {
  /** The tenant's narrowing of the server's federation issuers; null: the server's list as it is. */
  federationIssuers: string[] | null;
  updatedAt: number;
}

interface Row {
  federation_issuers: string | null;
  updated_at: number;
}

/** A stored list is a JSON array of strings; anything else reads as an empty list (allows nothing). */
const issuersOf = (text: string | null): string[] | null => {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.filter((i): i is string => typeof i === 'string') : [];
  } catch {
    return [];
  }
};

/** The SQL behind tenant settings (src/authority/tenant-issuers.ts). */
export const tenantSettingsStore = {
  async get(q: Queryable, tenantId: string): Promise<TenantSettings | undefined> {
    const r = await q.get<Row>(
      'SELECT federation_issuers, updated_at FROM tenant_settings WHERE tenant_id = $1',
      [tenantId],
    );
    return r && { federationIssuers: issuersOf(r.federation_issuers), updatedAt: Number(r.updated_at) };
  },
  /** Sets the tenant's federation issuers (null: follow the server's list). */
  async setFederationIssuers(
    q: Queryable,
    tenantId: string,
    issuers: readonly string[] | null,
    now: number,
  ): Promise<void> {
    await q.run(
      `INSERT INTO tenant_settings (tenant_id, federation_issuers, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id) DO UPDATE SET federation_issuers = excluded.federation_issuers, updated_at = excluded.updated_at`,
      [tenantId, issuers === null ? null : JSON.stringify(issuers), now],
    );
  },
};
