import type { CacheStats } from '../lib/cache-stats.js';
import { createChangeCache } from '../lib/change-cache.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { tenantSettingsStore } from '../storage/authority/tenant-settings-store.js';
import type { Database, Queryable } from '../storage/port.js';

/** Why an issuer is not allowed for a tenant: not on the server's list, or not on the tenant's. */
export type IssuerRefusal = 'server' | 'tenant';

/**
 * The federation issuers a tenant may trust: the server's allow-list (`federation.allowedIssuers`),
 * narrowed by the tenant's own list when its admin has set one (docs/federation.md, "Per-tenant
 * issuer allow-list"). A tenant can only narrow: an issuer the server does not allow is never
 * allowed, whatever the tenant's list says.
 *
 * Asked at every credential write and every exchange. The tenant lists are cached per tenant;
 * a change publishes `tenantSettings` on the change bus, so this node drops the entry at once and
 * the others when the relay delivers it; entries are re-read after a second anyway (the bound of
 * every security-relevant cache), so a narrowed list refuses exchanges on every node.
 */
export function createTenantIssuers(deps: {
  db: Database;
  clock: Clock;
  bus?: ChangeBus;
  serverIssuers: readonly string[];
  stats?: CacheStats;
}) {
  const { db, bus } = deps;
  const server = new Set(deps.serverIssuers);
  const cache = createChangeCache<{ list: readonly string[] | null }>({
    clock: deps.clock,
    inTransaction: () => db.current() !== undefined,
    max: 1_000,
    maxAgeMs: 1_000,
    ...(deps.stats ? { stats: deps.stats } : {}),
  });
  bus?.subscribe('tenantSettings', (id) => cache.drop(id.toLowerCase()));
  bus?.onResync(() => cache.clear());

  /** The tenant's own list (null: none set), from memory unless read inside a transaction. */
  async function tenantList(tenantId: string, q: Queryable = db): Promise<readonly string[] | null> {
    const key = tenantId.toLowerCase();
    const hit = q === db ? cache.get(key) : undefined;
    if (hit) return hit.list;
    const mark = cache.mark();
    const list = (await tenantSettingsStore.get(q, key))?.federationIssuers ?? null;
    if (q === db) cache.put(key, { list }, mark);
    return list;
  }

  return {
    /** The server's allow-list, as configured. */
    serverIssuers: (): string[] => [...server],
    /** Whether the server allows the issuer at all (any tenant could name it). */
    serverAllows: (issuer: string): boolean => server.has(issuer),
    tenantList,
    /** Undefined when the tenant may name `issuer`; else which list refuses it. */
    async refusal(tenantId: string, issuer: string, q: Queryable = db): Promise<IssuerRefusal | undefined> {
      if (!server.has(issuer)) return 'server';
      const list = await tenantList(tenantId, q);
      return list === null || list.includes(issuer) ? undefined : 'tenant';
    },
    /** The issuers the tenant may name now: the server's, narrowed by the tenant's list. */
    async effective(tenantId: string, q: Queryable = db): Promise<string[]> {
      const list = await tenantList(tenantId, q);
      return list === null ? [...server] : list.filter((i) => server.has(i));
    },
    /** Stores the tenant's list in the caller's transaction; call `changed` once it committed. */
    async set(q: Queryable, tenantId: string, list: readonly string[] | null, now: number): Promise<void> {
      await tenantSettingsStore.setFederationIssuers(q, tenantId.toLowerCase(), list, now);
    },
    /** After a committed change: drop the tenant's list here and on every other node. */
    changed(tenantId: string): void {
      const key = tenantId.toLowerCase();
      cache.drop(key);
      bus?.publish('tenantSettings', key);
    },
  };
}
export type TenantIssuers = ReturnType<typeof createTenantIssuers>;
