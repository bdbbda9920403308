import type { FastifyRequest } from 'fastify';
import { LatchkeyError } from '../errors/index.js';
import type { SecretCallContext } from '../vault/secrets.js';

/** The authenticated caller and vault of a data-plane request (set by the vault app's onRequest hook). */
export interface VaultRequestContext extends SecretCallContext {
  /** `https://{host the client used}`: the base of ids and nextLinks in responses. */
  responseBase: string;
  /** The api-version the client sent (echoed in nextLinks); docs/vault.md says how it is served. */
  apiVersion: string;
}

// On the request itself under a private symbol (a WeakMap entry per request cost more: issue 19).
const CONTEXT: unique symbol = Symbol('latchkey.vaultContext');
type WithContext = FastifyRequest & { [CONTEXT]?: VaultRequestContext };

export const setVaultContext = (req: FastifyRequest, ctx: VaultRequestContext): void => {
  (req as WithContext)[CONTEXT] = ctx;
};

export function vaultContext(req: FastifyRequest): VaultRequestContext {
  const ctx = (req as WithContext)[CONTEXT];
  if (!ctx) throw new LatchkeyError('InternalError', 'The request has no vault context.');
  return ctx;
}
