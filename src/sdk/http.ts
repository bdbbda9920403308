import http from 'node:http';
import https from 'node:https';

export interface SdkHttpOptions {
  /** Extra CA certificate(s) to trust (PEM), e.g. the dev CA; NODE_EXTRA_CA_CERTS also works. */
  ca?: string | Buffer;
  /** An agent for https requests (overrides `ca`). */
  agent?: https.Agent;
}

export interface SdkResponse {
  status: number;
  body: unknown;
}

/** One request with an optional form body; JSON answers parsed. Rejects on network errors and timeouts. */
export function send(
  method: 'GET' | 'POST',
  url: string,
  opts: SdkHttpOptions & {
    headers?: Record<string, string>;
    form?: Record<string, string>;
    timeoutMs?: number;
    signal?: AbortSignal;
  } = {},
): Promise<SdkResponse> {
  const u = new URL(url);
  const payload = opts.form ? Buffer.from(new URLSearchParams(opts.form).toString()) : undefined;
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (payload) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = String(payload.length);
  }
  const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
  if (!mod) return Promise.reject(new Error(`unsupported URL scheme: ${u.protocol}`));
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method,
        headers,
        timeout: opts.timeoutMs ?? 30_000,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(u.protocol === 'https:' && opts.agent ? { agent: opts.agent } : {}),
        ...(u.protocol === 'https:' && !opts.agent && opts.ca ? { ca: opts.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {}
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${u.origin} timed out`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}
