import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type { EndpointCore } from './endpoint-core.js';
import { readBody, send } from './http-helpers.js';
import { APP_SERVICE_PATH, EndpointError, IMDS_PATH } from './protocols.js';
import type { SessionRegistry } from './sessions.js';
import type { HostState } from './state-store.js';

const sha = (s: string) => createHash('sha256').update(s).digest();

/**
 * The control channel on the endpoint's port (`/control/...`), for
 * `latchkey run`: register a session for an app (its settings come back
 * resolved), end it, see the status. Every call presents the secret from the
 * 0600 `control.secret` in the host store (compared in constant time).
 */
export function createControlChannel(deps: {
  secret: string;
  host: HostState;
  sessions: SessionRegistry;
  core: EndpointCore;
  url: () => string;
  caFile: string | null;
  caBundle: string | null;
}) {
  const secretHash = sha(deps.secret);
  return async (req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> => {
    const auth = req.headers.authorization ?? '';
    const given = sha(auth.startsWith('Bearer ') ? auth.slice(7) : '');
    if (!timingSafeEqual(given, secretHash))
      return send(res, 401, {
        error: 'unauthorized',
        error_description: 'The control secret is missing or wrong.',
      });
    if (req.method === 'POST' && path === '/control/sessions') {
      let body: { app?: unknown; pid?: unknown };
      try {
        body = JSON.parse((await readBody(req, 16 * 1024)) || '{}') as typeof body;
      } catch {
        throw new EndpointError(400, 'invalid_request', 'The body must be JSON.');
      }
      if (typeof body.app !== 'string' || body.app.length < 1 || body.app.length > 64)
        throw new EndpointError(400, 'invalid_request', 'app (the app name) is required.');
      const pid = Number.isInteger(body.pid) && (body.pid as number) > 0 ? (body.pid as number) : null;
      const r = await deps.core.createSession(body.app, pid);
      const s = { sessionId: r.id, identityHeader: r.header, env: r.env };
      return send(res, 201, {
        sessionId: s.sessionId,
        identityHeader: s.identityHeader,
        identityEndpoint: `${deps.url()}${APP_SERVICE_PATH}`,
        imdsAuthorityHost: `${deps.url()}/s/${s.sessionId}`,
        msiEndpoint: `${deps.url()}/s/${s.sessionId}${IMDS_PATH}`,
        caFile: deps.caFile,
        caBundle: deps.caBundle,
        env: s.env,
      });
    }
    const m = /^\/control\/sessions\/([0-9a-f]{32})$/.exec(path);
    if (req.method === 'DELETE' && m) return send(res, deps.sessions.delete(m[1]!) ? 204 : 404, undefined);
    // `latchkey run` asks this now and then: a 404 means its workload's token requests are refused.
    if (req.method === 'GET' && m) {
      const s = deps.sessions.byId(m[1]!);
      if (!s)
        return send(res, 404, {
          error: 'unknown_session',
          error_description: 'This identity endpoint has no such session (ended, or its state was lost).',
        });
      return send(res, 200, {
        app: s.app,
        createdAt: new Date(s.createdAt).toISOString(),
        expiresAt: s.expiresAt === null ? null : new Date(s.expiresAt).toISOString(),
      });
    }
    if (req.method === 'GET' && path === '/control/status') {
      const man = await deps.core.current().catch(() => undefined);
      return send(res, 200, {
        hostId: deps.host.hostId,
        hostName: deps.host.hostName,
        sessions: deps.sessions.size,
        apps: man?.apps.map((a) => a.name) ?? [],
      });
    }
    return send(res, 404, { error: 'not_found', error_description: 'No such control operation.' });
  };
}
