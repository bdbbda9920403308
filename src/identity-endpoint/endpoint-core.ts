import type { Clock } from '../lib/clock.js';
import { describeError } from '../lib/https-client.js';
import { KeyVaultReferenceError, parseKeyVaultReference, referenceUrl } from '../lib/kv-references.js';
import type { HostManifest, PlacedApp, ServedIdentity } from '../management/host-agent.js';
import type { ControlPlane } from './control-plane.js';
import type { CredentialRoller } from './credential-roller.js';
import { EndpointError, type Selector } from './protocols.js';
import { type Session, type SessionRegistry, SessionStoreError } from './sessions.js';
import type { TokenCache } from './token-cache.js';

const trimSlash = (r: string) => (r.endsWith('/') ? r.replace(/\/+$/, '') : r);

/** A start refused because an app setting could not be resolved; names the setting, never its value. */
export class SettingError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`app setting '${setting}': ${message}`);
    this.name = 'SettingError';
  }
}

export interface Logger {
  warn(msg: string, err?: unknown): void;
}

/**
 * What the endpoint knows and decides, apart from HTTP: the apps placed on
 * this host and their identities (the manifest, refreshed periodically and at
 * once after `invalidate`), which identity a request may have, tokens, and
 * sessions with their resolved settings.
 */
export function createEndpointCore(deps: {
  clock: Clock;
  controlPlane: ControlPlane;
  roller: CredentialRoller;
  cache: TokenCache;
  sessions: SessionRegistry;
  refreshMs: number;
  log: Logger;
}) {
  const { clock, controlPlane: cp, roller, cache, sessions, log } = deps;
  let manifest: HostManifest | undefined;
  let appsByName = new Map<string, PlacedApp>();
  let appsByRowId = new Map<string, PlacedApp>();
  // On the monotonic clock: a backwards wall-clock step must not hold the manifest for an hour.
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let wanted = 1;
  let have = 0;
  let refreshing: Promise<void> | undefined;

  const apply = (m: HostManifest) => {
    const served = new Set(m.apps.flatMap((a) => a.identities.map((i) => i.principalId)));
    for (const key of roller.known()) {
      if (key === 'host' || served.has(key)) continue;
      cache.drop(key);
      roller.forget(key);
    }
    if (manifest) {
      for (const a of manifest.apps)
        for (const i of a.identities) if (!served.has(i.principalId)) cache.drop(i.principalId);
    }
    manifest = m;
    appsByName = new Map(m.apps.map((a) => [a.name.toLowerCase(), a]));
    appsByRowId = new Map(m.apps.flatMap((a) => (a.rowId ? [[a.rowId, a] as const] : [])));
    // A session serves the app it was started for, not a later one of the same name: the sessions
    // of an app that left this host (deleted, or moved) end, and `latchkey run` stops its command.
    const ended = sessions.endWhere((s) => placed(s) === undefined);
    if (ended > 0) log.warn(`identity endpoint: ended ${ended} session(s) of apps no longer on this host`);
    // A session of a version 1 file is bound to the app of its name as this host has it now, at
    // the first look at the host's apps after the start (not at its next token request, which
    // may come after that app was deleted and another made under its name).
    for (const s of sessions.list()) {
      const app = s.appRowId === null ? appsByName.get(s.appKey) : undefined;
      if (app?.rowId) sessions.bind(s, app.rowId);
    }
  };
  /**
   * The app a session serves, as the manifest has it: by the row id it was started for (a
   * session without one, from a version 1 session file, by its name until `bind`).
   */
  const placed = (session: Session): PlacedApp | undefined =>
    session.appRowId !== null ? appsByRowId.get(session.appRowId) : appsByName.get(session.appKey);

  const refresh = (): Promise<void> => {
    refreshing ??= (async () => {
      const version = wanted;
      const m = await cp.manifest();
      fetchedAt = clock.monotonic();
      have = Math.max(have, version);
      apply(m);
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };

  /** The manifest to decide with: refreshed first when invalidated, in the background when old. */
  const current = async (): Promise<HostManifest> => {
    for (let i = 0; i < 3 && (have < wanted || !manifest); i++) {
      try {
        await refresh();
      } catch (e) {
        log.warn('identity endpoint: could not refresh the apps on this host', e);
        break;
      }
    }
    if (!manifest)
      throw new EndpointError(503, 'service_unavailable', 'The identity endpoint cannot reach Latchkey yet.');
    if (clock.monotonic() - fetchedAt > deps.refreshMs && !refreshing)
      refresh().catch((e) => log.warn('identity endpoint: background refresh failed', e));
    return manifest;
  };

  const appOf = async (session: Session): Promise<PlacedApp> => {
    const m = await current();
    const app = m === manifest ? placed(session) : undefined;
    if (!app)
      throw new EndpointError(
        400,
        'invalid_request',
        `The app '${session.app}' is no longer on this host (deleted or moved).`,
      );
    if (session.appRowId === null && app.rowId) sessions.bind(session, app.rowId);
    return app;
  };

  const select = (app: PlacedApp, selector: Selector): ServedIdentity => {
    if (!selector) {
      const sys = app.identities.find((i) => i.type === 'SystemAssigned');
      if (!sys)
        throw new EndpointError(
          400,
          'invalid_request',
          'The app has no system-assigned identity: select a user-assigned one (client_id, object_id or mi_res_id).',
        );
      return sys;
    }
    const v = selector.value.toLowerCase();
    const found = app.identities.find((i) =>
      selector.by === 'clientId'
        ? i.clientId === v
        : selector.by === 'objectId'
          ? i.principalId === v
          : i.resourceId.toLowerCase() === v.replace(/\/+$/, ''),
    );
    if (!found) throw new EndpointError(400, 'invalid_request', 'Identity not found');
    return found;
  };

  const tokenFor = async (identity: ServedIdentity, resource: string) => {
    try {
      return await cache.get(identity.principalId, identity.clientId, trimSlash(resource));
    } catch (e) {
      const u = e as { status?: number; code?: string; message?: string };
      if (typeof u.status === 'number' && u.status >= 400 && u.status < 500) {
        throw new EndpointError(
          400,
          u.code ?? 'invalid_request',
          String(u.message ?? 'token request refused'),
        );
      }
      log.warn('identity endpoint: token request failed', e);
      throw new EndpointError(503, 'service_unavailable', 'The authority could not be reached; retry later.');
    }
  };

  const resolveSettings = async (app: PlacedApp, m: HostManifest, settings: Record<string, string>) => {
    const out: Record<string, string> = {};
    await Promise.all(
      Object.entries(settings).map(async ([name, value]) => {
        let ref: ReturnType<typeof parseKeyVaultReference>;
        let url: string;
        try {
          ref = parseKeyVaultReference(value);
          if (!ref) {
            out[name] = value;
            return;
          }
          url = referenceUrl(ref, m.vaultUrlTemplate);
        } catch (e) {
          throw new SettingError(
            name,
            `malformed Key Vault reference (${e instanceof KeyVaultReferenceError ? e.message : 'unreadable'})`,
          );
        }
        const identity = app.keyVaultReferenceIdentity;
        if (!identity)
          throw new SettingError(
            name,
            'a Key Vault reference needs an app identity (enable one, or set keyVaultReferenceIdentity)',
          );
        let token: string;
        try {
          token = (await tokenFor(identity, m.vaultResource)).accessToken;
        } catch (e) {
          throw new SettingError(name, `no token for the app's identity: ${(e as Error).message}`);
        }
        const res = await cp.getWithToken(`${url}?api-version=7.5`, token).catch((e: Error) => {
          throw new SettingError(name, `the vault could not be reached (${e.message})`);
        });
        const v = (res.body as { value?: unknown } | undefined)?.value;
        if (res.status !== 200 || typeof v !== 'string')
          throw new SettingError(
            name,
            `the Key Vault reference to secret '${ref.secretName}' in vault '${ref.vaultName}' could not be resolved: ${describeError(res)}`,
          );
        out[name] = v;
      }),
    );
    return out;
  };

  return {
    current,
    refresh,
    /** Something changed (an app or principal): decide with a fresh manifest from the next request on. */
    invalidate() {
      wanted++;
    },
    /**
     * The answer from memory when everything is known and cached (no promise,
     * no I/O); undefined sends the caller to `token`, which may wait.
     */
    cachedToken(session: Session, selector: Selector, resource: string) {
      if (!manifest || have < wanted) return undefined;
      if (clock.monotonic() - fetchedAt > deps.refreshMs && !refreshing)
        refresh().catch((e) => log.warn('identity endpoint: background refresh failed', e));
      const app = placed(session);
      // A session not yet bound to its app's row id takes the slow path once (appOf binds it).
      if (!app || (session.appRowId === null && app.rowId)) return undefined;
      let identity: ServedIdentity;
      try {
        identity = select(app, selector);
      } catch {
        return undefined;
      }
      const token = cache.peek(identity.principalId, trimSlash(resource));
      return token && { token, identity };
    },
    /** The token a session's request asks for, or an EndpointError. */
    async token(session: Session, selector: Selector, resource: string) {
      const app = await appOf(session);
      const identity = select(app, selector);
      const t = await tokenFor(identity, resource);
      return { token: t, identity };
    },
    /** Registers a `latchkey run` session: the app must be on this host; its settings come back resolved. */
    async createSession(appName: string, pid: number | null) {
      wanted++; // the app may have been created a moment ago
      const m = await current();
      const app = m.apps.find((a) => a.name.toLowerCase() === appName.toLowerCase());
      if (!app)
        throw new EndpointError(
          404,
          'not_found',
          `No app named '${appName.slice(0, 64)}' is placed on this host.`,
        );
      let settings: Record<string, string>;
      try {
        settings = await cp.appSettings(app.name);
      } catch (e) {
        throw new EndpointError(
          502,
          'upstream_error',
          `Could not read the app's settings: ${(e as Error).message}`,
        );
      }
      const env = await resolveSettings(app, m, settings);
      try {
        const created = sessions.create(app.name, pid, clock.now(), app.rowId ?? null);
        return { ...created, app, env };
      } catch (e) {
        if (!(e instanceof SessionStoreError)) throw e;
        if (e.code !== 'too_many') log.warn('identity endpoint: a session could not be recorded', e);
        throw new EndpointError(
          503,
          'service_unavailable',
          e.code === 'too_many'
            ? 'Too many sessions on this identity endpoint; end some workloads and retry.'
            : 'The session could not be recorded in the identity endpoint’s state dir; retry later.',
        );
      }
    },
  };
}
export type EndpointCore = ReturnType<typeof createEndpointCore>;
