import { Command } from 'commander';
import { printed } from '../context.js';
import { api } from '../session.js';

/** `latchkey authority ...`: operations on the identity authority itself. */
export function authorityCommand(): Command {
  const authority = new Command('authority').description('The identity authority');
  authority
    .command('rotate-signing-key')
    .description('Create a new token-signing key; the previous one stays in JWKS until its tokens expire')
    .action(printed((_o, c) => api(c, 'POST', '/api/authority/signingKeys/rotate')));
  authority
    .command('keys')
    .description('List the published signing keys (JWKS)')
    .action(
      printed(async (_o, c) => (await api<{ keys: unknown[] }>(c, 'GET', '/api/authority/signingKeys')).keys),
    );
  return authority;
}
