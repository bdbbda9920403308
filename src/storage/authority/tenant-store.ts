import type { Queryable } from '../port.js';

/** A directory tenant as the authority hands it out (times in epoch ms). */
export interface Tenant {
  id: string;
  domain: string | null;
  displayName: string;
  createdAt: number;
}

interface TenantRow {
  id: string;
  domain: string | null;
  display_name: string;
  created_at: number;
}

const fromRow = (r: TenantRow): Tenant => ({
  id: r.id,
  domain: r.domain,
  displayName: r.display_name,
  createdAt: Number(r.created_at),
});

/** The SQL behind tenants (migration 0001): `tenants`, and the default tenant's id in `meta`. */
export const tenantStore = {
  /** The id bootstrap recorded as the installation's default tenant, if any. */
  async defaultTenantId(q: Queryable): Promise<string | undefined> {
    const row = await q.get<{ value: string }>("SELECT value FROM meta WHERE key = 'default_tenant'");
    return row?.value;
  },
  /** The first tenant created (ties broken by id). */
  async oldest(q: Queryable): Promise<Tenant | undefined> {
    const r = await q.get<TenantRow>('SELECT * FROM tenants ORDER BY created_at, id LIMIT 1');
    return r && fromRow(r);
  },
  /** `id` in lower case. */
  async findById(q: Queryable, id: string): Promise<Tenant | undefined> {
    const r = await q.get<TenantRow>('SELECT * FROM tenants WHERE id = $1', [id]);
    return r && fromRow(r);
  },
  /** `domain` in lower case. */
  async findByDomain(q: Queryable, domain: string): Promise<Tenant | undefined> {
    const r = await q.get<TenantRow>('SELECT * FROM tenants WHERE domain = $1', [domain]);
    return r && fromRow(r);
  },
  async domainTaken(q: Queryable, domain: string): Promise<boolean> {
    return (await q.get('SELECT id FROM tenants WHERE domain = $1', [domain])) !== undefined;
  },
  async list(q: Queryable): Promise<Tenant[]> {
    return (await q.all<TenantRow>('SELECT * FROM tenants ORDER BY created_at')).map(fromRow);
  },
  async insert(q: Queryable, t: Tenant): Promise<void> {
    await q.run('INSERT INTO tenants (id, domain, display_name, created_at) VALUES ($1, $2, $3, $4)', [
      t.id,
      t.domain,
      t.displayName,
      t.createdAt,
    ]);
  },
};
