import { isGuid } from '../lib/ids.js';
import type { Principals } from './principals.js';

/**
 * The built-in public clients every tenant knows, like Entra ID knows the Azure
 * CLI's client id without a registration in each directory.
 *
 * - the CLI (`04b07795-…`, the Azure CLI's own id, so `az login` works too):
 *   password and refresh-token grants, and the authorization-code grant with PKCE to a
 *   loopback redirect URI (RFC 8252), as a native app;
 * - the web console (`098a6f33-…`): the authorization-code grant with PKCE,
 *   redirecting only to `/console/auth/callback` on the host the sign-in
 *   started on (the authority's public host or one of its accepted aliases).
 */
export const CLI_CLIENT_ID = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
export const CONSOLE_CLIENT_ID = '098a6f33-24bd-4167-bf81-9212ebf4e2c8';
export const CONSOLE_CALLBACK_PATH = '/console/auth/callback';

/** A client allowed to use the authorization endpoint. */
export interface BrowserClient {
  clientId: string;
  displayName: string;
  /** The exact redirect URIs registered for the authority reached at `issuerBase` (`https://host[:port]`). */
  redirectUris(issuerBase: string): string[];
  /**
   * A native app (RFC 8252): it also may name any loopback redirect URI, on any port
   * (`http://localhost|127.0.0.1|[::1]:{port}/{path}`), where it listens for the code itself.
   */
  loopback: boolean;
}

/**
 * An RFC 8252 §7.3 loopback redirect URI: `http`, a loopback host (`localhost`, as MSAL sends,
 * or a literal address), an explicit port, no user info, query or fragment.
 */
export function isLoopbackRedirect(uri: string): boolean {
  if (uri.length > 512 || !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\]):\d{1,5}(\/[^?#]*)?$/i.test(uri))
    return false;
  try {
    const u = new URL(uri);
    const port = Number(u.port);
    return u.username === '' && u.password === '' && port >= 1 && port <= 65535;
  } catch {
    return false;
  }
}

/** True when `client` may be sent back to `redirectUri` by the authority reached at `issuerBase`. */
export const redirectAllowed = (client: BrowserClient, redirectUri: string, issuerBase: string): boolean =>
  client.redirectUris(issuerBase).includes(redirectUri) ||
  (client.loopback && isLoopbackRedirect(redirectUri));

/** A registered public client application (no secret): a native app with loopback redirects only. */
export const nativeClient = (clientId: string, displayName: string): BrowserClient => ({
  clientId,
  displayName,
  redirectUris: () => [],
  loopback: true,
});

const BROWSER_CLIENTS: ReadonlyMap<string, BrowserClient> = new Map([
  [
    CONSOLE_CLIENT_ID,
    {
      clientId: CONSOLE_CLIENT_ID,
      displayName: 'Latchkey console',
      redirectUris: (base: string) => [`${base}${CONSOLE_CALLBACK_PATH}`],
      loopback: false,
    },
  ],
  // `az login` (and any MSAL app using the Azure CLI's id) signs in through the browser and
  // receives the code on a local port.
  [CLI_CLIENT_ID, nativeClient(CLI_CLIENT_ID, 'Azure CLI')],
]);

/** The built-in browser client with this id (case-insensitive), if any. */
export function browserClient(clientId: string): BrowserClient | undefined {
  return BROWSER_CLIENTS.get(clientId.toLowerCase());
}

/** True for a built-in public client (no secret; PKCE or the user's password proves the request). */
export const isBuiltInPublicClient = (clientId: string): boolean =>
  clientId.toLowerCase() === CLI_CLIENT_ID || BROWSER_CLIENTS.has(clientId.toLowerCase());

/**
 * The client of a browser sign-in: a built-in one (the console; the CLI as a native app), or a
 * registered, enabled public client application of the tenant (a native app: loopback only).
 */
export async function browserClientOf(
  tenantId: string,
  clientId: string,
  principals: Pick<Principals, 'byAppId'>,
): Promise<BrowserClient | undefined> {
  const builtIn = browserClient(clientId);
  if (builtIn) return builtIn;
  if (!isGuid(clientId)) return undefined;
  const app = await principals.byAppId(tenantId, clientId.toLowerCase());
  return app?.publicClient && app.enabled && app.appId ? nativeClient(app.appId, app.displayName) : undefined;
}
