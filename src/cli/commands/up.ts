import { Command, Option } from 'commander';
import { collectLimit, LIMIT_FLAG_NAMES, parseLimitFlags } from '../../config/limits.js';
import { CliError } from '../errors.js';
import { saveDevServer } from '../state.js';

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`invalid port: ${v}`, 2);
  return n;
};

/** `latchkey up`: the all-in-one development server. */
export function upCommand(): Command {
  return new Command('up')
    .description('Start Latchkey on embedded defaults (SQLite, dev CA, generated root key) for development')
    .option('--data-dir <dir>', 'where the database, keys and certificates live', './.latchkey-data')
    .option('--host <host>', 'address to bind the HTTPS listener to', '127.0.0.1')
    .option('--port <port>', 'HTTPS port', port, 8443)
    .option(
      '--identity-port <port>',
      'port of the managed-identity endpoint on 127.0.0.1 (0 picks one)',
      port,
      40342,
    )
    .option('--no-identity', 'do not start the managed-identity endpoint')
    .option('--vault-domain <domain>', 'DNS suffix of vault hosts', 'vault.localhost')
    .option(
      '--hosts-file [path]',
      'keep a line per vault ({name}.{vault-domain} → this server) in a hosts file, in step with vault changes (default /etc/hosts; needs root)',
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['fatal', 'error', 'warn', 'info', 'debug'])
        .default('warn'),
    )
    .option('--json', 'print one JSON line on stdout when ready (for scripts and tests)')
    .option(
      '--limit <name=value>',
      `override a protective limit (repeatable; docs/configuration.md): ${LIMIT_FLAG_NAMES.join(', ')}`,
      collectLimit,
    )
    .action(async (o) => {
      let limits: ReturnType<typeof parseLimitFlags>;
      try {
        limits = parseLimitFlags(o.limit ?? []);
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      // Loaded on demand: the server modules take ~0.5 s to load, which every other command would pay.
      const { startUp } = await import('../../server/up.js');
      const { DEFAULT_HOSTS_FILE } = await import('../../server/hosts-file.js');
      const hostsFile: string | undefined =
        o.hostsFile === true ? DEFAULT_HOSTS_FILE : o.hostsFile ? String(o.hostsFile) : undefined;
      const handle = await startUp({
        limits,
        dataDir: o.dataDir,
        host: o.host,
        port: o.port,
        identityPort: o.identity === false ? null : o.identityPort,
        vaultDomain: o.vaultDomain,
        logLevel: o.logLevel,
        ...(hostsFile ? { hostsFile } : {}),
      });
      const { info } = handle;
      saveDevServer({
        server: info.authority,
        caCertPath: info.caCertPath,
        tenantId: info.tenantId,
        subscriptionId: info.subscriptionId,
        vaultUrlTemplate: info.vaultUrlTemplate,
        identityEndpoint: info.identityEndpoint,
        dataDir: info.dataDir,
      });
      // Listen for signals before announcing readiness: a supervisor may stop us the moment it reads the line.
      const signalled = waitForSignal();
      for (const w of info.warnings) process.stderr.write(`WARNING (development mode): ${w}\n`);
      if (o.json) process.stdout.write(`${JSON.stringify(info)}\n`);
      else {
        process.stdout.write(
          [
            '',
            `Latchkey is running (development mode)`,
            `  authority         ${info.authority}   (tenant ${info.tenantId}, ${info.tenantDomain})`,
            `  management API    ${info.managementUrl}`,
            `  web console       ${info.authority}/console/`,
            `  vaults            ${info.vaultUrlTemplate}${hostsFile ? `   (names kept in ${hostsFile})` : ''}`,
            `  identity endpoint ${info.identityEndpoint ?? '(off)'}`,
            `  dev CA            ${info.caCertPath}`,
            `  admin sign-in     ${info.adminCredentialsPath}`,
            '',
            'Sign in with: latchkey login -u admin@latchkey.localhost   (password in the file above)',
            'Press Ctrl-C to stop.',
            '',
          ].join('\n'),
        );
      }
      await signalled;
      await handle.close();
    });
}

/** Resolves on the first SIGINT/SIGTERM; a second one exits at once. */
export function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    let seen = false;
    const on = () => {
      if (seen) process.exit(130);
      seen = true;
      process.stderr.write('shutting down…\n');
      resolve();
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
