import { Command, CommanderError, Option } from 'commander';
import { CliError } from './errors.js';
import { info, setVerbosity } from './log.js';
import { OUTPUT_FORMATS, visible } from './output.js';
import { configDir } from './state.js';

/** Top-level commands that share a module: their names, and how to make them. */
interface CommandModule {
  names: readonly string[];
  load(): Promise<Command[]>;
}

/**
 * Every top-level command, in the order of the program's help. A command's module is imported
 * only when the program needs it: `latchkey up` loads `up` alone instead of the ~45 modules of
 * every command (start-up time, docs/performance.md); help, completion and an unknown or absent
 * command load them all. test/cli.lazy-commands.test.ts checks the names against the modules.
 */
export const COMMAND_MODULES: readonly CommandModule[] = [
  { names: ['up'], load: async () => [(await import('./commands/up.js')).upCommand()] },
  { names: ['server'], load: async () => [(await import('./commands/server.js')).serverCommand()] },
  {
    names: ['login', 'logout', 'account'],
    load: async () => (await import('./commands/login.js')).loginCommands(),
  },
  { names: ['ad'], load: async () => [(await import('./commands/ad.js')).adCommand()] },
  { names: ['group'], load: async () => [(await import('./commands/group.js')).groupCommand()] },
  { names: ['authority'], load: async () => [(await import('./commands/authority.js')).authorityCommand()] },
  { names: ['tenant'], load: async () => [(await import('./commands/tenant.js')).tenantCommand()] },
  { names: ['ca'], load: async () => [(await import('./commands/ca.js')).caCommand()] },
  { names: ['root-key'], load: async () => [(await import('./commands/root-key.js')).rootKeyCommand()] },
  {
    names: ['backup', 'restore', 'verify-store'],
    load: async () => {
      const m = await import('./commands/backup.js');
      return [m.backupCommand(), m.restoreCommand(), m.verifyStoreCommand()];
    },
  },
  {
    names: ['provisioning-key'],
    load: async () => [(await import('./commands/provisioning.js')).provisioningCommand()],
  },
  { names: ['keyvault'], load: async () => [(await import('./commands/keyvault.js')).keyvaultCommand()] },
  { names: ['role'], load: async () => [(await import('./commands/role.js')).roleCommand()] },
  { names: ['audit'], load: async () => [(await import('./commands/audit.js')).auditCommand()] },
  {
    names: ['identity', 'app', 'host', 'run', 'agent'],
    load: async () => (await import('./commands/managed-identity.js')).managedIdentityCommands(),
  },
  {
    names: ['apply', 'export'],
    load: async () => (await import('./commands/manifest.js')).manifestCommands(),
  },
  // Completion walks the whole program: it is never loaded alone (see buildProgram).
  {
    names: ['completion'],
    load: async () => [(await import('./commands/completion.js')).completionCommand()],
  },
];

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

/**
 * The `latchkey` command: az-style verbs and az's global options everywhere. With `argv`, a
 * command named by its first word is the only one loaded (see {@link COMMAND_MODULES}); the
 * program then parses `argv` exactly as the whole program would.
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
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
    .hook('preAction', async (_p, action) => {
      const g = action.optsWithGlobals() as {
        query?: string;
        onlyShowErrors?: boolean;
        verbose?: boolean;
        debug?: boolean;
      };
      setVerbosity(g.debug ? 'debug' : g.verbose ? 'verbose' : g.onlyShowErrors ? 'quiet' : 'normal');
      if (g.query) (await import('./context.js')).compileQuery(g.query);
      info(`command: ${commandPath(action)}; config dir: ${configDir()}`, 'debug');
    });
  const first = argv[0];
  const alone =
    first !== undefined && first !== 'completion'
      ? COMMAND_MODULES.find((m) => m.names.includes(first))
      : undefined;
  const loaded = await Promise.all((alone ? [alone] : COMMAND_MODULES).map((m) => m.load()));
  const commands = loaded.flat().filter((c) => !alone || c.name() === first);
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
  const program = await buildProgram(argv);
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
      process.stderr.write(`ERROR: ${visible(e.message)}\n`);
      return e.exitCode;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`ERROR: ${visible(msg.split('\n')[0]!)}\n`);
    if (process.env.LATCHKEY_DEBUG) console.error(e);
    return 1;
  }
}
