/**
 * `latchkey/identity`: credentials for applications. Depends only on Node's
 * built-ins and `jose`; never on server code.
 */
export { type CliCredentialOptions, LatchkeyCliCredential } from './cli.js';
export { DefaultLatchkeyCredential, type DefaultLatchkeyCredentialOptions } from './default.js';
export { type EnvironmentCredentialOptions, EnvironmentLatchkeyCredential } from './environment.js';
export {
  AggregateCredentialError,
  AuthenticationError,
  CredentialUnavailableError,
  type SourceAttempt,
} from './errors.js';
export {
  type ManagedIdentityCredentialOptions,
  ManagedIdentityLatchkeyCredential,
} from './managed-identity.js';
export type { AccessToken, GetTokenOptions, TokenCredential } from './types.js';
