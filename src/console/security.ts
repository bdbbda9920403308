import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The Content-Security-Policy of every console and sign-in response: no inline script or style at all;
 * scripts may fetch from this origin only (the member picker's live search).
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * Headers for every HTML page (and every response under /console). `formTarget`: one more
 * origin the page's form may lead to — browsers apply `form-action` to the redirect after a
 * submission, and a native app's sign-in ends with a redirect to its loopback address.
 */
export function setPageHeaders(reply: FastifyReply, formTarget?: string): void {
  const csp = formTarget
    ? // A function replacer: a replacement string would expand `$&`, `` $` `` and `$'`.
      CONSOLE_CSP.replace("form-action 'self'", () => `form-action 'self' ${formTarget}`)
    : CONSOLE_CSP;
  reply
    .header('content-security-policy', csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache');
}

/** Reads one cookie from the request (the first of that name; values are not decoded). */
export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/**
 * A `__Host-` cookie: Secure, Path=/, no Domain (so bound to this host), HttpOnly,
 * SameSite=Strict. `maxAgeSeconds` 0 deletes it; undefined makes a browser-session cookie.
 */
export function hostCookie(name: string, value: string, maxAgeSeconds?: number): string {
  const age = maxAgeSeconds === undefined ? '' : `; Max-Age=${maxAgeSeconds}`;
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict${age}`;
}

/** Appends a Set-Cookie header (keeps the ones already set). */
export function addCookie(reply: FastifyReply, cookie: string): void {
  const prev = reply.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
  reply.header('set-cookie', [...list, cookie]);
}

/** HMAC-SHA256 as base64url. */
export const mac = (key: Buffer, ...parts: string[]): string =>
  createHmac('sha256', key).update(parts.join('\n')).digest('base64url');

/** Constant-time comparison of two strings (false when lengths differ). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The Origin check of a state-changing browser request. A real `Origin` must be
 * ours. With `Referrer-Policy: no-referrer`, browsers send `Origin: null` even on
 * same-origin form posts, so `null` passes only with Fetch Metadata saying
 * `Sec-Fetch-Site: same-origin`; any other `Sec-Fetch-Site` fails. A request
 * with neither header is not a browser's and passes (the CSRF token still binds it).
 */
export function sameOrigin(req: FastifyRequest, expectedOrigin: string): boolean {
  const origin = req.headers.origin;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  if (origin === undefined) return true;
  if (origin === 'null') return site === 'same-origin';
  return origin.toLowerCase() === expectedOrigin.toLowerCase();
}
