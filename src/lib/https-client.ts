import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import https from 'node:https';
import { createSecureContext, rootCertificates } from 'node:tls';

export interface HttpsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are narrowed by the callers that read them
  body: any;
  text: string;
}

export type HttpsRequest = (
  method: string,
  url: string,
  opts?: {
    headers?: Record<string, string>;
    json?: unknown;
    form?: Record<string, string>;
    timeoutMs?: number;
  },
) => Promise<HttpsResponse>;

/**
 * `*.localhost` is loopback (RFC 6761), also where the system resolver does not
 * say so: vault hosts such as `shop.vault.localhost` work everywhere.
 */
export function localhostLookup(
  hostname: string,
  options: { all?: boolean },
  cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, options as { all: true }, cb as never);
}

/**
 * The HTTPS client of the CLI and the identity endpoint (for the authority, the
 * management API and vaults): keep-alive, https only, responses bounded to
 * 4 MiB, trusts `ca` (the dev CA) in addition to the system roots.
 */
export function createHttpsClient(opts: { ca?: string | undefined; maxSockets?: number } = {}): {
  request: HttpsRequest;
  close(): void;
} {
  // Made with the first request: the secure context parses ~150 root certificates (~30 ms), which
  // a process that starts an identity endpoint need not spend before it is ready.
  let agent: https.Agent | undefined;
  const agentOf = () =>
    (agent ??= new https.Agent({
      keepAlive: true,
      maxSockets: opts.maxSockets ?? 16,
      // A private CA is trusted in addition to the system roots, not instead of them. One secure
      // context for every connection: parsing ~150 root certificates per connection is slow.
      ...(opts.ca ? { secureContext: createSecureContext({ ca: [...rootCertificates, opts.ca] }) } : {}),
      lookup: localhostLookup as never,
    }));
  const request: HttpsRequest = (method, url, o = {}) => {
    const u = new URL(url);
    if (u.protocol !== 'https:') return Promise.reject(new Error(`refusing a non-https URL: ${u.origin}`));
    const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
    let payload: Buffer | undefined;
    if (o.json !== undefined) {
      payload = Buffer.from(JSON.stringify(o.json));
      headers['content-type'] = 'application/json';
    } else if (o.form) {
      payload = Buffer.from(new URLSearchParams(o.form).toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    if (payload) headers['content-length'] = String(payload.length);
    return new Promise((resolve, reject) => {
      const req = https.request(
        u,
        { method, headers, agent: agentOf(), timeout: o.timeoutMs ?? 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > 4 * 1024 * 1024) req.destroy(new Error('response too large'));
            else chunks.push(c);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json') && text) {
              try {
                body = JSON.parse(text);
              } catch {}
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request to ${u.origin} timed out`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  };
  return { request, close: () => agent?.destroy() };
}

/** The `{error, error_description}` or `{error:{code,message}}` of a response, in one line, without trace ids. */
export function describeError(res: HttpsResponse): string {
  const b = res.body as
    | { error?: { code?: string; message?: string } | string; error_description?: string }
    | undefined;
  if (b && typeof b === 'object') {
    if (typeof b.error === 'object' && b.error) return `(${b.error.code}) ${b.error.message}`;
    if (typeof b.error === 'string')
      return `(${b.error}) ${(b.error_description ?? '').replace(/ Trace ID:.*$/s, '')}`;
  }
  return `HTTP ${res.status}`;
}
