import { type CliCredentialOptions, LatchkeyCliCredential } from './cli.js';
import { EnvironmentLatchkeyCredential } from './environment.js';
import { AggregateCredentialError, CredentialUnavailableError, type SourceAttempt } from './errors.js';
import type { SdkHttpOptions } from './http.js';
import { ManagedIdentityLatchkeyCredential } from './managed-identity.js';
import { type AccessToken, type GetTokenOptions, type TokenCredential, toScope } from './types.js';

export interface DefaultLatchkeyCredentialOptions extends SdkHttpOptions {
  /** A user-assigned identity's client id (default: AZURE_CLIENT_ID when no client secret/certificate is set). */
  managedIdentityClientId?: string;
  /** Or by object id / ARM resource id. */
  managedIdentityObjectId?: string;
  managedIdentityResourceId?: string;
  excludeEnvironmentCredential?: boolean;
  excludeManagedIdentityCredential?: boolean;
  excludeCliCredential?: boolean;
  cli?: CliCredentialOptions;
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The credential chain for applications: the same code gets a token on a
 * laptop and on a host.
 *
 * 1. environment (a service principal: AZURE_TENANT_ID, AZURE_CLIENT_ID,
 *    AZURE_CLIENT_SECRET | AZURE_CLIENT_CERTIFICATE_PATH, LATCHKEY_AUTHORITY);
 * 2. managed identity (the endpoint `latchkey run` or the host announces:
 *    App Service variables, else IMDS);
 * 3. the developer's `latchkey login` (through the CLI).
 *
 * A source that is not there is skipped; a source that is there but refuses
 * ends the chain. The first source that works is kept. Tokens are cached and
 * renewed ahead of expiry. Failing, the error lists what each source said.
 *
 * @example
 * ```ts
 * import { SecretClient } from '@azure/keyvault-secrets';
 * import { DefaultLatchkeyCredential } from 'latchkey/identity';
 * const client = new SecretClient('https://shop.vault.localhost:8443', new DefaultLatchkeyCredential());
 * const { value } = await client.getSecret('db-password');
 * ```
 */
export class DefaultLatchkeyCredential implements TokenCredential {
  private readonly sources: { name: string; credential: TokenCredential }[] = [];
  private selected: { name: string; credential: TokenCredential } | undefined;

  constructor(options: DefaultLatchkeyCredentialOptions = {}) {
    const env = options.env ?? process.env;
    const http: SdkHttpOptions = {
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.agent ? { agent: options.agent } : {}),
    };
    if (!options.excludeEnvironmentCredential)
      this.sources.push({
        name: 'EnvironmentCredential',
        credential: new EnvironmentLatchkeyCredential({ ...http, env }),
      });
    if (!options.excludeManagedIdentityCredential) {
      const hasSpSecret = !!(env.AZURE_CLIENT_SECRET || env.AZURE_CLIENT_CERTIFICATE_PATH);
      const clientId = options.managedIdentityClientId ?? (hasSpSecret ? undefined : env.AZURE_CLIENT_ID);
      this.sources.push({
        name: 'ManagedIdentityCredential',
        credential: new ManagedIdentityLatchkeyCredential({
          ...http,
          env,
          ...(clientId ? { clientId } : {}),
          ...(options.managedIdentityObjectId ? { objectId: options.managedIdentityObjectId } : {}),
          ...(options.managedIdentityResourceId ? { resourceId: options.managedIdentityResourceId } : {}),
        }),
      });
    }
    if (!options.excludeCliCredential)
      this.sources.push({
        name: 'LatchkeyCliCredential',
        credential: new LatchkeyCliCredential({ env, ...options.cli }),
      });
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    toScope(scopes); // one scope, or a TypeError before any source is tried
    if (this.selected) return (await this.selected.credential.getToken(scopes, options))!;
    const attempts: SourceAttempt[] = [];
    for (const s of this.sources) {
      try {
        const t = await s.credential.getToken(scopes, options);
        if (!t) throw new CredentialUnavailableError('no token');
        this.selected = s;
        return t;
      } catch (e) {
        attempts.push({ source: s.name, message: e instanceof Error ? e.message : String(e) });
        if (!(e instanceof CredentialUnavailableError)) break;
      }
    }
    throw new AggregateCredentialError(attempts);
  }

  /** Which source produced the tokens (after the first success). */
  get sourceName(): string | undefined {
    return this.selected?.name;
  }
}
