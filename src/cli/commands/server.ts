import { Command, Option } from 'commander';
import type { FastifyBaseLogger } from 'fastify';
import { collectLimit, LIMIT_FLAG_NAMES, parseLimitFlags } from '../../config/limits.js';
import { CliError } from '../errors.js';
import { portError, waitForSignal } from './up.js';

/** `latchkey server`: the production server (explicit TLS, root key and storage). */
export function serverCommand(): Command {
  return new Command('server')
    .description('Run a production Latchkey node (refuses development defaults)')
    .option('--tls-cert <pem>', 'TLS certificate chain (PEM); env LATCHKEY_TLS_CERT')
    .option('--tls-key <pem>', 'TLS private key (PEM, mode 0600); env LATCHKEY_TLS_KEY')
    .option(
      '--root-key-file <file>',
      'root key file (base64 of 32 bytes, mode 0600); or env LATCHKEY_ROOT_KEY',
    )
    .option('--storage <url>', 'sqlite:/path/to/db or postgres://...; env LATCHKEY_STORAGE_URL')
    .option('--host <host>', 'bind address', '0.0.0.0')
    .option('--port <port>', 'HTTPS port', (v) => Number(v), 443)
    .option('--public-host <host>', 'host name clients use; env LATCHKEY_PUBLIC_HOST')
    .option(
      '--public-port <port>',
      'port clients use, when a load balancer listens on another port than this node (default: --port)',
      (v) => parseBounded(v, 1, 65535, '--public-port'),
    )
    .option('--vault-domain <domain>', 'DNS suffix of vault hosts; env LATCHKEY_VAULT_DOMAIN')
    .option('--management-resource <uri>', 'audience of the management API')
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['fatal', 'error', 'warn', 'info', 'debug'])
        .default('info'),
    )
    .option('--json', 'print one JSON line on stdout when ready')
    .option(
      '--bootstrap-admin <file>',
      'first start only: create the tenant and an admin user, writing its password to this new 0600 file',
    )
    .option('--tenant-domain <domain>', 'domain of the tenant created by --bootstrap-admin', 'latchkey.local')
    .option(
      '--limit <name=value>',
      `override a protective limit (repeatable; docs/configuration.md): ${LIMIT_FLAG_NAMES.join(', ')}`,
      collectLimit,
    )
    .option(
      '--metrics-token-file <file>',
      'require this bearer token (file, mode 0600) on GET /metrics; env LATCHKEY_METRICS_TOKEN',
    )
    .option(
      '--trusted-proxy <address|cidr>',
      'a load balancer in front of this node, whose word on the client address is taken (repeatable); env LATCHKEY_TRUSTED_PROXIES (comma-separated)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--proxy-protocol',
      'the trusted proxies send a PROXY protocol header (v1 or v2) on each connection (TLS passthrough); without it, their X-Forwarded-For is read',
    )
    .option(
      '--drain-timeout <seconds>',
      'on SIGTERM, how long requests in flight may take to finish',
      (v) => parseBounded(v, 0, 3600, '--drain-timeout'),
      10,
    )
    .option(
      '--job-interval <name=ms>',
      'run a background job at another interval, in milliseconds (repeatable; e.g. vault-purge=10000)',
      collectJobInterval,
    )
    .action(async (o) => {
      // Loaded on demand (see up.ts): keeps every other command fast to start.
      const { loadProductionConfig } = await import('../../server/production.js');
      const { createLogger } = await import('../../server/logger.js');
      const { createServices } = await import('../../server/services.js');
      const { installationStore } = await import('../../storage/server/installation-store.js');
      const { listenHttps } = await import('../../server/listen.js');
      let config: ReturnType<typeof loadProductionConfig>;
      try {
        config = loadProductionConfig(
          {
            tlsCert: o.tlsCert,
            tlsKey: o.tlsKey,
            rootKeyFile: o.rootKeyFile,
            storage: o.storage,
            host: o.host,
            port: o.port,
            publicHost: o.publicHost,
            publicPort: o.publicPort,
            vaultDomain: o.vaultDomain,
            managementResource: o.managementResource,
            logLevel: o.logLevel,
            limits: parseLimitFlags(o.limit ?? []),
            metricsTokenFile: o.metricsTokenFile,
            trustedProxies: o.trustedProxy,
            proxyProtocol: o.proxyProtocol === true,
          },
          process.env,
        );
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      const logger = createLogger(config.logLevel);
      const services = await createServices(config, { log: logger });
      const intervals = (o.jobInterval ?? {}) as Record<string, number>;
      const unknownJob = Object.keys(intervals).find((n) => !services.jobs.names().includes(n));
      if (unknownJob) {
        await services.close();
        throw new CliError(
          `--job-interval: no job named ${unknownJob}; jobs: ${services.jobs.names().join(', ')}`,
        );
      }
      const bootstrapped = await installationStore.defaultTenant(services.db);
      if (!bootstrapped) {
        if (!o.bootstrapAdmin) {
          await services.close();
          throw new CliError(
            'this database has no tenant yet: start once with --bootstrap-admin FILE (and --tenant-domain) to create one and its admin',
          );
        }
        // Several nodes may start at once with the same flags: one creates the tenant (under a
        // database lock), the others find it.
        const { bootstrapDefaults } = await import('../../server/bootstrap.js');
        let created: boolean;
        try {
          created = !!(
            await bootstrapDefaults(services, {
              adminCredentialsPath: o.bootstrapAdmin,
              tenantDomain: o.tenantDomain,
              requireNewCredentialsFile: true,
            })
          ).adminPassword;
        } catch (e) {
          await services.close();
          throw new CliError((e as Error).message);
        }
        process.stderr.write(
          created
            ? `created tenant ${o.tenantDomain}; admin credentials written to ${o.bootstrapAdmin}\n`
            : 'another node created the tenant; --bootstrap-admin ignored\n',
        );
      } else if (o.bootstrapAdmin) {
        // Said as plainly as the race's loser says it: which of the two a node hits depends on timing.
        process.stderr.write('this database already has its tenant; --bootstrap-admin ignored\n');
      }
      const server = await listenHttps(services, logger as unknown as FastifyBaseLogger, {
        host: config.bindHost,
        port: config.port,
      }).catch(async (e: unknown) => {
        await services.close?.();
        throw portError(e, [{ flag: '--port', port: config.port }], 'server') ?? e;
      });
      // Background jobs (scheduled purge, ...): on PostgreSQL one node at a time runs each.
      const jobs = services.jobs.start({
        onError: (job, err) => logger.error({ err, job }, 'background job failed'),
        onRun: (job, result, ms) => services.metrics.job(job, result, ms),
        intervals,
      });
      const authority = `https://${config.publicHost}${services.boundPort === 443 ? '' : `:${services.boundPort}`}`;
      const signalled = waitForSignal(); // before announcing readiness (see `up`)
      logger.info(
        { authority, vaultDomain: config.vaultDomain, node: services.nodeId },
        'latchkey server ready',
      );
      if (o.json)
        process.stdout.write(
          `${JSON.stringify({ authority, port: server.port, vaultDomain: config.vaultDomain, nodeId: services.nodeId })}\n`,
        );
      // Process metrics (CPU, memory, GC) from now on, loaded after the node is ready.
      void services.metrics.processMetrics();
      await signalled;
      // Graceful stop: /readyz turns 503, no new connections, requests in flight finish (up to
      // --drain-timeout), job runs in flight finish; then the change relay and the pool close.
      const drainMs = (o.drainTimeout as number) * 1000;
      const watchdog = setTimeout(() => {
        logger.error({ drainMs }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      }, drainMs + 15_000);
      watchdog.unref();
      services.lifecycle.draining = true;
      await Promise.all([server.close({ drainMs }), jobs.close()]);
      await services.close();
      clearTimeout(watchdog);
      logger.info({ node: services.nodeId }, 'latchkey server stopped');
    });
}

function parseBounded(v: string, min: number, max: number, flag: string): number {
  const n = Number(v);
  if (!/^\d{1,7}$/.test(v.trim()) || n < min || n > max)
    throw new CliError(`${flag} must be an integer from ${min} to ${max}`, 2);
  return n;
}

/** `--job-interval name=ms`, repeatable, into `{ name: ms }` (100 ms – 1 day). */
function collectJobInterval(pair: string, acc: Record<string, number> = {}): Record<string, number> {
  const m = /^([a-z0-9-]{1,64})=(\d{1,9})$/.exec(pair.trim());
  const ms = m ? Number(m[2]) : 0;
  if (!m || ms < 100 || ms > 86_400_000)
    throw new CliError(
      `invalid --job-interval "${pair.slice(0, 80)}": use name=milliseconds (100 to 86400000)`,
      2,
    );
  return { ...acc, [m[1]!]: ms };
}
