import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rootCertificates } from 'node:tls';
import { type Clock, systemClock } from '../lib/clock.js';
import { createHttpsClient } from '../lib/https-client.js';
import { createControlChannel } from './control-channel.js';
import { createControlPlane, type IssuedToken } from './control-plane.js';
import { createCredentialRoller, DEFAULT_ROLL_POLICY, type RollPolicy } from './credential-roller.js';
import { createEndpointCore, type Logger, SettingError } from './endpoint-core.js';
import { isLoopback, readBody, send, sendJsonText } from './http-helpers.js';
import { EndpointError, parseTokenRequest, route, tokenBody } from './protocols.js';
import { createEndpointLimiter, DEFAULT_RATE_LIMIT, type RateLimit } from './rate-limit.js';
import { createSessionRegistry, type SessionRegistryOptions } from './sessions.js';
import { type HostState, openStateStore } from './state-store.js';
import { createTokenCache, type TokenCacheOptions } from './token-cache.js';

export { isLoopback } from './http-helpers.js';

/** The sessions of running workloads, in the state dir (0600, digests of their secrets only). */
export const SESSIONS_FILE = 'sessions.json';

/** How long the endpoint keeps parsed token requests (see `parsedRequests`), ms. */
export const PARSED_TTL_MS = 10_000;

export interface IdentityEndpointOptions {
  /** The host store (0700): keys, control secret, endpoint.json. */
  stateDir: string;
  /** Who this endpoint is (default: `host.json` in the state dir, written at enrolment). */
  host?: HostState;
  /** A loopback address (127.0.0.1 by default); anything else is refused. */
  bindHost?: string;
  port: number;
  /** CA certificate (PEM) to trust for the Latchkey server, and its file (handed to workloads by `latchkey run`). */
  ca?: string;
  caFile?: string;
  clock?: Clock;
  rateLimit?: Partial<RateLimit>;
  roll?: Partial<RollPolicy>;
  tokenCache?: Partial<TokenCacheOptions>;
  /** How often the list of apps on this host is refreshed (ms; default 15 s). */
  refreshMs?: number;
  /** Registers the host's certificate when it has no valid one (`latchkey up` does this in-process). */
  bootstrapHostCertificate?(certPem: string): Promise<string>;
  managementResource?: string;
  /** Session limits and, for tests, the process probe (the file, host and clock come from above). */
  sessions?: Pick<SessionRegistryOptions, 'max' | 'unboundMs' | 'processes'>;
  log?: Logger;
}

export interface IdentityEndpoint {
  url: string;
  port: number;
  host: HostState;
  /** Apps or identities changed: decide with fresh data from the next request on. */
  invalidate(): void;
  /** Registers a session for an app (what `latchkey run` does over the control channel). */
  createSession(
    app: string,
    pid?: number | null,
  ): Promise<{ sessionId: string; identityHeader: string; env: Record<string, string> }>;
  deleteSession(id: string): boolean;
  roller: ReturnType<typeof createCredentialRoller>;
  /** Sessions, cached tokens, and parsed requests kept (see `parsedRequests`). */
  stats(): { sessions: number; cachedTokens: number; parsedRequests: number };
  close(): Promise<void>;
}

/**
 * The managed-identity endpoint (App Service, IMDS and Cloud Shell protocols)
 * for the apps placed on one host. Serves `latchkey up` and `latchkey agent`
 * alike. Plain HTTP on loopback only; refuses requests without the protocol's
 * header, with `X-Forwarded-For`, or with a non-loopback Host (DNS
 * rebinding); 429 past its rate limit. Authenticates to Latchkey with a
 * certificate it rolls itself; workloads never see it.
 */
export async function startIdentityEndpoint(o: IdentityEndpointOptions): Promise<IdentityEndpoint> {
  const bindHost = o.bindHost ?? '127.0.0.1';
  if (!isLoopback(bindHost))
    throw new Error(
      `refusing to bind the identity endpoint to ${bindHost}: it hands out tokens to whoever reaches it; bind to a loopback address (127.0.0.1 or ::1)`,
    );
  const clock = o.clock ?? systemClock;
  const log: Logger = o.log ?? { warn: () => {} };
  const store = openStateStore(o.stateDir);
  const host = o.host ?? store.host();
  if (!host) throw new Error(`no host enrolled in ${o.stateDir}: run \`latchkey agent --enroll\` first`);
  // Sessions outlive a restart of the endpoint: kept (as digests) in the 0700 state dir. A file
  // that cannot be trusted (corrupt, another owner's, open to others) stops the start-up here.
  const sessions = createSessionRegistry({
    file: store.pathOf(SESSIONS_FILE),
    hostId: host.hostId,
    clock,
    ...(o.sessions ?? {}),
    onWriteError: (e) => log.warn('identity endpoint: could not update the session file (will retry)', e),
  });
  if (sessions.loaded.dropped > 0)
    log.warn(
      `identity endpoint: ${sessions.loaded.dropped} ended session(s) dropped from ${SESSIONS_FILE} (their process is gone, they expired, or they were another host's)`,
    );
  const client = createHttpsClient({ ca: o.ca });
  const policy = { ...DEFAULT_ROLL_POLICY, ...o.roll };

  // Assigned after the roller, which it serves (and which registers certificates through it).
  let cp: ReturnType<typeof createControlPlane>;
  const roller = createCredentialRoller({
    store,
    clock,
    policy,
    async register(key, pem) {
      if (key !== 'host') return cp.addIdentityCertificate(key, pem);
      if (roller.peek('host')) return cp.addHostCertificate(pem);
      if (o.bootstrapHostCertificate) return o.bootstrapHostCertificate(pem);
      throw new Error('the host credential has expired: enroll this host again (latchkey agent --enroll)');
    },
    async remove(key, keyId) {
      if (key === 'host') await cp.deleteHostCertificate(keyId);
      else await cp.deleteIdentityCertificate(key, keyId);
    },
    onError: (key, e) => log.warn(`identity endpoint: credential roll for ${key} failed`, e),
  });
  cp = createControlPlane({
    host,
    http: client.request,
    clock,
    roller,
    ...(o.managementResource ? { managementResource: o.managementResource } : {}),
  });
  const cache = createTokenCache({
    clock,
    fetch: (principalId, clientId, resource) => cp.identityToken(principalId, clientId, resource),
    ...(o.tokenCache ? { options: o.tokenCache } : {}),
    onError: (e) => log.warn('identity endpoint: background token refresh failed', e),
  });
  const core = createEndpointCore({
    clock,
    controlPlane: cp,
    roller,
    cache,
    sessions,
    refreshMs: o.refreshMs ?? 15_000,
    log,
  });
  const limiter = createEndpointLimiter({ ...DEFAULT_RATE_LIMIT, ...o.rateLimit }, clock);
  // For tools that take one CA file instead of adding to their roots (curl, Python requests,
  // OpenSSL's SSL_CERT_FILE): the system roots plus the given CA, so public TLS keeps working.
  const caBundle = o.ca
    ? store.writeText('ca-bundle.pem', `${[...rootCertificates, o.ca.trim()].join('\n')}\n`)
    : null;

  if (!roller.peek('host'))
    await roller.roll('host').catch((e) => {
      client.close();
      throw e;
    });

  let url = '';
  const createSession = async (app: string, pid: number | null = null) => {
    const r = await core.createSession(app, pid);
    return { sessionId: r.id, identityHeader: r.header, env: r.env };
  };

  const control = createControlChannel({
    secret: store.controlSecret(),
    host,
    sessions,
    core,
    url: () => url,
    caFile: o.caFile ?? null,
    caBundle,
  });

  const fail = (res: http.ServerResponse, e: unknown) => {
    if (res.headersSent) return;
    if (e instanceof EndpointError) return send(res, e.status, e.body, e.headers);
    if (e instanceof SettingError)
      return send(res, 400, { error: 'setting_unresolvable', error_description: e.message });
    log.warn('identity endpoint: unexpected error', e);
    send(res, 500, { error: 'server_error', error_description: 'An internal error occurred.' });
  };

  // Serialized answers of cached tokens, per identity and resource, for the current second
  // (`expires_in` changes every second): a cache hit costs no JSON.stringify.
  const answers = new Map<string, { token: string; sec: number; text: string }>();
  const answerOf = (token: IssuedToken, resource: string, clientId: string): string => {
    const key = `${clientId}\n${resource}`;
    const sec = Math.floor(clock.now() / 1000);
    const a = answers.get(key);
    if (a && a.sec === sec && a.token === token.accessToken) return a.text;
    const text = JSON.stringify(tokenBody(token, resource, clientId, sec * 1000));
    if (answers.size >= 10_000) answers.clear();
    answers.set(key, { token: token.accessToken, sec, text });
    return text;
  };

  // Parsed token requests without a body (GET; other methods are refused by the parse) by
  // everything their parse reads: the method, the request target and the two headers the
  // protocols look at (`X-IDENTITY-HEADER`, `Metadata`). A workload asks with the same URL and
  // header again and again, and the parse (path, query, checks: ~2.5 µs of ~40 per cached token,
  // docs/performance.md) is a function of these alone. Kept only once the request names a live
  // session (so no caller's guesses are kept), short keys only, at most 256 (cleared when full),
  // and all dropped every PARSED_TTL_MS: a key holds a session's secret, which must not outlive its
  // session in memory for long.
  type Parsed = Readonly<ReturnType<typeof parseTokenRequest>>;
  const parsedRequests = new Map<string, Parsed>();
  let parsedSince = clock.monotonic();
  const parseQueryRequest = (
    method: string,
    target: string,
    pathname: string,
    q: number,
    headers: http.IncomingHttpHeaders,
  ): { t: Parsed; key: string | undefined } => {
    const idHeader = headers['x-identity-header'];
    const metadata = headers.metadata;
    const key =
      typeof idHeader !== 'object' && typeof metadata !== 'object'
        ? `${method} ${target}\n${idHeader ?? '\u0000'}\n${metadata ?? '\u0000'}`
        : undefined;
    const now = clock.monotonic();
    if (now - parsedSince >= PARSED_TTL_MS) {
      parsedRequests.clear();
      parsedSince = now;
    }
    const hit = key === undefined ? undefined : parsedRequests.get(key);
    if (hit) return { t: hit, key: undefined };
    const r = route(pathname);
    if (!r) throw new EndpointError(404, 'not_found', 'No such endpoint.');
    const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
    const t = Object.freeze(parseTokenRequest({ method, route: r, query, headers }));
    return { t, key: key !== undefined && key.length <= 2048 ? key : undefined };
  };
  /** Keeps a parse whose request named a live session (see above). */
  const rememberParse = (key: string, t: Parsed) => {
    if (parsedRequests.size >= 256) parsedRequests.clear();
    parsedRequests.set(key, t);
  };

  /** The session a request names: by the App Service header or the IMDS path prefix. */
  const sessionOf = (t: ReturnType<typeof parseTokenRequest>) => {
    if (!t.secret)
      throw new EndpointError(
        400,
        'invalid_request',
        'No app session: start the workload with `latchkey run --app NAME -- ...` (IMDS calls go to the AZURE_POD_IDENTITY_AUTHORITY_HOST it sets).',
      );
    const session =
      t.secret.kind === 'header' ? sessions.byHeader(t.secret.value) : sessions.byId(t.secret.value);
    if (!session)
      throw new EndpointError(401, 'unauthorized', 'Unknown or expired identity header or session.');
    return session;
  };

  /** Cloud Shell: a POST with a form body (read first, then the same steps). */
  const postRequest = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    r: NonNullable<ReturnType<typeof route>>,
    query: URLSearchParams,
  ) => {
    const form = new URLSearchParams(await readBody(req, 8 * 1024));
    const t = parseTokenRequest({ method: 'POST', route: r, query, headers: req.headers, form });
    const { token, identity } = await core.token(sessionOf(t), t.selector, t.resource);
    send(res, 200, tokenBody(token, t.resource, identity.clientId, clock.now()));
  };

  /**
   * Request handling, synchronous as far as it can go: checks, routing,
   * parsing, the session, and — when the token is cached — the answer, with
   * no promise on the way (this is the hot path). Only cache misses, refreshes
   * and the control channel go asynchronous.
   */
  const release = () => limiter.release();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let holding = false;
    try {
      if (req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined)
        throw new EndpointError(
          403,
          'forbidden',
          'Requests relayed by a proxy (X-Forwarded-For) are refused.',
        );
      const hostHeader = req.headers.host;
      if (hostHeader && !isLoopback(hostHeader.replace(/:\d+$/, '')))
        throw new EndpointError(403, 'forbidden', 'The Host header must name a loopback address.');
      const target = req.url ?? '/';
      if (!target.startsWith('/') || target.length > 4096)
        throw new EndpointError(400, 'invalid_request', 'Malformed request target.');
      const q = target.indexOf('?');
      let pathname = q < 0 ? target : target.slice(0, q);
      if (pathname.includes('%') || pathname.includes('/.') || pathname.includes('//'))
        pathname = new URL(pathname, 'http://127.0.0.1').pathname;
      if (pathname.startsWith('/control/')) {
        control(req, res, pathname).catch((e) => fail(res, e));
        return;
      }
      const wait = limiter.acquire();
      if (wait > 0)
        throw new EndpointError(429, 'too_many_requests', 'Too many requests to the identity endpoint.', {
          'retry-after': String(wait),
        });
      holding = true;
      const method = req.method ?? 'GET';
      if (method === 'POST') {
        const r = route(pathname);
        if (!r) throw new EndpointError(404, 'not_found', 'No such endpoint.');
        const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
        holding = false;
        postRequest(req, res, r, query)
          .catch((e) => fail(res, e))
          .finally(release);
        return;
      }
      const { t, key } = parseQueryRequest(method, target, pathname, q, req.headers);
      const session = sessionOf(t);
      if (key !== undefined) rememberParse(key, t);
      const hit = core.cachedToken(session, t.selector, t.resource);
      if (hit) {
        sendJsonText(res, 200, answerOf(hit.token, t.resource, hit.identity.clientId));
        return;
      }
      holding = false;
      core
        .token(session, t.selector, t.resource)
        .then(({ token, identity }) =>
          send(res, 200, tokenBody(token, t.resource, identity.clientId, clock.now())),
        )
        .catch((e) => fail(res, e))
        .finally(release);
    } catch (e) {
      fail(res, e);
    } finally {
      if (holding) limiter.release();
    }
  };

  const server = http.createServer(
    { maxHeaderSize: 16 * 1024, requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 },
    onRequest,
  );
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      client.close();
      reject(e);
    };
    server.once('error', onError);
    server.listen(o.port, bindHost, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  if (!isLoopback(addr.address)) {
    server.close();
    client.close();
    throw new Error(`the identity endpoint bound to a non-loopback address (${addr.address})`);
  }
  // The first manifest is fetched in the background (the first request waits for it if it must):
  // a host's start-up does not wait for a round trip to Latchkey. Only once the port is ours: a
  // start-up that fails to bind closes the server, and a refresh in flight would log ECONNREFUSED.
  // A start-up that fails later (say `up --hosts-file` unwritable) closes the endpoint with this
  // refresh in flight: its failure then is the shutdown's, not worth a log line.
  // It starts on the next turn of the event loop, not in this one: the caller announces ready in
  // this turn, and the refresh's first token (its signing library, ~50 ms to load) comes after that
  // (test/up.lazy-modules.test.ts).
  let closed = false;
  setImmediate(() => {
    if (closed) return;
    core.refresh().catch((e) => {
      if (!closed) log.warn('identity endpoint: first refresh failed', e);
    });
  });
  url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  store.saveEndpoint({
    url,
    pid: process.pid,
    hostName: host.hostName,
    ...(o.caFile ? { caFile: o.caFile } : {}),
  });

  // Maintenance (rolls, retired certificates, new identities' certificates, dead sessions):
  // every 10 s, more often when test policies make certificates short-lived.
  const tickMs = Math.max(
    200,
    Math.min(10_000, Math.floor(Math.min(policy.renewAheadMs, policy.overlapMs) / 4)),
  );
  let ticking = false;
  let lastSweep = clock.monotonic();
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    (async () => {
      const m = await core.current().catch(() => undefined);
      const keys = ['host', ...(m?.apps.flatMap((a) => a.identities.map((i) => i.principalId)) ?? [])];
      await roller.tick(keys.filter((k) => k === 'host' || roller.peek(k)));
      // Identities newly placed on this host get their certificate ahead of their first token
      // (a few per round, so a host with many new apps does not stall).
      for (const k of keys.filter((x) => x !== 'host' && !roller.peek(x)).slice(0, 4))
        await roller.current(k).catch((e) => log.warn(`identity endpoint: no certificate yet for ${k}`, e));
      if (clock.monotonic() - lastSweep > 30_000) {
        sessions.sweep();
        lastSweep = clock.monotonic();
      } else sessions.flush();
    })()
      .catch((e) => log.warn('identity endpoint: maintenance failed', e))
      .finally(() => {
        ticking = false;
      });
  }, tickMs);
  timer.unref();

  return {
    url,
    port: addr.port,
    host,
    invalidate: () => core.invalidate(),
    createSession,
    deleteSession: (id) => sessions.delete(id),
    roller,
    stats: () => ({ sessions: sessions.size, cachedTokens: cache.size, parsedRequests: parsedRequests.size }),
    async close() {
      closed = true;
      clearInterval(timer);
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      client.close();
      sessions.flush();
      if (store.endpoint()?.pid === process.pid) store.clearEndpoint();
    },
  };
}

/** What `latchkey up` lets a caller tune (tests force rolls, lift limits and step its clock with it). */
export type IdentityEndpointTuning = Partial<
  Pick<IdentityEndpointOptions, 'rateLimit' | 'roll' | 'tokenCache' | 'refreshMs' | 'bindHost' | 'clock'>
>;
