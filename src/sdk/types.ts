/**
 * The `@azure/core-auth` credential contract, declared structurally so the SDK
 * needs no Azure package: any `DefaultLatchkeyCredential` is a
 * `TokenCredential` to the official Key Vault clients.
 */
export interface AccessToken {
  token: string;
  /** Epoch milliseconds. */
  expiresOnTimestamp: number;
  /** Epoch milliseconds after which the token should be renewed. */
  refreshAfterTimestamp?: number;
  tokenType?: 'Bearer';
}

export interface GetTokenOptions {
  abortSignal?: AbortSignal;
  tenantId?: string;
  claims?: string;
  requestOptions?: { timeout?: number };
}

export interface TokenCredential {
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null>;
}

/** The resource of a single `{resource}/.default` scope (managed identity and CLI speak in resources). */
export function scopeToResource(scopes: string | string[]): string {
  const list = Array.isArray(scopes) ? scopes : [scopes];
  if (list.length !== 1 || !list[0])
    throw new TypeError('exactly one scope is supported, e.g. https://vault.localhost/.default');
  return list[0].replace(/\/\.default$/, '');
}

export const toScope = (scopes: string | string[]): string => {
  const list = Array.isArray(scopes) ? scopes : [scopes];
  if (list.length !== 1 || !list[0])
    throw new TypeError('exactly one scope is supported, e.g. https://vault.localhost/.default');
  return list[0];
};
