import { hashPassword } from '../crypto/hashing.js';
import { LatchkeyError } from '../errors/index.js';
import { type CacheStats, cacheStats } from '../lib/cache-stats.js';
import { createChangeCache } from '../lib/change-cache.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { isGuid, newGuid } from '../lib/ids.js';
import { type Principal, type PrincipalKind, principalStore } from '../storage/authority/principal-store.js';
import { refreshTokenStore } from '../storage/authority/refresh-token-store.js';
import { signInSessionStore } from '../storage/authority/sign-in-session-store.js';
import type { Database, Queryable } from '../storage/port.js';

export type { Principal, PrincipalKind } from '../storage/authority/principal-store.js';

export const DISPLAY_NAME_MAX = 120;
export const USER_NAME_RE = /^[A-Za-z0-9._%+-]{1,64}(@[A-Za-z0-9.-]{1,190})?$/;

export function validateDisplayName(name: string): string {
  const n = name.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (n.length < 1 || n.length > DISPLAY_NAME_MAX || /[\u0000-\u001f\u007f]/.test(n)) {
    throw new LatchkeyError(
      'BadParameter',
      `A display name must be 1–${DISPLAY_NAME_MAX} printable characters.`,
    );
  }
  return n;
}

export function validateIdentifierUri(uri: string): string {
  if (uri.length > 200 || !/^(api|https):\/\/[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+$/.test(uri)) {
    throw new LatchkeyError(
      'BadParameter',
      'An application ID URI must be an api:// or https:// URI of at most 200 characters.',
    );
  }
  return uri.replace(/\/+$/, '');
}

export function createPrincipals(deps: {
  db: Database;
  clock: Clock;
  bus: ChangeBus;
  stats?: CacheStats;
  /** Hits and misses of the client cache (`client`). */
  clientStats?: CacheStats;
  /** Whether a URI names a built-in resource (the vault, the management API), which no application may take. */
  builtInResource?: (uri: string) => boolean;
}) {
  const { db, clock, bus } = deps;
  const stats = deps.stats ?? cacheStats();
  // The revocation bound: every node re-reads a principal at least once a second, even if it
  // missed the change notification (docs/deployment.md, "Several nodes").
  const STATE_TTL_MS = 1_000;
  const stateCache = new Map<string, { at: number; principal: Principal | undefined }>();
  // Applications by (tenant, app id) for client authentication at the token endpoint: only
  // enabled ones (a refusal is always decided from the database), dropped at once when this node
  // changes the principal or hears of a change, re-read after a second anyway.
  const clientCache = createChangeCache<Principal>({
    clock,
    inTransaction: () => db.current() !== undefined,
    max: 10_000,
    maxAgeMs: STATE_TTL_MS,
    ...(deps.clientStats ? { stats: deps.clientStats } : {}),
  });
  // Bumped by every drop: a state read under way meanwhile (it may predate the change) answers its
  // own request but is not kept (as the client cache's `mark`/`put`).
  let stateEpoch = 0;
  bus.subscribe('principal', (id) => {
    const key = id.toLowerCase();
    stateEpoch++;
    stateCache.delete(key);
    clientCache.dropWhere((p) => p.id === key);
  });
  bus.onResync(() => {
    stateEpoch++;
    stateCache.clear();
    clientCache.clear();
  });

  return {
    async get(tenantId: string, id: string, q: Queryable = db): Promise<Principal | undefined> {
      if (!isGuid(id)) return undefined;
      return principalStore.findById(q, tenantId, id.toLowerCase());
    },
    /** Any tenant: for token verification, which then checks the token's tenant matches. */
    async getById(id: string): Promise<Principal | undefined> {
      if (!isGuid(id)) return undefined;
      return principalStore.findByIdInAnyTenant(db, id.toLowerCase());
    },
    /**
     * The principal's current state for request authentication, cached for at most
     * one second and dropped at once when this node changes it (or hears of a change).
     * Bounds how long a disabled or deleted principal can act: immediately here,
     * within a second anywhere.
     */
    async current(id: string): Promise<Principal | undefined> {
      const key = id.toLowerCase();
      const hit = stateCache.get(key);
      const now = clock.monotonic(); // a wall-clock step must not keep a disabled principal enabled
      // Only an enabled principal is served from memory: a refusal is always checked against
      // the database, so a principal just created or re-enabled on another node works at once.
      if (hit?.principal?.enabled && now - hit.at < STATE_TTL_MS) {
        stats.hits++;
        return hit.principal;
      }
      stats.misses++;
      const mark = stateEpoch;
      const p = await this.getById(key);
      if (stateCache.size >= 50_000) stateCache.clear();
      // Not a read inside a transaction (its uncommitted row: a rollback publishes nothing).
      if (mark === stateEpoch && db.current() === undefined) stateCache.set(key, { at: now, principal: p });
      return p;
    },
    async byAppId(tenantId: string, appId: string, q: Queryable = db): Promise<Principal | undefined> {
      if (!isGuid(appId)) return undefined;
      return principalStore.findByAppId(q, tenantId, appId.toLowerCase());
    },
    /**
     * The application (or managed identity) a client id names in a tenant, for client
     * authentication: served from memory only while enabled (see `clientCache`), else read.
     * `cached` says whether it came from memory; `fresh` skips the cache.
     */
    async client(
      tenantId: string,
      appId: string,
      fresh = false,
    ): Promise<{ principal: Principal | undefined; cached: boolean }> {
      if (!isGuid(appId)) return { principal: undefined, cached: false };
      const key = `${tenantId}|${appId.toLowerCase()}`;
      const hit = fresh ? undefined : clientCache.get(key);
      if (hit) return { principal: hit, cached: true };
      const mark = clientCache.mark();
      const p = await principalStore.findByAppId(db, tenantId, appId.toLowerCase());
      if (p?.enabled && p.kind !== 'user') clientCache.put(key, p, mark);
      // A re-read (`fresh`, after a refusal) that finds it gone or disabled forgets it here.
      else clientCache.evict(key);
      return { principal: p, cached: false };
    },
    /** Drops this node's cached client entry of a principal (a check against the database failed). */
    forgetClient(id: string): void {
      const key = id.toLowerCase();
      clientCache.dropWhere((p) => p.id === key);
    },
    /** Finds a principal by object id or app id within a tenant. */
    async resolve(tenantId: string, idOrAppId: string, q: Queryable = db): Promise<Principal | undefined> {
      return (await this.get(tenantId, idOrAppId, q)) ?? (await this.byAppId(tenantId, idOrAppId, q));
    },
    async byIdentifierUri(tenantId: string, uri: string): Promise<Principal | undefined> {
      return principalStore.findByIdentifierUri(db, tenantId, uri.replace(/\/+$/, ''));
    },
    async byUserName(
      tenantId: string,
      userName: string,
    ): Promise<{ principal: Principal; passwordHash: string | null } | undefined> {
      if (userName.length > 255) return undefined;
      return principalStore.findByUserName(db, tenantId, userName.toLowerCase());
    },
    async list(tenantId: string, kind?: PrincipalKind): Promise<Principal[]> {
      return principalStore.list(db, tenantId, kind);
    },
    async createServicePrincipal(
      tenantId: string,
      input: {
        displayName: string;
        identifierUri?: string | null;
        kind?: 'servicePrincipal' | 'managedIdentity';
        resourceId?: string | null;
        publicClient?: boolean;
        appId?: string;
      },
      q: Queryable = db,
    ): Promise<Principal> {
      const now = clock.now();
      const uri = input.identifierUri ? validateIdentifierUri(input.identifierUri) : null;
      // A token asked for such a URI is the built-in resource's (it is resolved first): an application
      // holding it would receive vault or management tokens from its clients.
      if (uri && deps.builtInResource?.(uri))
        throw new LatchkeyError(
          'BadParameter',
          'That application ID URI names a built-in resource (the vault or the management API).',
        );
      if (uri && (await principalStore.identifierUriTaken(q, tenantId, uri))) {
        throw new LatchkeyError('Conflict', 'Another application already uses that application ID URI.');
      }
      const p: Principal = {
        id: newGuid(),
        tenantId,
        kind: input.kind ?? 'servicePrincipal',
        appId: input.appId ?? newGuid(),
        displayName: validateDisplayName(input.displayName),
        userName: null,
        identifierUri: uri,
        enabled: true,
        publicClient: input.publicClient ?? false,
        resourceId: input.resourceId ?? null,
        createdAt: now,
        updatedAt: now,
        sessionsValidFrom: 0,
      };
      await principalStore.insert(q, p, null);
      return p;
    },
    async createUser(
      tenantId: string,
      input: { userName: string; displayName: string; password: string },
      q: Queryable = db,
    ) {
      const userName = input.userName.toLowerCase();
      if (!USER_NAME_RE.test(userName)) throw new LatchkeyError('BadParameter', 'Invalid user name.');
      if (input.password.length < 12 || input.password.length > 256) {
        throw new LatchkeyError('BadParameter', 'A password must be 12–256 characters.');
      }
      if (await principalStore.userNameTaken(q, tenantId, userName)) {
        throw new LatchkeyError('Conflict', 'A user with that name already exists.');
      }
      const now = clock.now();
      const p: Principal = {
        id: newGuid(),
        tenantId,
        kind: 'user',
        appId: null,
        displayName: validateDisplayName(input.displayName),
        userName,
        identifierUri: null,
        enabled: true,
        publicClient: false,
        resourceId: null,
        createdAt: now,
        updatedAt: now,
        sessionsValidFrom: 0,
      };
      await principalStore.insert(q, p, await hashPassword(input.password));
      return p;
    },
    /**
     * Ends every sign-in session of a principal (Graph's `revokeSignInSessions`): its refresh
     * tokens and console sessions are deleted, and codes or tokens from an earlier sign-in are
     * refused from now on (`sessionsValidFrom`). For an application, the refresh tokens issued to
     * it as a client go too. Access tokens already issued live until they expire, as in Entra ID.
     */
    async revokeSignInSessions(tenantId: string, id: string, q: Queryable = db): Promise<void> {
      const key = id.toLowerCase();
      const p = await this.get(tenantId, key, q);
      if (!p) throw new LatchkeyError('PrincipalNotFound', 'Principal not found.');
      const now = clock.now();
      await principalStore.invalidateSignInsBefore(q, tenantId, key, now);
      await signInSessionStore.endAllOf(q, key);
      if (p.appId) await refreshTokenStore.destroyIssuedTo(q, tenantId, p.appId);
      bus.publish('principal', key);
    },
    /**
     * In `q`'s transaction: whether no revocation of the principal's sign-ins (a password reset,
     * a disable, `revokeSignInSessions`) came after `since`, holding its row until the commit so
     * that one coming now waits for it (and then ends what it wrote, a console session say).
     */
    signInsValidSince(tenantId: string, id: string, since: number, q: Queryable): Promise<boolean> {
      return principalStore.holdIfSignInsValidSince(q, tenantId, id.toLowerCase(), since);
    },
    /** Replaces a user's password (12–256 characters) and ends the user's sign-in sessions. */
    async setPassword(tenantId: string, id: string, password: string, q: Queryable = db): Promise<void> {
      if (password.length < 12 || password.length > 256) {
        throw new LatchkeyError('BadParameter', 'A password must be 12–256 characters.');
      }
      const hash = await hashPassword(password);
      if (!(await principalStore.setPasswordHash(q, tenantId, id.toLowerCase(), hash, clock.now())))
        throw new LatchkeyError('PrincipalNotFound', 'User not found.');
      await this.revokeSignInSessions(tenantId, id, q);
    },
    /** Enables or disables a principal; disabling ends its sign-in sessions (a later enable does not revive them). */
    async setEnabled(tenantId: string, id: string, enabled: boolean, q: Queryable = db): Promise<Principal> {
      if (!(await principalStore.setEnabled(q, tenantId, id.toLowerCase(), enabled, clock.now())))
        throw new LatchkeyError('PrincipalNotFound', 'Principal not found.');
      if (!enabled) await this.revokeSignInSessions(tenantId, id, q);
      bus.publish('principal', id.toLowerCase());
      return (await this.get(tenantId, id, q))!;
    },
    /** Deletes a principal; its sign-in sessions and codes go with it, and so do the refresh tokens issued to it as a client. */
    async delete(tenantId: string, id: string, q: Queryable = db): Promise<void> {
      const p = await this.get(tenantId, id, q);
      if (p?.appId) await refreshTokenStore.destroyIssuedTo(q, tenantId, p.appId);
      if (!(await principalStore.delete(q, tenantId, id.toLowerCase())))
        throw new LatchkeyError('PrincipalNotFound', 'Principal not found.');
      bus.publish('principal', id.toLowerCase());
    },
  };
}
export type Principals = ReturnType<typeof createPrincipals>;
