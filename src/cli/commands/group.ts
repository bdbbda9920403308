import { Command } from 'commander';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';
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

/** `latchkey group create|list|show` (az group). */
export function groupCommand(): Command {
  const group = new Command('group').description('Resource groups').addHelpText(
    'after',
    `
Examples:
  latchkey group create -n shop
  latchkey group list -o table
  latchkey keyvault create -n shopvault -g shop`,
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
    .description('Not supported: the server does not delete resource groups (delete their resources)')
    .option('-n, --name <name>', 'resource group name')
    .action(() => {
      throw new CliError(
        'group delete is not supported: delete the group’s vaults, apps and identities instead (a group is kept)',
        2,
      );
    });
  return group;
}
