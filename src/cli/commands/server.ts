import { Command, Option } from 'commander';
import type { FastifyBaseLogger } from 'fastify';
import { collectLimit, LIMIT_FLAG_NAMES, parseLimitFlags } from '../../config/limits.js';
import { CliError } from '../errors.js';
import { waitForSignal } from './up.js';

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
    .action(async (o) => {
      // Loaded on demand (see up.ts): keeps every other command fast to start.
      const { loadProductionConfig } = await import('../../server/production.js');
      const { createLogger } = await import('../../server/logger.js');
      const { createServices } = await import('../../server/services.js');
      const { listenHttps } = await import('../../http/listen.js');
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
            vaultDomain: o.vaultDomain,
            managementResource: o.managementResource,
            logLevel: o.logLevel,
            limits: parseLimitFlags(o.limit ?? []),
          },
          process.env,
        );
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      const logger = createLogger(config.logLevel);
      const services = await createServices(config);
      const bootstrapped = await services.db.get<{ value: string }>(
        "SELECT value FROM meta WHERE key = 'default_tenant'",
      );
      if (!bootstrapped) {
        if (!o.bootstrapAdmin) {
          await services.close();
          throw new CliError(
            'this database has no tenant yet: start once with --bootstrap-admin FILE (and --tenant-domain) to create one and its admin',
          );
        }
        const { existsSync } = await import('node:fs');
        if (existsSync(o.bootstrapAdmin)) {
          await services.close();
          throw new CliError(`--bootstrap-admin ${o.bootstrapAdmin} already exists; name a new file`);
        }
        const { bootstrapDefaults } = await import('../../server/bootstrap.js');
        await bootstrapDefaults(services, {
          adminCredentialsPath: o.bootstrapAdmin,
          tenantDomain: o.tenantDomain,
        });
        process.stderr.write(
          `created tenant ${o.tenantDomain}; admin credentials written to ${o.bootstrapAdmin}\n`,
        );
      }
      const server = await listenHttps(services, logger as unknown as FastifyBaseLogger, {
        host: config.bindHost,
        port: config.port,
      });
      // Background jobs (scheduled purge, ...): on PostgreSQL one node at a time runs each.
      const jobs = services.jobs.start({
        onError: (job, err) => logger.error({ err, job }, 'background job failed'),
      });
      const authority = `https://${config.publicHost}${server.port === 443 ? '' : `:${server.port}`}`;
      logger.info({ authority, vaultDomain: config.vaultDomain }, 'latchkey server ready');
      if (o.json)
        process.stdout.write(
          `${JSON.stringify({ authority, port: server.port, vaultDomain: config.vaultDomain })}\n`,
        );
      await waitForSignal();
      await jobs.close();
      await server.close();
      await services.close();
    });
}
