import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger as Logger } from 'fastify';
import { createClientAddresses } from '../http/client-address.js';
import type { RequestHandler } from '../http/fastify.js';
import { hostOf } from '../http/request.js';
import type { ServedApp } from '../http/served-app.js';
import { createMainApp } from './main-app.js';
import type { Services } from './services.js';

export interface RunningServer {
  port: number;
  /**
   * Graceful stop: no new connections; requests in flight finish (each connection
   * closes once it is idle) for up to `drainMs` (default 5 s), after which the
   * remaining connections are cut.
   */
  close(opts?: { drainMs?: number }): Promise<void>;
}

/**
 * The HTTPS listener. Routes by Host: `{vault}.{vaultDomain}` to the vault
 * data plane, anything else to the authority, management API and console.
 */
export async function listenHttps(
  services: Services,
  logger: Logger,
  opts: { host: string; port: number },
): Promise<RunningServer> {
  const { config } = services;
  const main = await createMainApp(services, logger);
  // The vault data plane: built on the first request to a vault host (its modules and ~100
  // routes are not needed for the ready line: docs/performance.md, cold start).
  const vault = onFirstRequest(
    async () => (await import('../http/vault-app.js')).createVaultApp(services, logger),
    logger,
  );
  const suffix = `.${config.vaultDomain}`;
  let draining = false;
  const clients = config.proxies ? createClientAddresses(config.proxies, logger) : undefined;
  const server = https.createServer(
    {
      cert: config.tls.cert,
      key: config.tls.key,
      maxHeaderSize: config.limits.headerBytes,
      requestTimeout: config.limits.requestTimeoutMs,
      headersTimeout: Math.min(config.limits.requestTimeoutMs, 20_000),
      // Node checks the timeouts above on this interval (default 30 s): keep it well under the timeout.
      connectionsCheckingInterval: Math.max(
        250,
        Math.min(30_000, Math.floor(config.limits.requestTimeoutMs / 4)),
      ),
      keepAliveTimeout: 65_000,
      minVersion: 'TLSv1.2',
    },
    (req, res) => {
      // While draining, every answer ends its connection (the client reconnects to another node).
      if (draining) res.setHeader('connection', 'close');
      clients?.resolve(req);
      const host = hostOf(req).replace(/:\d+$/, '');
      if (host.endsWith(suffix)) vault.handler(req, res);
      else main.handler(req, res);
    },
  );
  server.maxConnections = config.limits.maxConnections;
  clients?.install(server);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Too many/too large headers → 431, a request slower than the timeout → 408, anything else → 400.
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  services.setBoundPort(port);
  return {
    port,
    async close(opts = {}) {
      draining = true;
      // The callback runs once every connection has ended (not when the listener closes).
      const ended = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      // Keep-alive connections close as soon as their request in flight is answered.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const forced = setTimeout(() => server.closeAllConnections(), opts.drainMs ?? 5_000);
      await ended;
      clearInterval(sweep);
      clearTimeout(forced);
      await Promise.all([main.app.close(), vault.close()]);
    },
  };
}

/**
 * An app built by its first request and reused by every later one (requests that arrive while
 * it is built wait for it); a build that fails answers 503 and is tried again by the next request.
 */
function onFirstRequest(
  build: () => Promise<ServedApp>,
  logger: Logger,
): { handler: RequestHandler; close(): Promise<void> } {
  let built: ServedApp | undefined;
  let building: Promise<ServedApp> | undefined;
  return {
    handler(req, res) {
      if (built) {
        built.handler(req, res);
        return;
      }
      building ??= build().then(
        (a) => {
          built = a;
          return a;
        },
        (e: unknown) => {
          building = undefined;
          throw e;
        },
      );
      const pending = building;
      pending.then(
        (a) => a.handler(req, res),
        (err: unknown) => {
          logger.error({ err }, 'the vault app could not be built');
          if (res.headersSent) {
            res.destroy();
            return;
          }
          res.statusCode = 503;
          res.setHeader('retry-after', '1');
          res.setHeader('content-type', 'application/json; charset=utf-8');
          res.end(
            JSON.stringify({
              error: { code: 'ServiceUnavailable', message: 'The service is not available. Try again.' },
            }),
          );
        },
      );
    },
    async close() {
      const a = built ?? (await building?.catch(() => undefined));
      await a?.app.close();
    },
  };
}
