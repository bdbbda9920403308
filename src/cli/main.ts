import { Command, CommanderError, Option } from 'commander';
import { adCommand } from './commands/ad.js';
import { auditCommand } from './commands/audit.js';
import { authorityCommand } from './commands/authority.js';
import { keyvaultCommand } from './commands/keyvault.js';
import { loginCommands } from './commands/login.js';
import { managedIdentityCommands } from './commands/managed-identity.js';
import { manifestCommands } from './commands/manifest.js';
import { provisioningCommand } from './commands/provisioning.js';
import { roleCommand } from './commands/role.js';
import { rootKeyCommand } from './commands/root-key.js';
import { serverCommand } from './commands/server.js';
import { upCommand } from './commands/up.js';
import { CliError } from './errors.js';

/** The `latchkey` command: az-style verbs, `--output json|table|tsv|none` everywhere. */
export function buildProgram(): Command {
  const program = new Command('latchkey')
    .description('Latchkey: self-hosted workload identity and secrets')
    // `--version` is also az's flag for an object version (`keyvault secret show --version`),
    // so the program's own is `-V`, and `--version` only as the first argument (see main).
    .version('0.1.0', '-V', 'output the version number')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['json', 'table', 'tsv', 'none'])
        .default('json'),
    )
    .option(
      '--server <url>',
      'Latchkey server URL (default: login state, LATCHKEY_SERVER, or the local dev server)',
    )
    .option(
      '--ca-file <pem>',
      'CA certificate to trust for the server (default: the dev CA of `latchkey up`)',
    )
    .showHelpAfterError()
    .exitOverride();
  const commands = [
    upCommand(),
    serverCommand(),
    ...loginCommands(),
    adCommand(),
    authorityCommand(),
    rootKeyCommand(),
    provisioningCommand(),
    keyvaultCommand(),
    roleCommand(),
    auditCommand(),
    ...managedIdentityCommands(),
    ...manifestCommands(),
  ];
  for (const c of commands) program.addCommand(c);
  // Sub-commands inherit exitOverride so errors come back here.
  const walk = (c: Command) => {
    c.exitOverride();
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
