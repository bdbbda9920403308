import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID } from '../authority/clients.js';
import type { IdTokenVerifier } from '../authority/tokens.js';
import { LatchkeyError } from '../errors/index.js';
import { clientIp, issuerBaseOf, requestMeta } from '../http/request.js';
import type { Services } from '../server/services.js';
import type { ConsoleContext } from './context.js';
import { openLoginState, sealLoginState } from './csrf.js';
import { html, type SafeHtml } from './html.js';
import { plainShell } from './layout.js';
import { addCookie, hostCookie, readCookie, safeEqual } from './security.js';
import { type ConsoleSession, type ConsoleSessions, SESSION_COOKIE } from './session.js';

/** Paths of the sign-in flow, relative to /console. */
export const LOGIN_PATHS = {
  login: '/login',
  callback: CONSOLE_CALLBACK_PATH.slice('/console'.length),
  logout: '/logout',
  signedOut: '/signed-out',
} as const;

/** The sealed PKCE verifier, state and nonce between the redirect to sign in and the callback. */
const LOGIN_COOKIE = '__Host-latchkey-console-login';
const LOGIN_TTL_MS = 10 * 60_000;

/** A console path to return to after sign-in, or the overview. Never another origin. */
export function safeReturnPath(raw: string | undefined): string {
  if (!raw || raw.length > 500 || !/^\/console(\/[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$/.test(raw))
    return '/console/';
  if (raw.includes('//') || raw.startsWith('/console/login') || raw.startsWith('/console/auth/'))
    return '/console/';
  return raw;
}

const signInAgain = (returnTo = '/console/') =>
  html`<p><a class="btn btn-primary" href="/console/login?return=${encodeURIComponent(returnTo)}">Sign in</a></p>`;

function messagePage(title: string, message: string, kind: 'error' | 'info' = 'info'): SafeHtml {
  return plainShell({
    title,
    body: html`<div class="panel"><h1>${title}</h1><div class="alert alert-${kind}"${kind === 'error' ? html` role="alert"` : ''}>${message}</div>${signInAgain()}</div>`,
  });
}

/**
 * The console's side of the authorization-code flow: start (state, nonce and
 * PKCE sealed in a short-lived cookie, then off to the authorize endpoint),
 * callback (check state, redeem the code in-process at the token endpoint,
 * verify the tokens and the nonce, start a session), sign-out.
 */
export function createConsoleLogin(deps: {
  services: Pick<
    Services,
    | 'audit'
    | 'clock'
    | 'config'
    | 'db'
    | 'issuerBases'
    | 'principals'
    | 'tenants'
    | 'tokenEndpoint'
    | 'verifier'
  >;
  sessions: ConsoleSessions;
  idTokens: IdTokenVerifier;
  loginKey: Buffer;
}) {
  const { services: s, sessions, idTokens, loginKey } = deps;
  const send = (reply: FastifyReply, status: number, page: SafeHtml) =>
    reply.code(status).type('text/html; charset=utf-8').send(page.value);

  const audit = (ctx: { tenantId: string; oid: string }, req: FastifyRequest, operation: string) =>
    s.audit.record({
      tenantId: ctx.tenantId,
      callerOid: ctx.oid,
      callerAppId: CONSOLE_CLIENT_ID,
      callerKind: 'user',
      provisioningKeyId: null,
      operation,
      target: '/console',
      status: 200,
      ...requestMeta(req),
    });

  return {
    clientId: CONSOLE_CLIENT_ID,

    /** Where a request without a session goes: sign-in, then back to `url` (GET pages only). */
    startUrl(url: string): string {
      return `/console/login?return=${encodeURIComponent(safeReturnPath(url))}`;
    },

    async start(req: FastifyRequest, reply: FastifyReply) {
      const q = req.query as Record<string, unknown>;
      const wanted =
        typeof q.tenant === 'string' && /^[A-Za-z0-9.-]{1,253}$/.test(q.tenant) ? q.tenant : undefined;
      const tenant = wanted ? await s.tenants.find(wanted) : await s.tenants.default();
      if (!tenant) return send(reply, 404, messagePage('Sign in', 'That tenant does not exist.', 'error'));
      const base = issuerBaseOf(req, s.issuerBases());
      const verifier = randomBytes(32).toString('base64url');
      const state = randomBytes(24).toString('base64url');
      const nonce = randomBytes(24).toString('base64url');
      const sealed = sealLoginState(loginKey, {
        tenant: tenant.id,
        state,
        nonce,
        verifier,
        returnTo: safeReturnPath(typeof q.return === 'string' ? q.return : undefined),
        expires: s.clock.now() + LOGIN_TTL_MS,
      });
      addCookie(reply, hostCookie(LOGIN_COOKIE, sealed, LOGIN_TTL_MS / 1000));
      const params = new URLSearchParams({
        client_id: CONSOLE_CLIENT_ID,
        response_type: 'code',
        redirect_uri: `${base}${CONSOLE_CALLBACK_PATH}`,
        scope: `openid profile ${s.config.managementResource}/.default`,
        state,
        nonce,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        prompt: 'login',
      });
      return reply.redirect(`/${tenant.id}/oauth2/v2.0/authorize?${params}`, 302);
    },

    async callback(req: FastifyRequest, reply: FastifyReply) {
      const q = req.query as Record<string, unknown>;
      const str = (k: string) => (typeof q[k] === 'string' ? (q[k] as string).slice(0, 2048) : undefined);
      const st = openLoginState(loginKey, readCookie(req, LOGIN_COOKIE));
      addCookie(reply, hostCookie(LOGIN_COOKIE, '', 0));
      if (!st || st.expires <= s.clock.now())
        return send(
          reply,
          400,
          messagePage(
            'Sign-in not completed',
            'The sign-in took too long or was started in another browser. Sign in again.',
            'error',
          ),
        );
      if (!safeEqual(str('state') ?? '', st.state))
        return send(
          reply,
          400,
          messagePage(
            'Sign-in not completed',
            'The sign-in response does not belong to this browser.',
            'error',
          ),
        );
      const error = str('error');
      if (error)
        return send(
          reply,
          400,
          messagePage(
            'Sign-in not completed',
            `The authority answered: ${error}: ${str('error_description') ?? ''}`.slice(0, 600),
            'error',
          ),
        );
      const base = issuerBaseOf(req, s.issuerBases());
      let principalId: string;
      // Before the code is redeemed: a revocation after this (a password reset) ends this sign-in.
      const redeemedFrom = s.clock.now();
      try {
        // In-process call of the token endpoint: the same code, PKCE and client checks as over HTTP.
        const t = await s.tokenEndpoint.token({
          tenant: st.tenant,
          form: {
            grant_type: 'authorization_code',
            client_id: CONSOLE_CLIENT_ID,
            code: str('code') ?? '',
            redirect_uri: `${base}${CONSOLE_CALLBACK_PATH}`,
            code_verifier: st.verifier,
          },
          issuerBase: base,
          clientIp: clientIp(req),
        });
        const id = await idTokens.verify(t.id_token ?? '', CONSOLE_CLIENT_ID);
        const access = await s.verifier.verify(t.access_token, [s.config.managementResource]);
        if (!id.nonce || !safeEqual(id.nonce, st.nonce) || id.oid !== access.oid || id.tid !== st.tenant)
          throw new LatchkeyError('Unauthorized', 'The ID token does not match this sign-in.');
        principalId = access.oid;
      } catch (e) {
        if (!(e instanceof LatchkeyError)) throw e;
        return send(
          reply,
          400,
          messagePage('Sign-in not completed', `Sign-in failed: ${e.message}`, 'error'),
        );
      }
      const user = await s.principals.current(principalId);
      if (!user?.enabled || user.kind !== 'user')
        return send(
          reply,
          403,
          messagePage('Sign-in not completed', 'This account cannot use the console.', 'error'),
        );
      // A new session id at every sign-in (no fixation); an old session of this browser ends.
      await sessions.deleteByValue(readCookie(req, SESSION_COOKIE));
      // Created only if the user's sign-ins were not revoked since the code was redeemed: a
      // password reset landing between the redemption and here would not see this session yet.
      const value = await s.db.transaction(async (tx) =>
        (await s.principals.signInsValidSince(st.tenant, user.id, redeemedFrom, tx))
          ? sessions.create(st.tenant, user.id)
          : undefined,
      );
      if (value === undefined)
        return send(
          reply,
          403,
          messagePage('Sign-in not completed', 'The sign-in was revoked meanwhile: sign in again.', 'error'),
        );
      addCookie(reply, hostCookie(SESSION_COOKIE, value, sessions.maxSeconds));
      await audit({ tenantId: st.tenant, oid: user.id }, req, 'ConsoleSignIn');
      return reply.redirect(safeReturnPath(st.returnTo), 303);
    },

    async end(ctx: ConsoleContext, session: ConsoleSession) {
      await sessions.delete(session.idHash);
      await audit({ tenantId: ctx.tenant.id, oid: ctx.user.id }, ctx.req, 'ConsoleSignOut');
    },

    clearAndLeave(reply: FastifyReply) {
      addCookie(reply, hostCookie(SESSION_COOKIE, '', 0));
      return reply.redirect('/console/signed-out', 303);
    },

    async signedOut(_req: FastifyRequest, reply: FastifyReply) {
      return send(reply, 200, messagePage('Signed out', 'You have signed out of the Latchkey console.'));
    },

    sessionEndedPage(expired: boolean): SafeHtml {
      return messagePage(
        'Session ended',
        expired
          ? 'Your console session has expired. Nothing was changed. Sign in again to continue.'
          : 'You are not signed in. Nothing was changed.',
        'error',
      );
    },
  };
}
