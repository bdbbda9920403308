/**
 * One error type with a closed set of codes. The HTTP status travels with the
 * code; the edge (src/http) decides the wire format (OAuth for the authority,
 * `{error:{code,message}}` for the vault and management planes).
 *
 * Messages are shown to clients: never put a secret, token or key in one.
 * Every code is listed in docs/errors.md (checked by test/errors.test.ts).
 */
export const ERROR_STATUS = {
  // Generic / management / vault (Azure-shaped: {error:{code,message}})
  BadParameter: 400,
  InvalidKeyVaultReference: 400,
  BadRequest: 400,
  InvalidFilterInQueryString: 400,
  // Microsoft Graph (the directory read API for the Azure CLI)
  Request_ResourceNotFound: 404,
  Request_UnsupportedQuery: 400,
  Request_BadRequest: 400,
  InvalidApiVersion: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  ResourceNotFound: 404,
  VaultNotFound: 404,
  SecretNotFound: 404,
  KeyNotFound: 404,
  CertificateNotFound: 404,
  PrincipalNotFound: 404,
  MethodNotAllowed: 405,
  Conflict: 409,
  ObjectIsBeingDeleted: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  Throttled: 429,
  // Provisioning keys and manifests (each tells the fix)
  ProvisioningKeyInvalid: 401,
  ProvisioningKeyExpired: 401,
  ProvisioningKeyRevoked: 401,
  ProvisioningKeyExhausted: 401,
  ProvisioningKeyAddressNotAllowed: 401,
  ProvisioningScopeMissing: 403,
  TenantMismatch: 400,
  ManifestInvalid: 400,
  UnknownRole: 400,
  InvalidReference: 400,
  InternalError: 500,
  ServiceUnavailable: 503,
  /** The store is full (or cannot write): the write was not carried out. */
  StorageFull: 503,
  // OAuth 2.0 (RFC 6749 §5.2), used by the authority's token endpoint
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  invalid_scope: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  temporarily_unavailable: 429,
  server_error: 500,
  // RFC 8628 §3.5: the device authorization grant's answers while the user has not finished
  authorization_pending: 400,
  slow_down: 400,
  expired_token: 400,
  access_denied: 400,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorOptions {
  /** Override the default status for the code (rare: e.g. 401 vs 400 for invalid_client). */
  status?: number;
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  headers?: Record<string, string>;
  /** The underlying error; never shown to clients. */
  cause?: unknown;
  /** Entra-style numeric error codes (AADSTS...), shown in OAuth errors. */
  aadCodes?: number[];
  /** Azure's `innererror.code` (e.g. `SecretDisabled` under a 403 `Forbidden`), shown in vault errors. */
  inner?: string;
}

export class LatchkeyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly aadCodes: number[];
  readonly inner: string | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LatchkeyError';
    this.code = code;
    this.status = options.status ?? ERROR_STATUS[code];
    this.headers = options.headers ?? {};
    this.aadCodes = options.aadCodes ?? [];
    this.inner = options.inner;
  }
}

export const isLatchkeyError = (e: unknown): e is LatchkeyError => e instanceof LatchkeyError;
