import type { RootKey } from '../crypto/root-key.js';

/** Limits that protect the server; all configurable, all with safe defaults (docs/configuration.md). */
export interface Limits {
  /** Maximum request body in bytes (a 25 KiB secret value fits with room for JSON escaping). */
  bodyBytes: number;
  /** Maximum size of all request headers in bytes. */
  headerBytes: number;
  /** A request must complete within this many milliseconds. */
  requestTimeoutMs: number;
  /** Maximum concurrent connections per listener. */
  maxConnections: number;
  /** Failed client authentications per client (and per address) in `failureWindowMs` before 429. */
  authFailureLimit: number;
  authFailureWindowMs: number;
  /** Failures after which each further failure is slowed down by this many ms × excess. */
  authFailureSlowAfter: number;
  authFailureDelayMs: number;
  /** Deepest JSON nesting accepted in a request body. */
  jsonDepth: number;
  /** Requests per second (sustained) and burst per client address; 0 disables. */
  perAddressRate: number;
  perAddressBurst: number;
  /** Requests per second (sustained) and burst per authenticated principal; 0 disables. */
  perPrincipalRate: number;
  perPrincipalBurst: number;
  /** The longest expiry a provisioning key may be given, in seconds. */
  provisioningKeyMaxSeconds: number;
  /** A web console session ends after this many seconds without a request (idle timeout). */
  consoleSessionIdleSeconds: number;
  /** A web console session ends this many seconds after sign-in, active or not (absolute timeout). */
  consoleSessionMaxSeconds: number;
  /** The authority's active signing key is replaced once it is this old (seconds; 0: only by hand). */
  signingKeyMaxAgeSeconds: number;
  /** A rotation on request waits at least this long after the previous rotation (seconds). */
  signingKeyRotationIntervalSeconds: number;
  /** At most this many signing keys are published in JWKS (the active one and previous ones in their overlap). */
  signingKeyMaxPublished: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  bodyBytes: 256 * 1024,
  headerBytes: 16 * 1024,
  requestTimeoutMs: 30_000,
  maxConnections: 10_000,
  authFailureLimit: 10,
  authFailureWindowMs: 60_000,
  authFailureSlowAfter: 3,
  authFailureDelayMs: 200,
  jsonDepth: 32,
  perAddressRate: 5_000,
  perAddressBurst: 10_000,
  perPrincipalRate: 2_000,
  perPrincipalBurst: 4_000,
  provisioningKeyMaxSeconds: 30 * 86_400,
  consoleSessionIdleSeconds: 30 * 60,
  consoleSessionMaxSeconds: 8 * 3600,
  signingKeyMaxAgeSeconds: 30 * 86_400,
  signingKeyRotationIntervalSeconds: 600,
  signingKeyMaxPublished: 5,
});

export interface TokenPolicy {
  /** Access-token lifetime is drawn uniformly from [minSeconds, maxSeconds] (Entra: 60–90 min). */
  minSeconds: number;
  maxSeconds: number;
  /** JWS algorithm for access tokens. ES256 is fast; RS256 matches Entra exactly. */
  signingAlg: 'ES256' | 'RS256';
  /** How long a retired signing key stays in JWKS after rotation (≥ the longest token lifetime). */
  rotationOverlapSeconds: number;
}

/**
 * The proxies in front of a node, whose word on the client's address is taken
 * (src/http/client-address.ts): by a PROXY protocol header at the start of each
 * connection (TLS passthrough) or by `X-Forwarded-For` (re-encryption).
 */
export interface ProxySettings {
  /** Addresses or CIDR ranges of the proxies. */
  trusted: readonly string[];
  via: 'proxy-protocol' | 'x-forwarded-for';
}

/**
 * Workload identity federation (docs/federation.md): which external OIDC
 * issuers federated identity credentials may trust. Latchkey fetches keys only
 * from these issuers (HTTPS, bounded), so a credential is no path to other addresses.
 */
export interface FederationSettings {
  /** Issuer URLs, exactly as the tokens' `iss` (e.g. https://token.actions.githubusercontent.com). */
  allowedIssuers: readonly string[];
  /** CA certificates (PEM) trusted for the issuers' TLS besides the system's (a private issuer's CA). */
  caPem?: string;
  /** Time allowed for one discovery or JWKS fetch, ms (default 5000). */
  fetchTimeoutMs?: number;
}

export interface Config {
  mode: 'dev' | 'production';
  dataDir: string;
  storageUrl: string;
  /** Address the HTTPS listener binds to. */
  bindHost: string;
  port: number;
  /** The host name clients use (in issued URLs and the issuer). */
  publicHost: string;
  /** Extra host names accepted as the authority's issuer host (e.g. 127.0.0.1). */
  issuerHostAliases: string[];
  vaultDomain: string;
  /** The audience (resource) of the management API. */
  managementResource: string;
  tls: { cert: string; key: string; caCertPath?: string };
  rootKey: RootKey;
  token: TokenPolicy;
  limits: Limits;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';
  /** The port clients use when it is not the bound one (a load balancer in front): issuer and vault URLs. */
  publicPort?: number;
  /** When set, `GET /metrics` requires `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** The load balancers or proxies in front of this node and how they pass the client's address. */
  proxies?: ProxySettings;
  /** External issuers trusted by federated identity credentials (none: federation refused). */
  federation?: FederationSettings;
  /**
   * Audiences besides `api://AzureADTokenExchange` (always allowed) that any principal may get a
   * token for, e.g. from its identity endpoint, to present to another system as a federated token
   * (docs/federation.md, "Latchkey as an issuer").
   */
  tokenExchangeAudiences?: readonly string[];
}

/** Azure's audience for tokens exchanged through federated identity credentials. */
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

/** An operator-allowed exchange audience: an `api://`, `https://` or `urn:` URI of at most 200 characters. */
export function validExchangeAudience(a: string): boolean {
  return /^(api:\/\/|https:\/\/|urn:)[^\s?#]{1,190}$/i.test(a) && !a.endsWith('/');
}

/** The audiences a principal may ask a token for to exchange elsewhere: Azure's and the operator's. */
export function exchangeAudiences(config: Pick<Config, 'tokenExchangeAudiences'>): readonly string[] {
  return [TOKEN_EXCHANGE_AUDIENCE, ...(config.tokenExchangeAudiences ?? [])];
}

export const DEFAULT_TOKEN_POLICY: TokenPolicy = Object.freeze({
  minSeconds: 3600,
  maxSeconds: 5400,
  signingAlg: 'ES256',
  rotationOverlapSeconds: 2 * 3600,
});

export const DEFAULT_VAULT_DOMAIN = 'vault.localhost';
export const DEFAULT_MANAGEMENT_RESOURCE = 'https://management.latchkey.localhost';

/** Deep-freezes a config object so nothing can change it after validation. */
export function freezeConfig<T extends object>(o: T): Readonly<T> {
  for (const v of Object.values(o)) {
    if (v && typeof v === 'object' && !Object.isFrozen(v) && !Buffer.isBuffer(v)) freezeConfig(v as object);
  }
  return Object.freeze(o);
}

/** Parses a duration like `90s`, `15m`, `12h`, `30d` into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,9})(s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text.slice(0, 32)}" (use e.g. 90s, 15m, 12h, 30d)`);
  const n = Number(m[1]);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return n * unit;
}
