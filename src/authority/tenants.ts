import { LatchkeyError } from '../errors/index.js';
import type { CacheStats } from '../lib/cache-stats.js';
import { createChangeCache } from '../lib/change-cache.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
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

export function createTenants(deps: { db: Database; clock: Clock; bus?: ChangeBus; stats?: CacheStats }) {
  const { db, clock, bus } = deps;
  // Tenants found by an authority path segment (GUID, domain, `adfs`), for the token endpoint and
  // every other lookup outside a transaction. A tenant row is never updated or deleted; only found
  // tenants are kept (a tenant created on another node is found at once), a `tenant` change (a new
  // tenant, which may become the default) or a relay resync empties it, and entries are re-read
  // after a minute anyway.
  const cache = createChangeCache<Tenant>({
    clock,
    inTransaction: () => db.current() !== undefined,
    max: 1_000,
    maxAgeMs: 60_000,
    ...(deps.stats ? { stats: deps.stats } : {}),
  });
  bus?.subscribe('tenant', () => cache.clear());
  bus?.onResync(() => cache.clear());
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
      const cached = q === db ? cache.get(key) : undefined;
      if (cached) return cached;
      const mark = cache.mark();
      const t =
        key === ADFS_ALIAS
          ? await this.default(q)
          : isGuid(key)
            ? await tenantStore.findById(q, key)
            : await tenantStore.findByDomain(q, key);
      if (t && q === db) cache.put(key, t, mark);
      return t;
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
      bus?.publish('tenant', t.id);
      return t;
    },
  };
}
export type Tenants = ReturnType<typeof createTenants>;
