import type { Command } from 'commander';
import { agentCommand, hostCommand } from './agent.js';
import { appCommand } from './app.js';
import { identityCommand } from './identity.js';
import { runCommand } from './run.js';

/** Managed identities (issue 4): `identity`, `app`, `host`, `run`, `agent`. */
export const managedIdentityCommands = (): Command[] => [
  identityCommand(),
  appCommand(),
  hostCommand(),
  runCommand(),
  agentCommand(),
];
