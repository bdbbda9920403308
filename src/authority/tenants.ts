import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid, newGuid } from '../lib/ids.js';
import type { Database, Queryable } from '../storage/port.js';

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

export const DOMAIN_RE =
  /^(?=.{3,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** The authority path segment that names the default tenant (see `find`). */
export const ADFS_ALIAS = 'adfs';
/** Authority path segments that never name a tenant by domain. */
const RESERVED_SEGMENTS = new Set([ADFS_ALIAS, 'common', 'organizations', 'consumers', 'oidc']);

export function createTenants(deps: { db: Database; clock: Clock }) {
  const { db, clock } = deps;
  return {
    /** The installation's default tenant (the one bootstrap created), else the oldest. */
    async default(q: Queryable = db): Promise<Tenant | undefined> {
      const row = await q.get<{ value: string }>("SELECT value FROM meta WHERE key = 'default_tenant'");
      if (row) return this.find(row.value, q);
      const first = await q.get<TenantRow>('SELECT * FROM tenants ORDER BY created_at, id LIMIT 1');
      return first && fromRow(first);
    },
    /**
     * Finds a tenant by GUID or domain name (case-insensitive). `adfs` names the default tenant:
     * an authority URL ending in `/adfs` is the one form MSAL Python (and so the Azure CLI)
     * accepts from a host other than Microsoft's without asking login.microsoftonline.com first.
     */
    async find(idOrDomain: string, q: Queryable = db): Promise<Tenant | undefined> {
      if (idOrDomain.length > 253) return undefined;
      const key = idOrDomain.toLowerCase();
      if (key === ADFS_ALIAS) return this.default(q);
      const row = isGuid(key)
        ? await q.get<TenantRow>('SELECT * FROM tenants WHERE id = $1', [key])
        : await q.get<TenantRow>('SELECT * FROM tenants WHERE domain = $1', [key]);
      return row && fromRow(row);
    },
    async require(idOrDomain: string): Promise<Tenant> {
      const t = await this.find(idOrDomain);
      if (!t) throw new LatchkeyError('NotFound', 'Tenant not found.');
      return t;
    },
    async list(): Promise<Tenant[]> {
      return (await db.all<TenantRow>('SELECT * FROM tenants ORDER BY created_at')).map(fromRow);
    },
    async create(input: { displayName: string; domain?: string | null; id?: string }, q: Queryable = db) {
      const domain = input.domain ? input.domain.toLowerCase() : null;
      if (domain !== null && (!DOMAIN_RE.test(domain) || isGuid(domain))) {
        throw new LatchkeyError(
          'BadParameter',
          'The tenant domain must be a DNS name such as contoso.example.',
        );
      }
      if (domain !== null && RESERVED_SEGMENTS.has(domain)) {
        throw new LatchkeyError('BadParameter', `The tenant domain '${domain}' is reserved.`);
      }
      if (domain && (await q.get('SELECT id FROM tenants WHERE domain = $1', [domain]))) {
        throw new LatchkeyError('Conflict', `A tenant with the domain ${domain} already exists.`);
      }
      const t: Tenant = {
        id: input.id ?? newGuid(),
        domain,
        displayName: input.displayName,
        createdAt: clock.now(),
      };
      await q.run('INSERT INTO tenants (id, domain, display_name, created_at) VALUES ($1, $2, $3, $4)', [
        t.id,
        t.domain,
        t.displayName,
        t.createdAt,
      ]);
      return t;
    },
  };
}
export type Tenants = ReturnType<typeof createTenants>;
