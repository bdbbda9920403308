/**
 * The built-in public clients every tenant knows, like Entra ID knows the Azure
 * CLI's client id without a registration in each directory.
 *
 * - the CLI (`04b07795-…`, the Azure CLI's own id, so `az login` works too):
 *   password and refresh-token grants;
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
}

const BROWSER_CLIENTS: ReadonlyMap<string, BrowserClient> = new Map([
  [
    CONSOLE_CLIENT_ID,
    {
      clientId: CONSOLE_CLIENT_ID,
      displayName: 'Latchkey console',
      redirectUris: (base: string) => [`${base}${CONSOLE_CALLBACK_PATH}`],
    },
  ],
]);

/** The built-in browser client with this id (case-insensitive), if any. */
export function browserClient(clientId: string): BrowserClient | undefined {
  return BROWSER_CLIENTS.get(clientId.toLowerCase());
}

/** True for a built-in public client (no secret; PKCE or the user's password proves the request). */
export const isBuiltInPublicClient = (clientId: string): boolean =>
  clientId.toLowerCase() === CLI_CLIENT_ID || BROWSER_CLIENTS.has(clientId.toLowerCase());
