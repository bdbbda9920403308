import { Command } from 'commander';
import { ctx, print } from '../context.js';
import { api } from '../session.js';
import {
  armPath,
  deleteAction,
  inSubscription,
  listScope,
  oneResource,
  parseTags,
  subscriptionOf,
} from './arm.js';
import { seg } from './keyvault-object.js';

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
  federatedCredentialCommands(cmd);
  return cmd;
}

interface FederatedCredentialJson {
  id: string;
  name: string;
  type: string;
  properties: { issuer: string; subject: string; audiences: string[]; description?: string };
}

/** az prints a federated identity credential flat, with its resource group. */
const federatedCredentialView = (f: FederatedCredentialJson) => ({
  audiences: f.properties.audiences,
  ...(f.properties.description ? { description: f.properties.description } : {}),
  id: f.id,
  issuer: f.properties.issuer,
  name: f.name,
  resourceGroup: /\/resourceGroups\/([^/]+)/i.exec(f.id)?.[1] ?? null,
  subject: f.properties.subject,
  type: f.type,
});

/** `latchkey identity federated-credential ...` (az identity federated-credential). */
function federatedCredentialCommands(identity: Command): void {
  const fc = identity
    .command('federated-credential')
    .description(
      'Federated identity credentials: external OIDC tokens this identity trusts (docs/federation.md)',
    );
  const withIdentity = (c: Command) =>
    c
      .requiredOption('--identity-name <name>', 'the user-assigned identity')
      .option('-g, --resource-group <rg>', 'resource group', 'default')
      .option('--subscription <id>', 'subscription id (default: the login’s)');
  const path = async (c: ReturnType<typeof ctx>, o: Record<string, string>, name?: string) =>
    `${identityPath(await subscriptionOf(c, o.subscription), o.resourceGroup!, o.identityName!)}/federatedIdentityCredentials${name === undefined ? '' : `/${seg(name)}`}?${MI_API}`;

  withIdentity(fc.command('create').description('Create or update a federated identity credential'))
    .requiredOption('-n, --name <name>', 'credential name (3–120 letters, digits, - and _)')
    .requiredOption('--issuer <url>', "the external issuer (as its tokens' iss; on the server's allow-list)")
    .requiredOption('--subject <subject>', "the external token's sub, compared exactly")
    .option('--audiences <audience...>', 'the audience (exactly one)', ['api://AzureADTokenExchange'])
    .option('--description <text>', 'description (at most 600 characters)')
    .action(async (o, c0: Command) => {
      const c = ctx(c0);
      const r = await api<FederatedCredentialJson>(c, 'PUT', await path(c, o, o.name), {
        properties: {
          issuer: o.issuer,
          subject: o.subject,
          audiences: o.audiences,
          ...(o.description !== undefined ? { description: o.description } : {}),
        },
      });
      print(c, federatedCredentialView(r));
    });

  withIdentity(fc.command('list').description("List an identity's federated identity credentials")).action(
    async (o, c0: Command) => {
      const c = ctx(c0);
      const r = await api<{ value: FederatedCredentialJson[] }>(c, 'GET', await path(c, o));
      print(c, r.value.map(federatedCredentialView));
    },
  );

  withIdentity(fc.command('show').description('Show a federated identity credential'))
    .requiredOption('-n, --name <name>', 'credential name')
    .action(async (o, c0: Command) => {
      const c = ctx(c0);
      print(
        c,
        federatedCredentialView(await api<FederatedCredentialJson>(c, 'GET', await path(c, o, o.name))),
      );
    });

  withIdentity(
    fc
      .command('delete')
      .description('Delete a federated identity credential (the next exchange with it is refused)'),
  )
    .requiredOption('-n, --name <name>', 'credential name')
    .action(async (o, c0: Command) => {
      const c = ctx(c0);
      await api(c, 'DELETE', await path(c, o, o.name));
    });
}
