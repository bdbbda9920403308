import type { Principals } from './principals.js';

/** Every `https://host[:port]` under which the authority is reached (the token issuer follows the client's host). */
export function issuerBasesFor(config: {
  publicHost: string;
  port: number;
  issuerHostAliases: readonly string[];
}): string[] {
  const port = config.port === 443 ? '' : `:${config.port}`;
  const hosts = [config.publicHost, ...config.issuerHostAliases];
  return [
    ...new Set(
      hosts.map((h) =>
        `https://${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}${port}`.toLowerCase(),
      ),
    ),
  ];
}

/**
 * Which resource a token is for: the vault (any of its audiences), the management API, the
 * directory (Graph is served at the authority's own base URL), a token-exchange audience the
 * operator allows, or a registered application by its identifier URI or app id. `builtInResource`
 * says whether a URI is one of the first two, so an application may not register it.
 */
export function createResourceResolver(deps: {
  principals: Pick<Principals, 'byIdentifierUri' | 'byAppId'>;
  vaultResource: string;
  managementResource: string;
  vaultAudiences: () => readonly string[];
  issuerBases: () => readonly string[];
  /** Audiences for tokens to exchange elsewhere (`api://AzureADTokenExchange` and the operator's). */
  exchangeAudiences: readonly string[];
}) {
  const { principals, vaultResource, managementResource } = deps;
  const management = managementResource.replace(/\/+$/, '').toLowerCase();
  return {
    /** The vault (with any port) and the management API: resolved before any application ID URI. */
    builtInResource(uri: string): boolean {
      const u = uri.replace(/\/+$/, '').toLowerCase();
      const vault = vaultResource.toLowerCase();
      return (
        u === vault ||
        (u.startsWith(`${vault}:`) && /^\d{1,5}$/.test(u.slice(vault.length + 1))) ||
        u === management
      );
    },
    /**
     * The resource a resolved audience stands for, as a spent client assertion is recorded: the
     * vault's audiences (with and without the port) are one resource, as are the authority's
     * base URLs (the directory API under each name it answers to). Without it, one assertion was
     * accepted once per spelling of the same resource.
     */
    replayResourceOf(audience: string): string {
      const lower = audience.replace(/\/+$/, '').toLowerCase();
      if (deps.vaultAudiences().some((a) => a.toLowerCase() === lower)) return vaultResource.toLowerCase();
      if (deps.issuerBases().some((b) => b.toLowerCase() === lower)) return 'urn:latchkey:directory';
      return lower;
    },
    async resolveResource(tenantId: string, resource: string): Promise<string | undefined> {
      const r = resource.replace(/\/+$/, '');
      const lower = r.toLowerCase();
      const vault = deps.vaultAudiences().find((a) => a.toLowerCase() === lower);
      if (vault) return vault;
      if (lower === management) return managementResource;
      // The directory (Microsoft Graph) API is served at the authority's own base URL, and Graph's
      // resource is its base URL: a token for it names the base the client asked for.
      const base = deps.issuerBases().find((b) => b.toLowerCase() === lower);
      if (base) return base;
      // A token to present to another system as a federated credential (docs/federation.md):
      // `api://AzureADTokenExchange` and the audiences the operator allows, for any principal.
      const exchange = deps.exchangeAudiences.find((a) => a.toLowerCase() === lower);
      if (exchange) return exchange;
      const app =
        (await principals.byIdentifierUri(tenantId, r)) ??
        (lower.startsWith('api://') ? await principals.byAppId(tenantId, lower.slice(6)) : undefined) ??
        (await principals.byAppId(tenantId, lower));
      if (!app || app.kind === 'user') return undefined;
      return app.identifierUri ?? `api://${app.appId}`;
    },
  };
}
