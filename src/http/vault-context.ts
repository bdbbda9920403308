import type { FastifyRequest } from 'fastify';
import { LatchkeyError } from '../errors/index.js';
import type { SecretCallContext } from '../vault/secrets.js';

/** The authenticated caller and vault of a data-plane request (set by the vault app's onRequest hook). */
export interface VaultRequestContext extends SecretCallContext {
  /** `https://{host the client used}`: the base of ids and nextLinks in responses. */
  responseBase: string;
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

/** api-version values the data plane accepts: 7.0–7.6 (and previews), 2016-10-01, 2025-07-01. */
export const VAULT_API_VERSION_RE = /^(7\.[0-6](-preview(\.\d{1,2})?)?|2016-10-01|2025-07-01(-preview)?)$/;
