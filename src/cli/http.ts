import {
  createHttpsClient,
  describeError,
  type HttpsResponse,
  localhostLookup,
} from '../lib/https-client.js';
import { CliError } from './errors.js';
import { info, loggableUrl } from './log.js';

export { localhostLookup };
export type HttpResponse = HttpsResponse;

// One keep-alive client per trusted CA.
const clients = new Map<string, ReturnType<typeof createHttpsClient>>();
const clientFor = (ca: string | undefined) => {
  let c = clients.get(ca ?? '');
  if (!c) {
    c = createHttpsClient(ca ? { ca } : {});
    clients.set(ca ?? '', c);
  }
  return c;
};

/** One HTTPS request with a JSON or form body, trusting `ca` (the dev CA) too; failures become one-line CliErrors. */
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
  const { ca, ...rest } = opts;
  const started = performance.now();
  const took = () => `${Math.round(performance.now() - started)} ms`;
  try {
    const res = await clientFor(ca).request(method, url, rest);
    info(`${method} ${loggableUrl(url)} -> ${res.status} (${took()})`);
    return res;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    info(`${method} ${loggableUrl(url)} -> ${e.code ?? 'failed'} (${took()})`);
    throw new CliError(
      e.code === 'ECONNREFUSED'
        ? `cannot reach ${u.origin} (is \`latchkey up\` running?)`
        : e.code === 'SELF_SIGNED_CERT_IN_CHAIN' || e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'
          ? `${u.origin} presented a certificate this CLI does not trust (set LATCHKEY_CA_FILE or --ca-file)`
          : `request to ${u.origin} failed: ${e.message}`,
    );
  }
}

/** The message of an Azure- or OAuth-shaped error body. */
export const errorMessage = describeError;
