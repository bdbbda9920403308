import { Command } from 'commander';
import { ctx, print } from '../context.js';
import { api } from '../session.js';

/** `latchkey authority ...`: operations on the identity authority itself. */
export function authorityCommand(): Command {
  const authority = new Command('authority').description('The identity authority');
  authority
    .command('rotate-signing-key')
    .description('Create a new token-signing key; the previous one stays in JWKS until its tokens expire')
    .action(async (_o, cmd: Command) => {
      const c = ctx(cmd);
      print(c, await api(c, 'POST', '/api/authority/signingKeys/rotate'));
    });
  authority
    .command('keys')
    .description('List the published signing keys (JWKS)')
    .action(async (_o, cmd: Command) => {
      const c = ctx(cmd);
      print(c, (await api<{ keys: unknown[] }>(c, 'GET', '/api/authority/signingKeys')).keys);
    });
  return authority;
}
