import { Command, CommanderError, Option } from 'commander';
import { adCommand } from './commands/ad.js';
import { auditCommand } from './commands/audit.js';
import { authorityCommand } from './commands/authority.js';
import { backupCommand, restoreCommand, verifyStoreCommand } from './commands/backup.js';
import { caCommand } from './commands/ca.js';
import { completionCommand } from './commands/completion.js';
import { groupCommand } from './commands/group.js';
import { keyvaultCommand } from './commands/keyvault.js';
import { loginCommands } from './commands/login.js';
import { managedIdentityCommands } from './commands/managed-identity.js';
import { manifestCommands } from './commands/manifest.js';
import { provisioningCommand } from './commands/provisioning.js';
import { roleCommand } from './commands/role.js';
import { rootKeyCommand } from './commands/root-key.js';
import { serverCommand } from './commands/server.js';
import { tenantCommand } from './commands/tenant.js';
import { upCommand } from './commands/up.js';
import { compileQuery } from './context.js';
import { CliError } from './errors.js';
import { info, setVerbosity } from './log.js';
import { OUTPUT_FORMATS } from './output.js';
import { configDir } from './state.js';

/** The full name of a command, e.g. `latchkey keyvault secret set`. */
const commandPath = (c: Command): string => {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
};

/**
 * A usage error is one `ERROR:` line that says what to do (commander's message names the
 * missing or unknown piece; the line points at the command's own help), not the whole help.
 */
const usageOutput = (c: Command) => ({
  outputError: (str: string, write: (s: string) => void) => {
    const msg = str.trim().replace(/^error:\s*/i, '');
    write(`ERROR: ${msg.split('\n')[0]} (see \`${commandPath(c)} --help\`)\n`);
  },
});

/** The `latchkey` command: az-style verbs and az's global options everywhere. */
export function buildProgram(): Command {
  const program = new Command('latchkey')
    .description('Latchkey: self-hosted workload identity and secrets')
    // `--version` is also az's flag for an object version (`keyvault secret show --version`),
    // so the program's own is `-V`, and `--version` only as the first argument (see main).
    .version('0.1.0', '-V', 'output the version number')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('json'))
    .option('--query <jmespath>', 'JMESPath query applied to the output (as az: --query "[].name")')
    .option('--only-show-errors', 'only show errors on stderr, no warnings')
    .option('--verbose', 'one line on stderr per HTTP request (method, URL, status, time)')
    .option('--debug', 'like --verbose, plus where the CLI looks (server, config dir)')
    .option(
      '--server <url>',
      'Latchkey server URL (default: login state, LATCHKEY_SERVER, or the local dev server)',
    )
    .option(
      '--ca-file <pem>',
      'CA certificate to trust for the server (default: the dev CA of `latchkey up`)',
    )
    .addHelpText(
      'after',
      `
Examples:
  latchkey login -u admin@latchkey.localhost
  latchkey keyvault create -n shop
  latchkey keyvault secret set --vault-name shop -n db-password -f -    # paste, Enter, Ctrl-D
  latchkey keyvault secret show --vault-name shop -n db-password --query value -o tsv
  latchkey role assignment list --all -o table
Docs: docs/cli.md (every az verb and option that is supported, and those that are not).`,
    )
    .exitOverride()
    .hook('preAction', (_p, action) => {
      const g = action.optsWithGlobals() as {
        query?: string;
        onlyShowErrors?: boolean;
        verbose?: boolean;
        debug?: boolean;
      };
      setVerbosity(g.debug ? 'debug' : g.verbose ? 'verbose' : g.onlyShowErrors ? 'quiet' : 'normal');
      if (g.query) compileQuery(g.query);
      info(`command: ${commandPath(action)}; config dir: ${configDir()}`, 'debug');
    });
  const commands = [
    upCommand(),
    serverCommand(),
    ...loginCommands(),
    adCommand(),
    groupCommand(),
    authorityCommand(),
    tenantCommand(),
    caCommand(),
    rootKeyCommand(),
    backupCommand(),
    restoreCommand(),
    verifyStoreCommand(),
    provisioningCommand(),
    keyvaultCommand(),
    roleCommand(),
    auditCommand(),
    ...managedIdentityCommands(),
    ...manifestCommands(),
    completionCommand(),
  ];
  for (const c of commands) program.addCommand(c);
  // Sub-commands inherit exitOverride so errors come back here; each help lists the global
  // options; a usage error is one line.
  const walk = (c: Command) => {
    c.exitOverride();
    c.configureHelp({ showGlobalOptions: true });
    c.configureOutput(usageOutput(c));
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version') argv = ['-V', ...argv.slice(1)];
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return 0;
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof CliError) {
      process.stderr.write(`ERROR: ${e.message}\n`);
      return e.exitCode;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`ERROR: ${msg.split('\n')[0]}\n`);
    if (process.env.LATCHKEY_DEBUG) console.error(e);
    return 1;
  }
}
