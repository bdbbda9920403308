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

const contexts = new WeakMap<FastifyRequest, VaultRequestContext>();

export const setVaultContext = (req: FastifyRequest, ctx: VaultRequestContext): void => {
  contexts.set(req, ctx);
};

export function vaultContext(req: FastifyRequest): VaultRequestContext {
  const ctx = contexts.get(req);
  if (!ctx) throw new LatchkeyError('InternalError', 'The request has no vault context.');
  return ctx;
}
