import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import { LatchkeyError } from '../errors/index.js';
import type { Metrics } from '../server/metrics.js';

type Hook = (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;

/**
 * Counts requests by route template and status, with latency, for /metrics.
 * Call before registering routes: each route gets its own `onResponse` hook
 * bound to its series (no lookup per request); unmatched requests (404s)
 * share one series. The token routes also count issuance by grant type.
 * Routes declared with `config: { forwarded: true }` are not counted.
 */
export function instrumentHttp(app: FastifyInstance, metrics: Metrics, name: 'main' | 'vault'): void {
  app.addHook('onRoute', (route) => {
    // A route that hands its requests to another app (the console's, src/server/console-app.ts)
    // is counted there, under the routes that answer.
    if ((route.config as { forwarded?: boolean } | undefined)?.forwarded) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const url = route.url;
    const bySeries = new Map(methods.map((m) => [m, metrics.route(name, m, url)]));
    const one = methods.length === 1 ? bySeries.get(methods[0]!) : undefined;
    const isToken = name === 'main' && /\/oauth2\/(v2\.0\/)?token$/.test(url) && methods.includes('POST');
    const hook: Hook = isToken
      ? (req, reply, done) => {
          (one ?? bySeries.get(req.method))?.record(reply.statusCode, reply.elapsedTime / 1000);
          if (req.method === 'POST')
            metrics.token((req.body as { grant_type?: unknown } | undefined)?.grant_type, reply.statusCode);
          done();
        }
      : (req, reply, done) => {
          (one ?? bySeries.get(req.method))?.record(reply.statusCode, reply.elapsedTime / 1000);
          done();
        };
    const existing = route.onResponse;
    route.onResponse = (
      existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook]
    ) as onResponseHookHandler[];
  });
  const unmatched = new Map<string, ReturnType<Metrics['route']>>();
  app.addHook('onResponse', (req, reply, done) => {
    if (req.is404) {
      let s = unmatched.get(req.method);
      if (!s) {
        s = metrics.route(name, req.method, 'unmatched');
        unmatched.set(req.method, s);
      }
      s.record(reply.statusCode, reply.elapsedTime / 1000);
    }
    done();
  });
}

/**
 * `GET /metrics` (Prometheus text format). With a token configured, callers
 * must send `Authorization: Bearer <token>` (compared in constant time);
 * without one it is open, and holds no tenant, principal or vault name.
 */
export async function metricsRoute(app: FastifyInstance, opts: { metrics: Metrics; token?: string }) {
  const digest = (v: string) => createHash('sha256').update(v).digest();
  const expected = opts.token ? digest(`Bearer ${opts.token}`) : undefined;
  app.get('/metrics', async (req, reply) => {
    if (expected) {
      if (!timingSafeEqual(digest(req.headers.authorization ?? ''), expected))
        throw new LatchkeyError('Unauthorized', 'The metrics endpoint needs its bearer token.', {
          headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' },
        });
    }
    reply.header('content-type', opts.metrics.contentType).header('cache-control', 'no-store');
    return opts.metrics.render();
  });
}
