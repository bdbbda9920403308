import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createIdTokenVerifier } from '../authority/tokens.js';
import { LatchkeyError } from '../errors/index.js';
import { toLatchkeyError } from '../http/errors.js';
import { issuerBaseOf, requestMeta } from '../http/request.js';
import type { Services } from '../server/services.js';
import { consoleAssets } from './assets.js';
import { errorStateOf } from './components.js';
import type { Action, ConsoleContext, FormInput, PageResult, View } from './context.js';
import { csrfToken, csrfValid } from './csrf.js';
import { html } from './html.js';
import { consoleShell, type ErrorState, type Flash, plainShell } from './layout.js';
import { createConsoleLogin, LOGIN_PATHS } from './login.js';
import { registerPages } from './pages/index.js';
import { readCookie, sameOrigin, setPageHeaders } from './security.js';
import { type ConsoleSession, type ConsoleSessions, consoleSessionsOf, SESSION_COOKIE } from './session.js';

const sendHtml = (reply: FastifyReply, status: number, body: { value: string }) =>
  reply.code(status).type('text/html; charset=utf-8').send(body.value);

/** The console's error page (any error under /console that is not a page's own error state). */
export function sendConsoleError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const e = toLatchkeyError(err, req);
  const message = e.status >= 500 ? 'An internal error occurred. Try again later.' : e.message;
  return sendHtml(
    reply,
    e.status,
    plainShell({
      title: 'Error',
      body: html`<div class="panel"><h1>Something went wrong</h1><div class="alert alert-error" role="alert">${message}</div><p><a href="/console/">Back to the console</a></p></div>`,
    }),
  );
}

/** Registers a GET page or a POST action of the console (paths relative to /console). */
export interface ConsoleRouter {
  page(path: string, view: View): void;
  /** `view`: the page to show again, with the error state, when the action fails. */
  action(path: string, act: Action, view?: View): void;
  /**
   * A GET answering JSON for console.js (progressive enhancement of a page that works without it):
   * the same session and access decision as pages; no session is a 401, a refusal its status.
   */
  json(path: string, handler: (ctx: ConsoleContext) => Promise<unknown>): void;
}

/**
 * The web console, served by the main app under `/console/`: a
 * backend-for-frontend. It signs users in with the authorization-code flow
 * (PKCE) against this authority, keeps a server-side session, and calls the
 * domain services in-process as the signed-in user, through the same access
 * decision and audit as the management API and the vault.
 */
export async function consoleRoutes(
  app: FastifyInstance,
  opts: { services: Services; sessions?: ConsoleSessions },
): Promise<void> {
  const s = opts.services;
  const sessions = opts.sessions ?? consoleSessionsOf(s);
  const login = createConsoleLogin({
    services: s,
    sessions,
    idTokens: createIdTokenVerifier({ keys: s.signingKeys, clock: s.clock, issuerBases: s.issuerBases }),
    loginKey: s.config.rootKey.derive('console-login'),
  });

  // Every response under /console: CSP, no caching, no referrer, no framing (static files relax caching).
  app.addHook('onRequest', async (_req, reply) => {
    setPageHeaders(reply);
  });
  app.setErrorHandler(sendConsoleError);
  app.setNotFoundHandler((_req, reply) =>
    sendHtml(
      reply,
      404,
      plainShell({
        title: 'Not found',
        body: html`<div class="panel"><h1>Page not found</h1><p>There is no console page at this address.</p><p><a href="/console/">Go to the overview</a></p></div>`,
      }),
    ),
  );

  for (const [name, key] of [
    ['console.css', 'css'],
    ['console.js', 'js'],
  ] as const) {
    app.get(`/static/${name}`, async (req, reply) => {
      const asset = consoleAssets()[key];
      const v = (req.query as { v?: string }).v;
      reply
        .header('cache-control', v === asset.version ? 'public, max-age=31536000, immutable' : 'no-cache')
        .header('etag', `"${asset.version}"`)
        .type(asset.type);
      if (req.headers['if-none-match'] === `"${asset.version}"`) return reply.code(304).send();
      return reply.send(asset.body);
    });
  }

  /** The signed-in user's context, or undefined (no session, expired, user disabled or deleted). */
  const load = async (
    req: FastifyRequest,
  ): Promise<{ ctx: ConsoleContext; session: ConsoleSession } | { ctx?: undefined; expired: boolean }> => {
    const found = await sessions.find(readCookie(req, SESSION_COOKIE));
    if (found.state !== 'active') return { expired: found.state === 'expired' };
    const session = found.session;
    // Re-checked on every request (the principal cache holds state for at most one second).
    const user = await s.principals.current(session.principalId);
    const tenant = await s.tenants.find(session.tenantId);
    if (!user?.enabled || user.kind !== 'user' || user.tenantId !== session.tenantId || !tenant) {
      await sessions.delete(session.idHash);
      return { expired: true };
    }
    s.principalLimiter.take(user.id);
    const subs = await s.scopes.listSubscriptions(tenant.id);
    const ctx: ConsoleContext = {
      s,
      req,
      caller: { tenantId: tenant.id, oid: user.id, appId: login.clientId, kind: 'user' },
      meta: requestMeta(req),
      user,
      tenant,
      subscriptionId: subs[0]?.subscriptionId ?? '',
      csrf: (action) => csrfToken(session.csrfSecret, action),
    };
    return { ctx, session };
  };

  const render = (
    reply: FastifyReply,
    ctx: ConsoleContext,
    page: PageResult,
    extra: { flash?: Flash | undefined; error?: ErrorState; status?: number } = {},
  ) =>
    sendHtml(
      reply,
      extra.status ?? page.status ?? 200,
      consoleShell({
        title: page.title,
        nav: page.nav,
        user: ctx.user,
        tenant: ctx.tenant.domain ?? ctx.tenant.id,
        logoutCsrf: ctx.csrf('/console/logout'),
        flash: extra.flash,
        error: extra.error,
        body: page.body,
      }),
    );

  /** A page that failed as a whole (not found, not allowed): its error state and a way back. */
  const failedPage = (e: ErrorState): PageResult => ({
    title: e.status === 403 ? 'Access denied' : e.status === 404 ? 'Not found' : 'Error',
    nav: null,
    body: html`<p><a href="/console/">Back to the overview</a></p>`,
    status: e.status,
  });

  /** Shows `view` with an error state; if the view itself fails, the error alone. */
  const renderWithError = async (
    reply: FastifyReply,
    ctx: ConsoleContext,
    view: View | undefined,
    e: ErrorState,
  ) => {
    let page: PageResult = failedPage(e);
    if (view) {
      try {
        page = await view(ctx);
      } catch (inner) {
        if (!(inner instanceof LatchkeyError)) throw inner;
      }
    }
    return render(reply, ctx, page, { error: e, status: e.status });
  };

  const router: ConsoleRouter = {
    page(path, view) {
      app.get(path, async (req, reply) => {
        const c = await load(req);
        if (!c.ctx) return reply.redirect(login.startUrl(req.url), 302);
        const flash = await sessions.takeFlash(c.session.idHash);
        let page: PageResult;
        try {
          page = await view(c.ctx);
        } catch (e) {
          if (!(e instanceof LatchkeyError)) throw e;
          return render(reply, c.ctx, failedPage(errorStateOf(e)), { error: errorStateOf(e), flash });
        }
        return render(reply, c.ctx, page, { flash });
      });
    },
    json(path, handler) {
      app.get(path, async (req, reply) => {
        const c = await load(req);
        if (!c.ctx)
          return reply
            .code(401)
            .send({ error: { code: 'Unauthorized', message: 'Sign in to the console again.' } });
        try {
          return reply.send(await handler(c.ctx));
        } catch (e) {
          if (!(e instanceof LatchkeyError)) throw e;
          return reply.code(e.status).send({ error: { code: e.code, message: e.message } });
        }
      });
    },
    action(path, act, view) {
      app.post(path, { bodyLimit: 128 * 1024 }, async (req, reply) => {
        const type = String(req.headers['content-type'] ?? '').toLowerCase();
        if (!type.startsWith('application/x-www-form-urlencoded'))
          throw new LatchkeyError(
            'UnsupportedMediaType',
            'Console forms are sent as application/x-www-form-urlencoded.',
          );
        if (!sameOrigin(req, issuerBaseOf(req, s.issuerBases())))
          throw new LatchkeyError(
            'Forbidden',
            'The form was submitted from another site; nothing was changed.',
          );
        const c = await load(req);
        if (!c.ctx) return sendHtml(reply, 401, login.sessionEndedPage(c.expired));
        const form = (req.body ?? {}) as FormInput;
        const actionPath = req.url.split('?')[0]!;
        if (!csrfValid(c.session.csrfSecret, actionPath, form._csrf))
          return renderWithError(reply, c.ctx, view, {
            status: 403,
            code: 'Forbidden',
            message:
              'The form was not sent by this console session (missing or invalid CSRF token). Nothing was changed; reload the page and try again.',
          });
        let result: Awaited<ReturnType<Action>>;
        try {
          result = await act(c.ctx, form);
        } catch (e) {
          if (!(e instanceof LatchkeyError)) throw e;
          return renderWithError(
            reply,
            { ...c.ctx, failedForm: form, failedStatus: e.status },
            view,
            errorStateOf(e),
          );
        }
        if ('redirect' in result) {
          if (result.flash) await sessions.setFlash(c.session.idHash, result.flash);
          return reply.redirect(result.redirect, 303);
        }
        return render(reply, c.ctx, result.page);
      });
    },
  };

  app.get(LOGIN_PATHS.login, (req, reply) => login.start(req, reply));
  app.get(LOGIN_PATHS.callback, (req, reply) => login.callback(req, reply));
  app.get(LOGIN_PATHS.signedOut, (req, reply) => login.signedOut(req, reply));
  app.post(LOGIN_PATHS.logout, async (req, reply) => {
    const c = await load(req);
    const form = (req.body ?? {}) as FormInput;
    if (c.ctx) {
      if (
        !sameOrigin(req, issuerBaseOf(req, s.issuerBases())) ||
        !csrfValid(c.session.csrfSecret, '/console/logout', form._csrf)
      )
        throw new LatchkeyError('Forbidden', 'The sign-out form was not sent by this console session.');
      await login.end(c.ctx, c.session);
    }
    return login.clearAndLeave(reply);
  });

  registerPages(router);
}
