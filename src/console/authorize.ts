import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  AUTHORIZE_PARAMS,
  type AuthorizeParams,
  createAuthorizeEndpoint,
  type ValidAuthorization,
} from '../authority/authorize.js';
import { browserClientOf } from '../authority/clients.js';
import type { DeviceRequest } from '../authority/device-codes.js';
import { toLatchkeyError } from '../http/errors.js';
import { clientIp, issuerBaseOf } from '../http/request.js';
import type { Services } from '../server/services.js';
import { deviceCodePage, deviceDonePage, signInErrorPage, signInPage } from './pages/signin.js';
import { addCookie, hostCookie, mac, readCookie, safeEqual, sameOrigin, setPageHeaders } from './security.js';

/** The pre-sign-in cookie the form's CSRF token is bound to (login CSRF defence). */
const SIGNIN_COOKIE = '__Host-latchkey-signin';
const COOKIE_RE = /^[A-Za-z0-9_-]{43}$/;
/** The device sign-in verification page (RFC 8628 `verification_uri`). */
export const DEVICE_PATH = '/devicelogin';

/**
 * The OAuth 2.0 authorization endpoint (authorization code + PKCE) with its
 * sign-in form: `GET|POST /{tenant}/oauth2/v2.0/authorize` and the v1 alias
 * `/{tenant}/oauth2/authorize` (which also takes `resource`). Answers are HTML
 * pages under the console's CSP; errors before the redirect URI is proven are
 * shown on the page, later ones go to the client as RFC 6749 §4.1.2.1 redirects.
 */
export async function authorizeRoutes(
  app: FastifyInstance,
  opts: {
    services: Pick<
      Services,
      | 'authorizationCodes'
      | 'clock'
      | 'config'
      | 'deviceCodes'
      | 'issuerBases'
      | 'principals'
      | 'tenants'
      | 'throttle'
      | 'tokenEndpoint'
    >;
  },
): Promise<void> {
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

  /** The browser's sign-in cookie, set now if it has none (or a malformed one). */
  const signInCookie = (req: FastifyRequest, reply: FastifyReply): string => {
    let cookie = readCookie(req, SIGNIN_COOKIE);
    if (!cookie || !COOKIE_RE.test(cookie)) {
      cookie = randomBytes(32).toString('base64url');
      addCookie(reply, hostCookie(SIGNIN_COOKIE, cookie, 3600));
    }
    return cookie;
  };
  /** Whether the form's CSRF token is the one `expected` computes from the browser's cookie. */
  const csrfValid = (req: FastifyRequest, sent: string, expected: (cookie: string) => string) => {
    const cookie = readCookie(req, SIGNIN_COOKIE);
    return !!cookie && COOKIE_RE.test(cookie) && safeEqual(sent, expected(cookie));
  };

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
    const cookie = signInCookie(req, reply);
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
    if (!csrfValid(req, text('csrf'), (cookie) => csrfFor(cookie, r)))
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

  // ---- Device sign-in (RFC 8628 §3.3): the verification page a person opens on another device ----
  // Step 1 takes the code (a wrong one counts as a failed sign-in for the address, so codes cannot
  // be guessed); step 2 names the application asking and signs the user in, or declines.
  const deviceCsrf = (cookie: string, requestId: string) => mac(csrfKey, cookie, 'devicelogin', requestId);
  const codeForm = (req: FastifyRequest, reply: FastifyReply, status: number, error?: string) =>
    page(
      reply,
      status,
      deviceCodePage({ action: DEVICE_PATH, csrf: deviceCsrf(signInCookie(req, reply), ''), error }),
    );
  const deviceSignInForm = async (
    req: FastifyRequest,
    reply: FastifyReply,
    d: DeviceRequest,
    userCode: string,
    opts: { status?: number; error?: string; userName?: string } = {},
  ) => {
    const tenant = await s.tenants.find(d.tenantId);
    const client = await browserClientOf(d.tenantId, d.clientId, s.principals);
    return page(
      reply,
      opts.status ?? 200,
      signInPage({
        action: DEVICE_PATH,
        clientName: client?.displayName ?? d.clientId,
        tenant: tenant?.domain ?? d.tenantId,
        hidden: { step: 'signin', user_code: userCode },
        csrf: deviceCsrf(signInCookie(req, reply), d.id),
        userName: opts.userName ?? '',
        error: opts.error,
        cancel: 'Cancel',
      }),
    );
  };
  const done = (reply: FastifyReply, status: number, title: string, message: string) =>
    page(reply, status, deviceDonePage({ title, message, kind: status < 400 ? 'info' : 'error' }));

  app.get(DEVICE_PATH, async (req, reply) => {
    setPageHeaders(reply);
    return codeForm(req, reply, 200);
  });
  app.post(DEVICE_PATH, { bodyLimit: 16 * 1024 }, async (req, reply) => {
    setPageHeaders(reply);
    const type = String(req.headers['content-type'] ?? '').toLowerCase();
    if (!type.startsWith('application/x-www-form-urlencoded'))
      return page(reply, 415, signInErrorPage('The form must be sent as a form.'));
    if (!sameOrigin(req, issuerBaseOf(req, s.issuerBases())))
      return page(reply, 403, signInErrorPage('The form was submitted from another site.'));
    const body = (req.body ?? {}) as Record<string, unknown>;
    const text = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '');
    const userCode = text('user_code').trim().slice(0, 32);
    const ip = clientIp(req);
    const expired = 'The form expired or was not sent by this page. Enter the code again.';

    const step2 = text('step') === 'signin';
    // The page names a code as valid or not: both steps check, and count every unknown code
    // against the address, so neither can be used to guess codes.
    if (!step2 && !csrfValid(req, text('csrf'), (cookie) => deviceCsrf(cookie, '')))
      return codeForm(req, reply, 400, expired);
    // Held while the code is looked up: concurrent guesses count before the first is answered.
    let d: Awaited<ReturnType<typeof s.deviceCodes.pending>>;
    try {
      d = await s.throttle.guard([`ip:${ip}`], async () => {
        const found = await s.deviceCodes.pending(userCode);
        if (!found) {
          const delay = await s.throttle.fail([`ip:${ip}`]);
          if (delay > 0) await sleep(delay);
        }
        return found;
      });
    } catch (e) {
      const le = toLatchkeyError(e, req, true);
      if (le.status !== 429) throw e;
      for (const [k, v] of Object.entries(le.headers)) reply.header(k, v);
      return codeForm(req, reply, le.status, 'Too many wrong codes. Wait a minute, then try again.');
    }
    if (!d) {
      return step2
        ? done(
            reply,
            400,
            'Sign-in expired',
            'This sign-in request has expired or was already used. Start the sign-in again on your device.',
          )
        : codeForm(req, reply, 400, 'That code is not valid or has expired. Check it and try again.');
    }
    if (!step2) return deviceSignInForm(req, reply, d, userCode);
    if (!csrfValid(req, text('csrf'), (cookie) => deviceCsrf(cookie, d.id)))
      return codeForm(req, reply, 400, expired);
    if (text('action') === 'deny') {
      await s.deviceCodes.deny(d.id);
      return done(reply, 200, 'Sign-in cancelled', 'Nothing was signed in. You may close this window.');
    }
    const tenant = await s.tenants.find(d.tenantId);
    if (!tenant) return done(reply, 404, 'Sign-in error', 'The tenant of this sign-in no longer exists.');
    const userName = text('username').slice(0, 255);
    const user = await endpoint.authenticate(tenant, { userName, password: text('password'), clientIp: ip });
    if (user.kind === 'form') {
      if (user.retryAfter) reply.header('retry-after', user.retryAfter);
      return deviceSignInForm(req, reply, d, userCode, {
        status: user.status,
        error: user.message,
        userName,
      });
    }
    if (!(await s.deviceCodes.approve(d.id, user.principal.id, s.clock.now())))
      return done(reply, 400, 'Sign-in expired', 'This sign-in request has expired or was already used.');
    const client = await browserClientOf(d.tenantId, d.clientId, s.principals);
    return done(
      reply,
      200,
      'Signed in',
      `You have signed in to ${client?.displayName ?? 'the application'} on your device. You may now close this window.`,
    );
  });
}
