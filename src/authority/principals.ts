import { hashPassword } from '../crypto/hashing.js';
import { LatchkeyError } from '../errors/index.js';
import { type CacheStats, cacheStats } from '../lib/cache-stats.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { isGuid, newGuid } from '../lib/ids.js';
import type { Database, Queryable } from '../storage/port.js';

export type PrincipalKind = 'user' | 'servicePrincipal' | 'managedIdentity';

export interface Principal {
  id: string;
  tenantId: string;
  kind: PrincipalKind;
  appId: string | null;
  displayName: string;
  userName: string | null;
  identifierUri: string | null;
  enabled: boolean;
  publicClient: boolean;
  /** For managed identities: the ARM id of the resource (system-assigned) or of the identity (user-assigned). */
  resourceId: string | null;
  createdAt: number;
  updatedAt: number;
  /** Sign-ins before this time (ms) redeem nothing: refresh tokens, codes (see `revokeSignInSessions`). */
  sessionsValidFrom: number;
}

interface PrincipalRow {
  id: string;
  tenant_id: string;
  kind: PrincipalKind;
  app_id: string | null;
  display_name: string;
  user_name: string | null;
  password_hash: string | null;
  identifier_uri: string | null;
  enabled: number;
  public_client: number;
  resource_id: string | null;
  created_at: number;
  updated_at: number;
  sessions_valid_from: number;
}

const fromRow = (r: PrincipalRow): Principal => ({
  id: r.id,
  tenantId: r.tenant_id,
  kind: r.kind,
  appId: r.app_id,
  displayName: r.display_name,
  userName: r.user_name,
  identifierUri: r.identifier_uri,
  enabled: Number(r.enabled) === 1,
  publicClient: Number(r.public_client) === 1,
  resourceId: r.resource_id,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  sessionsValidFrom: Number(r.sessions_valid_from),
});

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
  /** Whether a URI names a built-in resource (the vault, the management API), which no application may take. */
  builtInResource?: (uri: string) => boolean;
}) {
  const { db, clock, bus } = deps;
  const stats = deps.stats ?? cacheStats();
  // The revocation bound: every node re-reads a principal at least once a second, even if it
  // missed the change notification (docs/deployment.md, "Several nodes").
  const STATE_TTL_MS = 1_000;
  const stateCache = new Map<string, { at: number; principal: Principal | undefined }>();
  bus.subscribe('principal', (id) => stateCache.delete(id.toLowerCase()));
  bus.onResync(() => stateCache.clear());
  const insert = async (p: Principal, passwordHash: string | null, q: Queryable) => {
    await q.run(
      `INSERT INTO principals (id, tenant_id, kind, app_id, display_name, user_name, password_hash, identifier_uri,
         enabled, public_client, resource_id, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        p.id,
        p.tenantId,
        p.kind,
        p.appId,
        p.displayName,
        p.userName,
        passwordHash,
        p.identifierUri,
        p.enabled ? 1 : 0,
        p.publicClient ? 1 : 0,
        p.resourceId,
        p.createdAt,
        p.updatedAt,
      ],
    );
  };

  return {
    async get(tenantId: string, id: string, q: Queryable = db): Promise<Principal | undefined> {
      if (!isGuid(id)) return undefined;
      const r = await q.get<PrincipalRow>('SELECT * FROM principals WHERE id = $1 AND tenant_id = $2', [
        id.toLowerCase(),
        tenantId,
      ]);
      return r && fromRow(r);
    },
    /** Any tenant: for token verification, which then checks the token's tenant matches. */
    async getById(id: string): Promise<Principal | undefined> {
      if (!isGuid(id)) return undefined;
      const r = await db.get<PrincipalRow>('SELECT * FROM principals WHERE id = $1', [id.toLowerCase()]);
      return r && fromRow(r);
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
      const now = clock.now();
      // Only an enabled principal is served from memory: a refusal is always checked against
      // the database, so a principal just created or re-enabled on another node works at once.
      if (hit?.principal?.enabled && now - hit.at < STATE_TTL_MS) {
        stats.hits++;
        return hit.principal;
      }
      stats.misses++;
      const p = await this.getById(key);
      if (stateCache.size >= 50_000) stateCache.clear();
      stateCache.set(key, { at: now, principal: p });
      return p;
    },
    async byAppId(tenantId: string, appId: string, q: Queryable = db): Promise<Principal | undefined> {
      if (!isGuid(appId)) return undefined;
      const r = await q.get<PrincipalRow>('SELECT * FROM principals WHERE tenant_id = $1 AND app_id = $2', [
        tenantId,
        appId.toLowerCase(),
      ]);
      return r && fromRow(r);
    },
    /** Finds a principal by object id or app id within a tenant. */
    async resolve(tenantId: string, idOrAppId: string, q: Queryable = db): Promise<Principal | undefined> {
      return (await this.get(tenantId, idOrAppId, q)) ?? (await this.byAppId(tenantId, idOrAppId, q));
    },
    async byIdentifierUri(tenantId: string, uri: string): Promise<Principal | undefined> {
      const r = await db.get<PrincipalRow>(
        'SELECT * FROM principals WHERE tenant_id = $1 AND identifier_uri = $2',
        [tenantId, uri.replace(/\/+$/, '')],
      );
      return r && fromRow(r);
    },
    async byUserName(
      tenantId: string,
      userName: string,
    ): Promise<{ principal: Principal; passwordHash: string | null } | undefined> {
      if (userName.length > 255) return undefined;
      const r = await db.get<PrincipalRow>(
        'SELECT * FROM principals WHERE tenant_id = $1 AND user_name = $2',
        [tenantId, userName.toLowerCase()],
      );
      return r && { principal: fromRow(r), passwordHash: r.password_hash };
    },
    async list(tenantId: string, kind?: PrincipalKind): Promise<Principal[]> {
      const rows = kind
        ? await db.all<PrincipalRow>(
            'SELECT * FROM principals WHERE tenant_id = $1 AND kind = $2 ORDER BY display_name, id',
            [tenantId, kind],
          )
        : await db.all<PrincipalRow>(
            'SELECT * FROM principals WHERE tenant_id = $1 ORDER BY display_name, id',
            [tenantId],
          );
      return rows.map(fromRow);
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
      if (
        uri &&
        (await q.get('SELECT id FROM principals WHERE tenant_id = $1 AND identifier_uri = $2', [
          tenantId,
          uri,
        ]))
      ) {
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
      await insert(p, null, q);
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
      if (
        await q.get('SELECT id FROM principals WHERE tenant_id = $1 AND user_name = $2', [tenantId, userName])
      ) {
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
      await insert(p, await hashPassword(input.password), q);
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
      await q.run(
        'UPDATE principals SET sessions_valid_from = CASE WHEN sessions_valid_from < $1 THEN $1 ELSE sessions_valid_from END WHERE id = $2 AND tenant_id = $3',
        [now, key, tenantId],
      );
      await q.run('DELETE FROM refresh_tokens WHERE principal_id = $1', [key]);
      await q.run('DELETE FROM console_sessions WHERE principal_id = $1', [key]);
      if (p.appId)
        await q.run('DELETE FROM refresh_tokens WHERE tenant_id = $1 AND client_id = $2', [
          tenantId,
          p.appId,
        ]);
      bus.publish('principal', key);
    },
    /** Replaces a user's password (12–256 characters) and ends the user's sign-in sessions. */
    async setPassword(tenantId: string, id: string, password: string, q: Queryable = db): Promise<void> {
      if (password.length < 12 || password.length > 256) {
        throw new LatchkeyError('BadParameter', 'A password must be 12–256 characters.');
      }
      const r = await q.run(
        "UPDATE principals SET password_hash = $1, updated_at = $2 WHERE id = $3 AND tenant_id = $4 AND kind = 'user'",
        [await hashPassword(password), clock.now(), id.toLowerCase(), tenantId],
      );
      if (r.changes === 0) throw new LatchkeyError('PrincipalNotFound', 'User not found.');
      await this.revokeSignInSessions(tenantId, id, q);
    },
    /** Enables or disables a principal; disabling ends its sign-in sessions (a later enable does not revive them). */
    async setEnabled(tenantId: string, id: string, enabled: boolean, q: Queryable = db): Promise<Principal> {
      const r = await q.run(
        'UPDATE principals SET enabled = $1, updated_at = $2 WHERE id = $3 AND tenant_id = $4',
        [enabled ? 1 : 0, clock.now(), id.toLowerCase(), tenantId],
      );
      if (r.changes === 0) throw new LatchkeyError('PrincipalNotFound', 'Principal not found.');
      if (!enabled) await this.revokeSignInSessions(tenantId, id, q);
      bus.publish('principal', id.toLowerCase());
      return (await this.get(tenantId, id, q))!;
    },
    /** Deletes a principal; its sign-in sessions and codes go with it, and so do the refresh tokens issued to it as a client. */
    async delete(tenantId: string, id: string, q: Queryable = db): Promise<void> {
      const p = await this.get(tenantId, id, q);
      if (p?.appId)
        await q.run('DELETE FROM refresh_tokens WHERE tenant_id = $1 AND client_id = $2', [
          tenantId,
          p.appId,
        ]);
      const r = await q.run('DELETE FROM principals WHERE id = $1 AND tenant_id = $2', [
        id.toLowerCase(),
        tenantId,
      ]);
      if (r.changes === 0) throw new LatchkeyError('PrincipalNotFound', 'Principal not found.');
      bus.publish('principal', id.toLowerCase());
    },
  };
}
export type Principals = ReturnType<typeof createPrincipals>;
