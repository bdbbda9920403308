import type { TestServer } from './server.js';
import { cookieFrom, hiddenInputs } from './signin.js';

/** A same-origin browser's headers on a form POST under `Referrer-Policy: no-referrer`. */
export const SAME_ORIGIN = { origin: 'null', 'sec-fetch-site': 'same-origin' } as const;

/** A console user driven over plain HTTP: cookies kept, redirects followed by hand. */
export interface ConsoleClient {
  cookies: Map<string, string>;
  get(path: string): ReturnType<TestServer['request']>;
  /** Posts a form with the CSRF token of `page` for this action (unless `form._csrf` is given). */
  post(
    path: string,
    form: Record<string, string | string[]>,
    opts?: { headers?: Record<string, string> },
  ): ReturnType<TestServer['request']>;
  /** The CSRF token of the form posting to `action` in `page`. */
  csrf(page: string, action: string): string | undefined;
  cookieHeader(): string;
}

export function consoleClient(s: TestServer): ConsoleClient {
  const cookies = new Map<string, string>();
  const keep = (headers: Record<string, string | string[] | undefined>) => {
    const raw = headers['set-cookie'];
    for (const line of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
      const [pair] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (/Max-Age=0/i.test(line) || value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
  };
  const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const client: ConsoleClient = {
    cookies,
    cookieHeader,
    async get(path) {
      const r = await s.request('GET', path, { headers: cookies.size ? { cookie: cookieHeader() } : {} });
      keep(r.headers);
      return r;
    },
    csrf(page, action) {
      const re = new RegExp(
        `<form method="post" action="${action.replaceAll('/', '\\/').replaceAll('.', '\\.')}"[^>]*><input type="hidden" name="_csrf" value="([^"]+)">`,
      );
      return re.exec(page)?.[1];
    },
    async post(path, form, opts = {}) {
      const body = new URLSearchParams();
      for (const [k, v] of Object.entries(form))
        for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
      const r = await s.request('POST', path, {
        body: body.toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...SAME_ORIGIN,
          ...(cookies.size ? { cookie: cookieHeader() } : {}),
          ...opts.headers,
        },
      });
      keep(r.headers);
      return r;
    },
  };
  return client;
}

/** Signs a user in to the console through the real code flow (as a browser would), returning the client. */
export async function consoleSignIn(
  s: TestServer,
  user: { userName: string; password: string } = s.admin,
  client = consoleClient(s),
): Promise<ConsoleClient> {
  const start = await client.get('/console/');
  if (start.status !== 302) throw new Error(`console: ${start.status}`);
  const login = await client.get(String(start.headers.location));
  if (login.status !== 302) throw new Error(`login: ${login.status} ${login.text.slice(0, 200)}`);
  const authorize = String(login.headers.location);
  const form = await client.get(authorize);
  if (form.status !== 200) throw new Error(`authorize: ${form.status} ${form.text.slice(0, 300)}`);
  const signed = await client.post(authorize.split('?')[0]!, {
    ...hiddenInputs(form.text),
    username: user.userName,
    password: user.password,
  });
  if (signed.status !== 303) throw new Error(`sign-in: ${signed.status} ${signed.text.slice(0, 300)}`);
  const cb = new URL(String(signed.headers.location));
  const back = await client.get(`${cb.pathname}${cb.search}`);
  if (back.status !== 303) throw new Error(`callback: ${back.status} ${back.text.slice(0, 300)}`);
  if (!cookieFrom(back.headers, '__Host-latchkey-console')) throw new Error('no session cookie');
  return client;
}
