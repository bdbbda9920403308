import { createHash, randomBytes } from 'node:crypto';
import { CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID } from '../../src/authority/clients.js';
import type { TestServer } from './server.js';

/** A PKCE pair (RFC 7636, S256). */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The console's redirect URI on the test server's authority host. */
export const consoleRedirect = (s: TestServer): string => `${s.info.authority}${CONSOLE_CALLBACK_PATH}`;

/** An authorization URL for the console client; `params` override or (with undefined) drop fields. */
export function authorizeUrl(
  s: TestServer,
  challenge: string,
  params: Record<string, string | undefined> = {},
  path = `/${s.info.tenantId}/oauth2/v2.0/authorize`,
): string {
  const all: Record<string, string | undefined> = {
    client_id: CONSOLE_CLIENT_ID,
    response_type: 'code',
    redirect_uri: consoleRedirect(s),
    scope: `openid profile ${s.info.managementResource}/.default`,
    state: 'state-123',
    nonce: 'nonce-456',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...params,
  };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(all)) if (v !== undefined) q.set(k, v);
  return `${path}?${q}`;
}

const unescapeHtml = (v: string) =>
  v
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&#96;', '`')
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');

/** The hidden inputs of every form in a page, by name (last wins). */
export function hiddenInputs(page: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    out[m[1]!] = unescapeHtml(m[2]!);
  return out;
}

/** The `name=value` of a Set-Cookie header (first cookie with that name). */
export function cookieFrom(headers: Record<string, string | string[] | undefined>, name: string) {
  const raw = headers['set-cookie'];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const line = list.find((c) => c.startsWith(`${name}=`));
  return line ? { pair: line.split(';')[0]!, line } : undefined;
}

/** Opens the sign-in form; returns its hidden fields, the sign-in cookie and the page. */
export async function openSignIn(s: TestServer, url: string) {
  const r = await s.request('GET', url);
  const cookie = cookieFrom(r.headers, '__Host-latchkey-signin');
  return { ...r, hidden: hiddenInputs(r.text), cookie: cookie?.pair };
}

/**
 * Posts the sign-in form as a same-origin browser would (Origin: null because of
 * Referrer-Policy: no-referrer, with Sec-Fetch-Site: same-origin).
 */
export async function postSignIn(
  s: TestServer,
  url: string,
  form: Record<string, string>,
  cookie: string | undefined,
  headers: Record<string, string> = { origin: 'null', 'sec-fetch-site': 'same-origin' },
) {
  return s.request('POST', url.split('?')[0]!, {
    form,
    headers: { ...(cookie ? { cookie } : {}), ...headers },
  });
}

/** Signs in through the form and returns the code (and the raw redirect). */
export async function signInForCode(
  s: TestServer,
  challenge: string,
  user: { userName: string; password: string },
  params: Record<string, string | undefined> = {},
): Promise<{ code: string; location: URL }> {
  const url = authorizeUrl(s, challenge, params);
  const f = await openSignIn(s, url);
  if (f.status !== 200) throw new Error(`sign-in form: ${f.status} ${f.text.slice(0, 300)}`);
  const r = await postSignIn(
    s,
    url,
    { ...f.hidden, username: user.userName, password: user.password },
    f.cookie,
  );
  if (r.status !== 303) throw new Error(`sign-in: ${r.status} ${r.text.slice(0, 300)}`);
  const location = new URL(String(r.headers.location));
  return { code: location.searchParams.get('code') ?? '', location };
}

/** Redeems a code at the token endpoint. */
export function redeem(s: TestServer, form: Record<string, string>) {
  return s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'authorization_code',
      client_id: CONSOLE_CLIENT_ID,
      redirect_uri: consoleRedirect(s),
      ...form,
    },
  });
}

/**
 * Finishes a device sign-in on the verification page as a person would: enter the code, then
 * sign in (or cancel). Returns the last page.
 */
export async function completeDeviceSignIn(
  s: TestServer,
  verificationUri: string,
  userCode: string,
  user: { userName: string; password: string },
  opts: { deny?: boolean } = {},
) {
  const start = await openSignIn(s, verificationUri);
  if (start.status !== 200) throw new Error(`device page: ${start.status}`);
  const step1 = await postSignIn(s, verificationUri, { ...start.hidden, user_code: userCode }, start.cookie);
  if (step1.status !== 200) throw new Error(`device code step: ${step1.status} ${step1.text.slice(0, 300)}`);
  const form = opts.deny
    ? { ...hiddenInputs(step1.text), action: 'deny' }
    : { ...hiddenInputs(step1.text), username: user.userName, password: user.password };
  return postSignIn(s, verificationUri, form, start.cookie);
}
