import { Command } from 'commander';
import { ctx, print } from '../context.js';
import { api } from '../session.js';
import { parseTags, subscriptionOf } from './arm.js';

export const MI_API = 'api-version=2023-01-31';
const seg = encodeURIComponent;

export const identityPath = (sub: string, rg: string, name?: string): string =>
  `/subscriptions/${seg(sub)}/resourceGroups/${seg(rg)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities${name === undefined ? '' : `/${seg(name)}`}`;

interface IdentityJson {
  id: string;
  name: string;
  type: string;
  location: string;
  tags: Record<string, string>;
  properties: { tenantId: string; principalId: string; clientId: string };
}

/** az prints a user-assigned identity flat: clientId, principalId, tenantId at the top. */
export const identityView = (i: IdentityJson) => ({
  clientId: i.properties.clientId,
  id: i.id,
  location: i.location,
  name: i.name,
  principalId: i.properties.principalId,
  resourceGroup: /\/resourceGroups\/([^/]+)/i.exec(i.id)?.[1] ?? null,
  tags: i.tags,
  tenantId: i.properties.tenantId,
  type: i.type,
});

const options = (c: Command) =>
  c
    .requiredOption('-n, --name <name>', 'identity name')
    .option('-g, --resource-group <rg>', 'resource group', 'default')
    .option('--subscription <id>', 'subscription id (default: the login’s)');

/** `latchkey identity ...`: user-assigned managed identities (az identity). */
export function identityCommand(): Command {
  const cmd = new Command('identity').description('User-assigned managed identities');

  options(cmd.command('create').description('Create a user-assigned identity'))
    .option('-l, --location <location>', 'location', 'local')
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .action(async (o, c0: Command) => {
      const c = ctx(c0);
      const sub = await subscriptionOf(c, o.subscription);
      const tags = parseTags(o.tags);
      const r = await api<IdentityJson>(c, 'PUT', `${identityPath(sub, o.resourceGroup, o.name)}?${MI_API}`, {
        location: o.location,
        ...(tags ? { tags } : {}),
      });
      print(c, identityView(r));
    });

  cmd
    .command('list')
    .description('List user-assigned identities (in a resource group, or the whole subscription)')
    .option('-g, --resource-group <rg>', 'resource group')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(async (o, c0: Command) => {
      const c = ctx(c0);
      const sub = await subscriptionOf(c, o.subscription);
      const path = o.resourceGroup
        ? identityPath(sub, o.resourceGroup)
        : `/subscriptions/${seg(sub)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`;
      print(c, (await api<{ value: IdentityJson[] }>(c, 'GET', `${path}?${MI_API}`)).value.map(identityView));
    });

  options(cmd.command('show').description('Show a user-assigned identity')).action(async (o, c0: Command) => {
    const c = ctx(c0);
    const sub = await subscriptionOf(c, o.subscription);
    print(
      c,
      identityView(
        await api<IdentityJson>(c, 'GET', `${identityPath(sub, o.resourceGroup, o.name)}?${MI_API}`),
      ),
    );
  });

  options(
    cmd
      .command('delete')
      .description(
        'Delete a user-assigned identity (detaches it from every app; its role assignments go too)',
      ),
  ).action(async (o, c0: Command) => {
    const c = ctx(c0);
    const sub = await subscriptionOf(c, o.subscription);
    await api(c, 'DELETE', `${identityPath(sub, o.resourceGroup, o.name)}?${MI_API}`);
  });
  return cmd;
}
