import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import type { Authenticate } from '../auth.js';
import { issuerBaseOf, queryParam, requestMeta } from '../request.js';
import { parse } from '../validate.js';

const DEFAULT_TOP = 100;
const MAX_TOP = 500;

const query = z.object({
  vault: z.string().min(1).max(64).optional(),
  caller: z.string().min(1).max(255).optional(),
  operation: z.string().min(1).max(100).optional(),
  target: z.string().min(1).max(2000).optional(),
  provisioningKey: z.string().min(1).max(100).optional(),
  from: z.string().min(1).max(40).optional(),
  to: z.string().min(1).max(40).optional(),
  top: z
    .string()
    .regex(/^\d{1,4}$/, 'must be a number')
    .optional(),
  skiptoken: z.string().min(1).max(100).optional(),
});

/** ISO 8601 or epoch milliseconds. */
function parseTime(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const t = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t))
    throw new LatchkeyError('BadParameter', `Invalid ${name}: use ISO 8601 or epoch ms.`);
  return t;
}

/** The opaque paging cursor: the seq below which the next page starts. */
export const encodeSkipToken = (seq: number): string => Buffer.from(`s:${seq}`).toString('base64url');
function decodeSkipToken(token: string): number {
  const m = /^s:(\d{1,15})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!m) throw new LatchkeyError('BadParameter', 'Invalid skiptoken.');
  return Number(m[1]);
}

/** The audit API: `GET /api/audit` (filters, newest first, nextLink paging) and `POST /api/audit/verify`. */
export async function auditRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'auditQueries' | 'config' | 'issuerBases'>; authenticate: Authenticate },
) {
  const s = opts.services;
  const caller = (req: FastifyRequest) => opts.authenticate(req, [s.config.managementResource]);

  app.get('/api/audit', async (req) => {
    const c = await caller(req);
    const names = [
      'vault',
      'caller',
      'operation',
      'target',
      'provisioningKey',
      'from',
      'to',
      'top',
      'skiptoken',
    ] as const;
    const raw: Record<string, string> = {};
    for (const n of names) {
      const v =
        queryParam(req, n) ?? (n === 'top' || n === 'skiptoken' ? queryParam(req, `$${n}`) : undefined);
      if (v !== undefined) raw[n] = v;
    }
    const q = parse(query, raw, 'query');
    const top = q.top === undefined ? DEFAULT_TOP : Number(q.top);
    if (top < 1 || top > MAX_TOP) throw new LatchkeyError('BadParameter', `Invalid top: 1–${MAX_TOP}.`);
    const from = parseTime(q.from, 'from');
    const to = parseTime(q.to, 'to');
    const before = q.skiptoken === undefined ? undefined : decodeSkipToken(q.skiptoken);
    const page = await s.auditQueries.list(c, requestMeta(req), {
      ...(q.vault ? { vault: q.vault } : {}),
      ...(q.caller ? { caller: q.caller } : {}),
      ...(q.operation ? { operation: q.operation } : {}),
      ...(q.target ? { target: q.target } : {}),
      ...(q.provisioningKey ? { provisioningKeyId: q.provisioningKey } : {}),
      ...(from !== undefined ? { from } : {}),
      ...(to !== undefined ? { to } : {}),
      ...(before !== undefined ? { before } : {}),
      limit: top,
    });
    let nextLink: string | null = null;
    if (page.more && page.last !== undefined) {
      const params = new URLSearchParams({ ...raw, top: String(top), skiptoken: encodeSkipToken(page.last) });
      nextLink = `${issuerBaseOf(req, s.issuerBases())}/api/audit?${params.toString()}`;
    }
    return { value: page.events, nextLink };
  });

  app.post('/api/audit/verify', async (req) => s.auditQueries.verify(await caller(req), requestMeta(req)));
}
