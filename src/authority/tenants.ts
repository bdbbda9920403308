import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid, newGuid } from '../lib/ids.js';
import { type Tenant, tenantStore } from '../storage/authority/tenant-store.js';
import type { Database, Queryable } from '../storage/port.js';

export type { Tenant } from '../storage/authority/tenant-store.js';

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
      const id = await tenantStore.defaultTenantId(q);
      if (id !== undefined) return this.find(id, q);
      return tenantStore.oldest(q);
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
      return isGuid(key) ? tenantStore.findById(q, key) : tenantStore.findByDomain(q, key);
    },
    async require(idOrDomain: string): Promise<Tenant> {
      const t = await this.find(idOrDomain);
      if (!t) throw new LatchkeyError('NotFound', 'Tenant not found.');
      return t;
    },
    async list(): Promise<Tenant[]> {
      return tenantStore.list(db);
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
      if (domain && (await tenantStore.domainTaken(q, domain))) {
        throw new LatchkeyError('Conflict', `A tenant with the domain ${domain} already exists.`);
      }
      const t: Tenant = {
        id: input.id ?? newGuid(),
        domain,
        displayName: input.displayName,
        createdAt: clock.now(),
      };
      await tenantStore.insert(q, t);
      return t;
    },
  };
}
export type Tenants = ReturnType<typeof createTenants>;
