import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import https from 'node:https';
import { CliError } from './errors.js';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text: string;
}

/**
 * Resolves `*.localhost` to loopback itself (RFC 6761), so vault hosts such as
 * `shop.vault.localhost` work even where the system resolver does not do so.
 */
export function localhostLookup(
  hostname: string,
  options: { all?: boolean; family?: number },
  cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, options as { all: true }, cb as never);
}

const agents = new Map<string, https.Agent>();
function agentFor(ca: string | undefined): https.Agent {
  const key = ca ?? '';
  let a = agents.get(key);
  if (!a) {
    a = new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}), lookup: localhostLookup as never });
    agents.set(key, a);
  }
  return a;
}

/** One HTTPS request with a JSON or form body; trusts `ca` (the dev CA) in addition to nothing else when given. */
export async function request(
  method: string,
  url: string,
  opts: {
    ca?: string;
    headers?: Record<string, string>;
    json?: unknown;
    form?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<HttpResponse> {
  const u = new URL(url);
  if (u.protocol !== 'https:') throw new CliError(`refusing a non-https URL: ${u.origin}`);
  let payload: Buffer | undefined;
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (opts.json !== undefined) {
    payload = Buffer.from(JSON.stringify(opts.json));
    headers['content-type'] = 'application/json';
  } else if (opts.form) {
    payload = Buffer.from(new URLSearchParams(opts.form).toString());
    headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  if (payload) headers['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const req = https.request(
      u,
      { method, headers, agent: agentFor(opts.ca), timeout: opts.timeoutMs ?? 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
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
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      reject(
        new CliError(
          e.code === 'ECONNREFUSED'
            ? `cannot reach ${u.origin} (is \`latchkey up\` running?)`
            : e.code === 'SELF_SIGNED_CERT_IN_CHAIN' || e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'
              ? `${u.origin} presented a certificate this CLI does not trust (set LATCHKEY_CA_FILE or --ca-file)`
              : `request to ${u.origin} failed: ${e.message}`,
        ),
      );
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** The message of an Azure- or OAuth-shaped error body. */
export function errorMessage(res: HttpResponse): string {
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
