import type { IssuerFetch } from '../authority/federation.js';
import { type CacheStats, cacheStats } from '../lib/cache-stats.js';
import type { RelayStats } from '../storage/notify.js';

/** Upper bounds (seconds) of the request latency histogram. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Upper bounds (seconds) of the federation issuer fetch histogram (fetches time out at 5 s by default). */
const FETCH_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Upper bounds (seconds) of the job duration histogram. */
const JOB_BUCKETS = [0.01, 0.05, 0.25, 1, 5, 30, 120];

/** Requests of one route (template, never a raw URL) and method; create once per route, record per request. */
export interface RouteSeries {
  record(status: number, seconds: number): void;
}

/** Counts by bucket in plain numbers; rendered only when scraped. */
class Histogram {
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.buckets = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.count++;
    this.sum += v;
    for (let i = 0; i < this.bounds.length; i++) {
      if (v <= this.bounds[i]!) {
        this.buckets[i]!++;
        return;
      }
    }
  }
  lines(name: string, labels: string): string[] {
    const out: string[] = [];
    let acc = 0;
    this.bounds.forEach((le, i) => {
      acc += this.buckets[i]!;
      out.push(`${name}_bucket{${labels},le="${le}"} ${acc}`);
    });
    out.push(`${name}_bucket{${labels},le="+Inf"} ${this.count}`);
    out.push(`${name}_sum{${labels}} ${this.sum}`);
    out.push(`${name}_count{${labels}} ${this.count}`);
    return out;
  }
}

interface SeriesData extends RouteSeries {
  app: string;
  method: string;
  route: string;
  byStatus: Map<number, number>;
  latency: Histogram;
}

/** Grant types counted by name; anything else is `other` (labels stay a closed set). */
const GRANTS = new Set([
  'client_credentials',
  'password',
  'refresh_token',
  'authorization_code',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:ietf:params:oauth:grant-type:device_code',
]);

export type TokenResult = 'issued' | 'refused' | 'throttled' | 'error';
export type JobResult = 'ok' | 'skipped' | 'error';

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);
/** Observes `v` in the histogram of `key` (made with `bounds` on first use). */
const observeIn = (m: Map<string, Histogram>, key: string, bounds: readonly number[], v: number) => {
  let h = m.get(key);
  if (!h) {
    h = new Histogram(bounds);
    m.set(key, h);
  }
  h.observe(v);
};

/**
 * The node's Prometheus metrics. Everything is counted in plain numbers (a few
 * increments per request, tens of nanoseconds); prom-client is loaded on the
 * first scrape (or by `processMetrics()`), so a node that is never scraped
 * never pays for it at start-up. Labels are route templates, methods,
 * statuses, grant types, job and cache names: never a tenant, a principal, a
 * vault name or any other caller-chosen text.
 */
export function createMetrics() {
  const series: SeriesData[] = [];
  /** The same series by `app method route` (a lookup per route at start: ~450 routes). */
  const seriesByKey = new Map<string, SeriesData>();
  const caches: Record<
    | 'principal'
    | 'token'
    | 'access'
    | 'vault'
    | 'secret'
    | 'tenant'
    | 'client'
    | 'credential'
    | 'tenantSettings'
    | 'key',
    CacheStats
  > = {
    principal: cacheStats(),
    token: cacheStats(),
    access: cacheStats(),
    vault: cacheStats(),
    secret: cacheStats(),
    tenant: cacheStats(),
    client: cacheStats(),
    credential: cacheStats(),
    tenantSettings: cacheStats(),
    key: cacheStats(),
  };
  const tokens = new Map<string, number>();
  const jobRuns = new Map<string, number>();
  const jobSeconds = new Map<string, Histogram>();
  /** Issuer fetches by `{document}|{outcome}`, and their durations by document. */
  const issuerFetches = new Map<string, number>();
  const issuerFetchSeconds = new Map<string, Histogram>();
  let relay: { stats: RelayStats; connected(): boolean } | undefined;
  let registry: Promise<import('prom-client').Registry> | undefined;

  /** prom-client: the registry of the counters above (read when scraped) and the process metrics. */
  const load = async () => {
    const { collectDefaultMetrics, Counter, Gauge, Registry } = await import('prom-client');
    const r = new Registry();
    const fromMap = (name: string, help: string, labels: string[], m: Map<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: labels,
        registers: [r],
        collect() {
          this.reset();
          for (const [key, v] of m) {
            const parts = key.split('|');
            this.inc(Object.fromEntries(labels.map((l, i) => [l, parts[i]!])), v);
          }
        },
      });
    fromMap(
      'latchkey_tokens_total',
      'Token endpoint requests by grant type and result (issued, refused, throttled, error).',
      ['grant', 'result'],
      tokens,
    );
    fromMap(
      'latchkey_job_runs_total',
      'Background job rounds by job and result (ok; skipped: another node holds the lock; error).',
      ['job', 'result'],
      jobRuns,
    );
    fromMap(
      'latchkey_federation_issuer_fetches_total',
      'Workload identity federation: fetches of external issuers by document (discovery, jwks) and outcome (ok, http_error, too_large, timeout, invalid, network_error).',
      ['document', 'outcome'],
      issuerFetches,
    );
    new Counter({
      name: 'latchkey_cache_requests_total',
      help: 'In-memory cache lookups by cache and result (hit, miss).',
      labelNames: ['cache', 'result'],
      registers: [r],
      collect() {
        this.reset();
        for (const [cache, s] of Object.entries(caches)) {
          this.inc({ cache, result: 'hit' }, s.hits);
          this.inc({ cache, result: 'miss' }, s.misses);
        }
      },
    });
    if (relay) {
      const rel = relay;
      new Gauge({
        name: 'latchkey_change_relay_connected',
        help: '1 while the PostgreSQL LISTEN connection of the change relay is up.',
        registers: [r],
        collect() {
          this.set(rel.connected() ? 1 : 0);
        },
      });
      const counter = (name: string, help: string, pick: (s: RelayStats) => number) =>
        new Counter({
          name,
          help,
          registers: [r],
          collect() {
            this.reset();
            this.inc(pick(rel.stats));
          },
        });
      counter('latchkey_change_notifications_sent_total', 'Change notifications sent.', (s) => s.sent);
      counter(
        'latchkey_change_notifications_received_total',
        'Change notifications heard (own ones included).',
        (s) => s.received,
      );
      counter(
        'latchkey_change_relay_reconnects_total',
        'Reconnections of the LISTEN connection.',
        (s) => s.reconnects,
      );
      counter(
        'latchkey_cache_resyncs_total',
        'Times every cache was emptied (relay connected, or a gap).',
        (s) => s.resyncs,
      );
    }
    collectDefaultMetrics({ register: r });
    return r;
  };

  const renderHistograms = (): string => {
    const out: string[] = [
      '# HELP latchkey_http_requests_total HTTP requests by app (main, vault), method, route template and status.',
      '# TYPE latchkey_http_requests_total counter',
    ];
    const base = (s: SeriesData) => `app="${s.app}",method="${s.method}",route="${esc(s.route)}"`;
    for (const s of series)
      for (const [status, n] of s.byStatus)
        out.push(`latchkey_http_requests_total{${base(s)},status="${status}"} ${n}`);
    out.push(
      '',
      '# HELP latchkey_http_request_duration_seconds HTTP request latency by app, method and route template.',
      '# TYPE latchkey_http_request_duration_seconds histogram',
    );
    for (const s of series)
      if (s.latency.count) out.push(...s.latency.lines('latchkey_http_request_duration_seconds', base(s)));
    out.push(
      '',
      '# HELP latchkey_job_run_duration_seconds Duration of background job runs that held the lock.',
      '# TYPE latchkey_job_run_duration_seconds histogram',
    );
    for (const [job, h] of jobSeconds)
      out.push(...h.lines('latchkey_job_run_duration_seconds', `job="${esc(job)}"`));
    out.push(
      '',
      '# HELP latchkey_federation_issuer_fetch_duration_seconds Duration of external issuer fetches (any outcome) by document.',
      '# TYPE latchkey_federation_issuer_fetch_duration_seconds histogram',
      ...[...issuerFetchSeconds].flatMap(([document, h]) =>
        h.lines('latchkey_federation_issuer_fetch_duration_seconds', `document="${document}"`),
      ),
    );
    return `${out.join('\n')}\n`;
  };

  return {
    caches,
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    /** The series of one route (app, method, route template). */
    route(app: 'main' | 'vault', method: string, route: string): RouteSeries {
      const key = `${app} ${method} ${route}`;
      const existing = seriesByKey.get(key);
      if (existing) return existing;
      const s: SeriesData = {
        app,
        method,
        route,
        byStatus: new Map(),
        latency: new Histogram(LATENCY_BUCKETS),
        record(status, seconds) {
          this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
          this.latency.observe(seconds);
        },
      };
      series.push(s);
      seriesByKey.set(key, s);
      return s;
    },
    token(grantType: unknown, status: number): void {
      const grant = typeof grantType === 'string' && GRANTS.has(grantType) ? grantType : 'other';
      const result: TokenResult =
        status < 300 ? 'issued' : status === 429 ? 'throttled' : status >= 500 ? 'error' : 'refused';
      bump(tokens, `${grant}|${result}`);
    },
    job(name: string, result: JobResult, ms: number): void {
      bump(jobRuns, `${name}|${result}`);
      if (result === 'ok') observeIn(jobSeconds, name, JOB_BUCKETS, ms / 1000);
    },
    /** One fetch of a federation issuer's discovery document or JWKS (src/authority/federation.ts). */
    issuerFetch(f: IssuerFetch): void {
      bump(issuerFetches, `${f.document}|${f.outcome}`);
      observeIn(issuerFetchSeconds, f.document, FETCH_BUCKETS, f.seconds);
    },
    /** Attaches the change relay's counters (PostgreSQL only; before the first scrape). */
    attachRelay(r: { stats: RelayStats; connected(): boolean }): void {
      relay = r;
    },
    /**
     * Loads prom-client and starts the Node.js process metrics (CPU, memory, event-loop lag,
     * GC). `latchkey server` does so once it is ready; otherwise the first scrape does (CPU
     * then counts from there).
     */
    processMetrics(): Promise<unknown> {
      registry ??= load();
      return registry;
    },
    /** The Prometheus text exposition. */
    async render(): Promise<string> {
      registry ??= load();
      // prom-client 15 writes NaN as `Nan` (the event-loop lag before its first sample); the text
      // format's spelling is `NaN`, which strict parsers require.
      const process = (await (await registry).metrics()).replace(/ Nan$/gm, ' NaN');
      return `${process}\n${renderHistograms()}`;
    },
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
