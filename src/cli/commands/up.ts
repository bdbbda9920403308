import { Command, Option } from 'commander';
import { collectLimit, LIMIT_FLAG_NAMES, parseLimitFlags } from '../../config/limits.js';
import type { ReadyInfo } from '../../server/up.js';
import { CliError } from '../errors.js';
import { warn } from '../log.js';
import { type DevServerInfo, devServerFile, loadDevServer, processAlive, saveDevServer } from '../state.js';

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`invalid port: ${v}`, 2);
  return n;
};

/** The error code of a failed listen, wherever it sits in the cause chain. */
function listenError(e: unknown): { code: string; port?: number } | undefined {
  for (let x: unknown = e, i = 0; x && i < 5; x = (x as { cause?: unknown }).cause, i++) {
    const c = (x as NodeJS.ErrnoException & { port?: number }).code;
    if (c === 'EADDRINUSE' || c === 'EACCES')
      return {
        code: c,
        ...(typeof (x as { port?: unknown }).port === 'number' ? { port: (x as { port: number }).port } : {}),
      };
  }
  return undefined;
}

/**
 * A port that is taken (or not allowed) names the flag that moves it, also for `npm start`
 * (whose arguments go after `--`), instead of a bare EADDRINUSE.
 */
export function portError(
  e: unknown,
  ports: { flag: string; port: number }[],
  command: 'up' | 'server' = 'up',
): CliError | undefined {
  const l = listenError(e);
  if (!l) return undefined;
  const which = ports.find((p) => p.port === l.port) ?? (ports.length === 1 ? ports[0] : undefined);
  const flag = which?.flag ?? ports.map((p) => p.flag).join(' or ');
  const port = which ? `port ${which.port}` : `a port (${ports.map((p) => p.port).join(', ')})`;
  const why =
    l.code === 'EADDRINUSE' ? 'is in use (another `latchkey up`?)' : 'may not be opened by this user';
  const example =
    command === 'up'
      ? `\`latchkey up ${flag} 0\` (any free port) or \`npm start -- ${flag} 9443\``
      : `\`latchkey server ${flag} 8444\``;
  return new CliError(`${port} ${why}: pick another with ${flag} <port>, e.g. ${example}`);
}

/**
 * Whether this `up` may point the CLI (dev-server.json) at itself: not while another live
 * `up` on another data dir holds it; two dev servers side by side keep the first one's CLI.
 */
function mayTakeCli(): DevServerInfo | undefined {
  const current = loadDevServer();
  if (!current?.pid || current.pid === process.pid || !processAlive(current.pid)) return undefined;
  return current;
}

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
      let handle: Awaited<ReturnType<typeof startUp>>;
      try {
        handle = await startUp({
          limits,
          dataDir: o.dataDir,
          host: o.host,
          port: o.port,
          identityPort: o.identity === false ? null : o.identityPort,
          vaultDomain: o.vaultDomain,
          logLevel: o.logLevel,
          ...(hostsFile ? { hostsFile } : {}),
        });
      } catch (e) {
        throw (
          portError(e, [
            { flag: '--port', port: o.port },
            ...(o.identity === false ? [] : [{ flag: '--identity-port', port: o.identityPort }]),
          ]) ?? e
        );
      }
      // All or nothing: anything that fails from here on (the CLI's config dir unwritable, say)
      // stops what was started, so `up` exits non-zero instead of serving half-started.
      let signalled: Promise<void>;
      try {
        signalled = announce(handle, o, hostsFile);
      } catch (e) {
        await handle.close().catch(() => {});
        throw e;
      }
      await signalled;
      await handle.close();
    });
}

/** Points the CLI at the started server and prints the ready line (or banner); resolves on a signal. */
function announce(
  handle: { info: ReadyInfo },
  o: { json?: boolean },
  hostsFile: string | undefined,
): Promise<void> {
  const { info } = handle;
  const other = mayTakeCli();
  if (other)
    warn(
      `WARNING: the CLI stays pointed at the other \`latchkey up\` (pid ${other.pid}, ${other.server}, data dir ${other.dataDir}) ` +
        `recorded in ${devServerFile()}. To use this server, pass --server ${info.authority} --ca-file ${info.caCertPath}, ` +
        'or start it with its own LATCHKEY_CONFIG_DIR and use that for the CLI too.',
    );
  else
    saveDevServer({
      server: info.authority,
      caCertPath: info.caCertPath,
      tenantId: info.tenantId,
      subscriptionId: info.subscriptionId,
      vaultUrlTemplate: info.vaultUrlTemplate,
      identityEndpoint: info.identityEndpoint,
      dataDir: info.dataDir,
      pid: process.pid,
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
  return signalled;
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
