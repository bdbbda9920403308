import type { FastifyRequest } from 'fastify';
import type { RequestMeta } from '../access/caller.js';
import { clientAddressOf } from './client-address.js';

/** The client's address: the peer, or behind a trusted proxy the client it names (client-address.ts). */
export const clientIp = (req: FastifyRequest): string => clientAddressOf(req.raw);

export const requestMeta = (req: FastifyRequest): RequestMeta => ({
  requestId: String(req.id),
  clientIp: clientIp(req),
});

/** The `Host` header, lower-cased, or '' if absent or unreasonable. */
export function hostOf(req: { headers: { host?: string | undefined } }): string {
  const h = req.headers.host;
  return h && h.length <= 300 ? h.toLowerCase() : '';
}

/** `https://{host}` as the client reached us, when it is one of the accepted issuer bases; else the primary. */
export function issuerBaseOf(req: FastifyRequest, bases: readonly string[]): string {
  const candidate = `https://${hostOf(req)}`;
  return bases.includes(candidate) ? candidate : bases[0]!;
}

/** Reads a query parameter whose key a client may have percent-encoded (`api%2Dversion`). */
export function queryParam(req: FastifyRequest, name: string): string | undefined {
  const q = req.query as Record<string, unknown>;
  const v = q[name];
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  for (const [k, val] of Object.entries(q)) {
    let key = k;
    try {
      key = decodeURIComponent(k);
    } catch {}
    if (key.toLowerCase() === name.toLowerCase() && typeof val === 'string') return val;
  }
  return undefined;
}
