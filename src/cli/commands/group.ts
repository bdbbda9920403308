import { Command } from 'commander';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';
import { ask } from '../prompt.js';
import { api } from '../session.js';
import { subscriptionOf } from './arm.js';

const API = 'api-version=2021-04-01';

interface GroupJson {
  id: string;
  name: string;
  location: string;
  properties?: { provisioningState?: string };
  tags?: Record<string, string> | null;
}

/** az's table view of resource groups. */
const row = (g: GroupJson) => ({
  Name: g.name,
  Location: g.location,
  Status: g.properties?.provisioningState ?? 'Succeeded',
});

/** `latchkey group create|list|show|delete` (az group). */
export function groupCommand(): Command {
  const group = new Command('group').description('Resource groups').addHelpText(
    'after',
    `
Examples:
  latchkey group create -n shop
  latchkey group list -o table
  latchkey keyvault create -n shopvault -g shop
  latchkey group delete -n shop --yes`,
  );
  const path = (sub: string, rg?: string) =>
    `/subscriptions/${encodeURIComponent(sub)}/resourcegroups${rg ? `/${encodeURIComponent(rg)}` : ''}?${API}`;
  const show = (c: ReturnType<typeof ctx>, g: GroupJson | GroupJson[]) =>
    print(c, c.output === 'table' ? (Array.isArray(g) ? g.map(row) : row(g)) : g);

  group
    .command('create')
    .description('Create a resource group (an existing one is returned unchanged)')
    .requiredOption('-n, --name <name>', 'resource group name')
    .option('-l, --location <location>', 'location (default: local)')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const sub = await subscriptionOf(c, o.subscription);
      show(c, await api<GroupJson>(c, 'PUT', path(sub, o.name), o.location ? { location: o.location } : {}));
    });
  group
    .command('list')
    .description('List the resource groups you may read')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const sub = await subscriptionOf(c, o.subscription);
      show(c, (await api<{ value: GroupJson[] }>(c, 'GET', path(sub))).value);
    });
  group
    .command('show')
    .description('Show a resource group')
    .requiredOption('-n, --name <name>', 'resource group name')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const sub = await subscriptionOf(c, o.subscription);
      show(c, await api<GroupJson>(c, 'GET', path(sub, o.name)));
    });
  group
    .command('delete')
    .description(
      'Delete a resource group and everything in it (vaults are soft-deleted, recoverable once the group exists again)',
    )
    .requiredOption('-n, --name <name>', 'resource group name')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--no-wait', 'accepted for az compatibility (the server deletes before it answers)')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      if (!o.yes) {
        if (!process.stdin.isTTY)
          throw new CliError(
            `group delete removes '${o.name}' and everything in it: pass --yes (-y) to confirm (no terminal to ask on)`,
            2,
          );
        const answer = await ask(
          'Are you sure you want to perform this operation? (y/n): ',
          false,
          'pass --yes (-y) to delete without asking',
        );
        if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('Operation cancelled.', 1);
      }
      const sub = await subscriptionOf(c, o.subscription);
      await api(c, 'DELETE', path(sub, o.name));
    });
  return group;
}
