import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  AUTHORIZE_PARAMS,
  type AuthorizeParams,
  createAuthorizeEndpoint,
  type ValidAuthorization,
} from '../../authority/authorize.js';
import { signInErrorPage, signInPage } from '../../console/pages/signin.js';
import {
  addCookie,
  hostCookie,
  mac,
  readCookie,
  safeEqual,
  sameOrigin,
  setPageHeaders,
} from '../../console/security.js';
import type { Services } from '../../server/services.js';
import { toLatchkeyError } from '../errors.js';
import { clientIp, issuerBaseOf } from '../request.js';

/** The pre-sign-in cookie the form's CSRF token is bound to (login CSRF defence). */
const SIGNIN_COOKIE = '__Host-latchkey-signin';
const COOKIE_RE = /^[A-Za-z0-9_-]{43}$/;

/**
 * The OAuth 2.0 authorization endpoint (authorization code + PKCE) with its
 * sign-in form: `GET|POST /{tenant}/oauth2/v2.0/authorize` and the v1 alias
 * `/{tenant}/oauth2/authorize` (which also takes `resource`). Answers are HTML
 * pages under the console's CSP; errors before the redirect URI is proven are
 * shown on the page, later ones go to the client as RFC 6749 §4.1.2.1 redirects.
 */
export async function authorizeRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const s = opts.services;
  const endpoint = createAuthorizeEndpoint({
    clock: s.clock,
    tenants: s.tenants,
    principals: s.principals,
    throttle: s.throttle,
    codes: s.authorizationCodes,
    tokenEndpoint: s.tokenEndpoint,
  });
  const csrfKey = s.config.rootKey.derive('authorize-csrf');

  const page = (reply: FastifyReply, status: number, body: { value: string }) =>
    reply.code(status).type('text/html; charset=utf-8').send(body.value);

  app.setErrorHandler((err, req, reply) => {
    const e = toLatchkeyError(err, req, true);
    for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
    setPageHeaders(reply);
    return page(
      reply,
      e.status,
      signInErrorPage(e.status >= 500 ? 'An internal error occurred. Try again later.' : e.message),
    );
  });

  /** The request's parameters; each must appear at most once (RFC 6749 §3.1). */
  const paramsOf = (req: FastifyRequest, source: unknown): AuthorizeParams | string => {
    const raw = (source ?? {}) as Record<string, unknown>;
    const out: Record<string, string> = {};
    for (const k of AUTHORIZE_PARAMS) {
      const v = raw[k];
      if (v === undefined) continue;
      if (typeof v !== 'string') return `The parameter '${k}' must appear exactly once.`;
      out[k] = v;
    }
    // v1: `resource` instead of a scope.
    if (req.url.includes('/oauth2/authorize') && out.scope === undefined && typeof raw.resource === 'string')
      out.scope = `openid ${raw.resource}/.default`;
    return out;
  };

  /** The CSRF token of the form: bound to the browser's sign-in cookie and to this very request. */
  const csrfFor = (cookie: string, r: ValidAuthorization) =>
    mac(csrfKey, cookie, r.tenant.id, r.client.clientId, r.redirectUri, r.codeChallenge, r.state ?? '');

  const hiddenFields = (p: AuthorizeParams): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const k of AUTHORIZE_PARAMS) if (p[k] !== undefined && k !== 'login_hint') out[k] = p[k]!;
    return out;
  };

  const showForm = (
    req: FastifyRequest,
    reply: FastifyReply,
    r: ValidAuthorization,
    p: AuthorizeParams,
    opts: { status?: number; error?: string; userName?: string } = {},
  ) => {
    let cookie = readCookie(req, SIGNIN_COOKIE);
    if (!cookie || !COOKIE_RE.test(cookie)) {
      cookie = randomBytes(32).toString('base64url');
      addCookie(reply, hostCookie(SIGNIN_COOKIE, cookie, 3600));
    }
    return page(
      reply,
      opts.status ?? 200,
      signInPage({
        action: req.url.split('?')[0]!,
        clientName: r.client.displayName,
        tenant: r.tenant.domain ?? r.tenant.id,
        hidden: hiddenFields(p),
        csrf: csrfFor(cookie, r),
        userName: opts.userName ?? r.loginHint ?? '',
        error: opts.error,
      }),
    );
  };

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    setPageHeaders(reply);
    const isPost = req.method === 'POST';
    const p = paramsOf(req, isPost ? req.body : req.query);
    if (typeof p === 'string') return page(reply, 400, signInErrorPage(p));
    const base = issuerBaseOf(req, s.issuerBases());
    const tenantSegment = (req.params as { tenant: string }).tenant;
    const outcome = await endpoint.validate(tenantSegment, p, base);
    if (outcome.kind === 'page') return page(reply, outcome.status, signInErrorPage(outcome.message));
    if (outcome.kind === 'redirect') return reply.redirect(outcome.location, 303);
    const r = outcome.request;
    // A native app's redirect goes to its own loopback origin (validated: http, loopback, port).
    if (r.client.loopback) setPageHeaders(reply, new URL(r.redirectUri).origin);
    if (!isPost) return showForm(req, reply, r, p);

    const type = String(req.headers['content-type'] ?? '').toLowerCase();
    if (!type.startsWith('application/x-www-form-urlencoded'))
      return page(reply, 415, signInErrorPage('The sign-in form must be sent as a form.'));
    const body = (req.body ?? {}) as Record<string, unknown>;
    const text = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '');
    const userName = text('username').slice(0, 255);
    if (!sameOrigin(req, base))
      return page(reply, 403, signInErrorPage('The sign-in form was submitted from another site.'));
    const cookie = readCookie(req, SIGNIN_COOKIE);
    if (!cookie || !COOKIE_RE.test(cookie) || !safeEqual(text('csrf'), csrfFor(cookie, r)))
      return showForm(req, reply, r, p, {
        status: 400,
        error: 'The sign-in form expired or was not sent by this page. Sign in again.',
        userName,
      });
    const result = await endpoint.signIn(r, {
      userName,
      password: text('password'),
      clientIp: clientIp(req),
    });
    if (result.kind === 'redirect') return reply.redirect(result.location, 303);
    if (result.retryAfter) reply.header('retry-after', result.retryAfter);
    return showForm(req, reply, r, p, { status: result.status, error: result.message, userName });
  };

  for (const path of ['/:tenant/oauth2/v2.0/authorize', '/:tenant/oauth2/authorize']) {
    app.get(path, handle);
    app.post(path, { bodyLimit: 32 * 1024 }, handle);
  }
}
