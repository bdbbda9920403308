import { Command } from 'commander';
import { type Ctx, print, withCtx } from '../context.js';
import { seg } from '../path.js';
import { confirm } from '../prompt.js';
import { api } from '../session.js';
import { inSubscription, subscriptionOf, withSubscription } from './arm.js';

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
    `/subscriptions/${seg(sub)}/resourcegroups${rg ? `/${seg(rg)}` : ''}?${API}`;
  const show = (c: Ctx, g: GroupJson | GroupJson[]) =>
    print(c, c.output === 'table' ? (Array.isArray(g) ? g.map(row) : row(g)) : g);

  withSubscription(
    group
      .command('create')
      .description('Create a resource group (an existing one is returned unchanged)')
      .requiredOption('-n, --name <name>', 'resource group name')
      .option('-l, --location <location>', 'location (default: local)'),
  ).action(
    inSubscription(async (o, c, sub) =>
      show(c, await api<GroupJson>(c, 'PUT', path(sub, o.name), o.location ? { location: o.location } : {})),
    ),
  );
  withSubscription(group.command('list').description('List the resource groups you may read')).action(
    inSubscription(async (_o, c, sub) =>
      show(c, (await api<{ value: GroupJson[] }>(c, 'GET', path(sub))).value),
    ),
  );
  withSubscription(
    group
      .command('show')
      .description('Show a resource group')
      .requiredOption('-n, --name <name>', 'resource group name'),
  ).action(inSubscription(async (o, c, sub) => show(c, await api<GroupJson>(c, 'GET', path(sub, o.name)))));
  withSubscription(
    group
      .command('delete')
      .description(
        'Delete a resource group and everything in it (vaults are soft-deleted, recoverable once the group exists again)',
      )
      .requiredOption('-n, --name <name>', 'resource group name')
      .option('-y, --yes', 'do not ask for confirmation')
      .option('--no-wait', 'accepted for az compatibility (the server deletes before it answers)'),
  ).action(
    withCtx(async (o, c) => {
      // Asked before anything is looked up: a cancelled delete calls no API.
      await confirm(o.yes, `group delete removes '${o.name}' and everything in it`);
      const sub = await subscriptionOf(c, o.subscription);
      await api(c, 'DELETE', path(sub, o.name));
    }),
  );
  return group;
}
