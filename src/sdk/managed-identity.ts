import { createTokenCache, withRefresh } from './cache.js';
import { AuthenticationError, CredentialUnavailableError, describeBody } from './errors.js';
import { type SdkHttpOptions, send } from './http.js';
import { type AccessToken, type GetTokenOptions, scopeToResource, type TokenCredential } from './types.js';

export interface ManagedIdentityCredentialOptions extends SdkHttpOptions {
  /** A user-assigned identity, by client id, object id or ARM resource id (at most one). */
  clientId?: string;
  objectId?: string;
  resourceId?: string;
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How long the IMDS availability probe waits (ms; default 1000). */
  probeTimeoutMs?: number;
}

const IMDS_HOST = 'http://169.254.169.254';
const IMDS_PATH = '/metadata/identity/oauth2/token';

/** `expires_on` as epoch ms: a number, a numeric string, or an ISO date (all seen in the wild). */
function expiresOnMs(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v * 1000;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v) * 1000;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : undefined;
  }
  return undefined;
}

/**
 * The managed identity of the workload, from the endpoint its environment
 * names: App Service (IDENTITY_ENDPOINT + IDENTITY_HEADER, as `latchkey run`
 * sets), else IMDS (AZURE_POD_IDENTITY_AUTHORITY_HOST, or 169.254.169.254
 * after a short probe).
 */
export class ManagedIdentityLatchkeyCredential implements TokenCredential {
  private readonly cached: (resource: string) => Promise<AccessToken>;
  private readonly env: NodeJS.ProcessEnv;
  private imdsProbed: Promise<boolean> | undefined;

  constructor(private readonly options: ManagedIdentityCredentialOptions = {}) {
    this.env = options.env ?? process.env;
    const ids = [options.clientId, options.objectId, options.resourceId].filter(Boolean);
    if (ids.length > 1) throw new TypeError('give at most one of clientId, objectId, resourceId');
    this.cached = createTokenCache((resource) => this.fetch(resource));
  }

  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    return this.cached(scopeToResource(scopes));
  }

  private selector(imds: boolean): Record<string, string> {
    const o = this.options;
    if (o.clientId) return { client_id: o.clientId };
    if (o.objectId) return { object_id: o.objectId };
    if (o.resourceId) return { [imds ? 'msi_res_id' : 'mi_res_id']: o.resourceId };
    return {};
  }

  /** The token request's URL at `base` (from the environment variable `from`), for `resource`. */
  private tokenUrl(base: string, from: string, apiVersion: string, resource: string, imds: boolean): URL {
    if (!URL.canParse(base)) throw new CredentialUnavailableError(`${from} is not a URL`);
    const url = new URL(base);
    url.search = new URLSearchParams({
      'api-version': apiVersion,
      resource,
      ...this.selector(imds),
    }).toString();
    return url;
  }

  private async fetch(resource: string): Promise<AccessToken> {
    const endpoint = this.env.IDENTITY_ENDPOINT;
    const header = this.env.IDENTITY_HEADER;
    let url: URL;
    let headers: Record<string, string>;
    if (endpoint && header) {
      url = this.tokenUrl(endpoint, 'IDENTITY_ENDPOINT', '2019-08-01', resource, false);
      headers = { 'X-IDENTITY-HEADER': header };
    } else {
      const pod = this.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
      if (!pod && !(await this.probeImds()))
        throw new CredentialUnavailableError(
          'no managed identity endpoint (IDENTITY_ENDPOINT/IDENTITY_HEADER or AZURE_POD_IDENTITY_AUTHORITY_HOST not set, IMDS not reachable)',
        );
      const base = `${(pod ?? IMDS_HOST).replace(/\/+$/, '')}${IMDS_PATH}`;
      url = this.tokenUrl(base, 'AZURE_POD_IDENTITY_AUTHORITY_HOST', '2018-02-01', resource, true);
      headers = { Metadata: 'true' };
    }
    const issuedAt = Date.now();
    let res: Awaited<ReturnType<typeof send>>;
    try {
      res = await send('GET', url.toString(), { ...this.options, headers });
    } catch (e) {
      throw new CredentialUnavailableError(
        `the managed identity endpoint ${url.origin} could not be reached: ${(e as Error).message}`,
      );
    }
    if (res.status !== 200) {
      const code = (res.body as { error?: string } | undefined)?.error;
      throw new AuthenticationError(
        `the managed identity endpoint refused: ${describeBody(res.status, res.body)}`,
        res.status,
        code,
      );
    }
    const b = res.body as { access_token?: unknown; expires_on?: unknown; expires_in?: unknown };
    const exp =
      expiresOnMs(b.expires_on) ??
      (b.expires_in !== undefined ? issuedAt + Number(b.expires_in) * 1000 : undefined);
    if (typeof b.access_token !== 'string' || !exp)
      throw new AuthenticationError(
        'the managed identity endpoint answered without access_token or expires_on',
      );
    return withRefresh(b.access_token, exp, issuedAt);
  }

  /**
   * Azure's probe, a query-less request without `Metadata`: IMDS answers it
   * with a JSON `{error}` (400). Anything else — no answer, or a proxy's page —
   * means there is no IMDS here.
   */
  private probeImds(): Promise<boolean> {
    this.imdsProbed ??= send('GET', `${IMDS_HOST}${IMDS_PATH}`, {
      timeoutMs: this.options.probeTimeoutMs ?? 1000,
    }).then(
      (r) => r.status === 400 && typeof (r.body as { error?: unknown } | undefined)?.error === 'string',
      () => false,
    );
    return this.imdsProbed;
  }
}
