import { Command } from 'commander';
import { print } from '../context.js';
import { api } from '../session.js';
import { armPath, deleteAction, inSubscription, listScope, oneResource, parseTags } from './arm.js';

export const MI_API = 'api-version=2023-01-31';
const IDENTITIES = 'Microsoft.ManagedIdentity/userAssignedIdentities';

export const identityPath = (sub: string, rg: string, name?: string): string =>
  armPath(sub, IDENTITIES, rg, name);

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

const options = oneResource('identity');

/** `latchkey identity ...`: user-assigned managed identities (az identity). */
export function identityCommand(): Command {
  const cmd = new Command('identity').description('User-assigned managed identities');

  options(cmd.command('create').description('Create a user-assigned identity'))
    .option('-l, --location <location>', 'location', 'local')
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .action(
      inSubscription(async (o, c, sub) => {
        const tags = parseTags(o.tags);
        const r = await api<IdentityJson>(
          c,
          'PUT',
          `${identityPath(sub, o.resourceGroup, o.name)}?${MI_API}`,
          {
            location: o.location,
            ...(tags ? { tags } : {}),
          },
        );
        print(c, identityView(r));
      }),
    );

  listScope(
    cmd
      .command('list')
      .description('List user-assigned identities (in a resource group, or the whole subscription)'),
  ).action(
    inSubscription(async (o, c, sub) => {
      const path = armPath(sub, IDENTITIES, o.resourceGroup || undefined);
      print(c, (await api<{ value: IdentityJson[] }>(c, 'GET', `${path}?${MI_API}`)).value.map(identityView));
    }),
  );

  options(cmd.command('show').description('Show a user-assigned identity')).action(
    inSubscription(async (o, c, sub) => {
      const path = identityPath(sub, o.resourceGroup, o.name);
      print(c, identityView(await api<IdentityJson>(c, 'GET', `${path}?${MI_API}`)));
    }),
  );

  options(
    cmd
      .command('delete')
      .description(
        'Delete a user-assigned identity (detaches it from every app; its role assignments go too)',
      ),
  ).action(deleteAction((sub, rg, name) => `${identityPath(sub, rg, name)}?${MI_API}`));
  return cmd;
}
