import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { type Ctx, withCtx } from '../context.js';
import { CliError } from '../errors.js';
import { seg } from '../path.js';
import { api } from '../session.js';
import { loadProfile } from '../state.js';
import {
  AUTHZ_API,
  armPath,
  deleteAction,
  inSubscription,
  isGuid,
  listScope,
  oneResource,
  parseBool,
  parseTags,
  positiveInt,
  resolvePrincipal,
  show,
  subscriptionOf,
  VAULT_API,
  VAULTS,
  vaultPath,
  withSubscription,
} from './arm.js';
import { certificateCommand } from './keyvault-certificate.js';
import { keyCommand } from './keyvault-key.js';
import { secretCommand } from './keyvault-secret.js';

interface AccessPolicy {
  tenantId: string;
  objectId: string;
  applicationId?: string;
  permissions: { secrets?: string[]; keys?: string[]; certificates?: string[]; storage?: string[] };
}
interface VaultJson {
  id: string;
  name: string;
  location: string;
  properties: { tenantId: string; vaultUri: string; accessPolicies?: AccessPolicy[] };
}
interface DeletedVaultJson {
  id: string;
  name: string;
  properties: { vaultId?: string; location?: string; deletionDate?: string; scheduledPurgeDate?: string };
}

const KEY_VAULT_ADMINISTRATOR = '00482a5a-887f-4fb3-b363-3b7fe8e74483';

/**
 * In Azure the creator of an RBAC vault must first give themselves a data role; here `create`
 * does it when the creator may write role assignments at the vault (Owner), and says so on
 * stderr. An identical assignment already there is fine; without the right, it says what to ask for.
 */
async function grantCreator(c: Ctx, vaultId: string): Promise<void> {
  const me = await api<{ objectId: string }>(c, 'GET', '/api/account');
  try {
    await api(
      c,
      'PUT',
      `${vaultId}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?${AUTHZ_API}`,
      {
        properties: {
          roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${KEY_VAULT_ADMINISTRATOR}`,
          principalId: me.objectId,
        },
      },
    );
    process.stderr.write(
      'Granted you the Key Vault Administrator role on the new vault (data access: secrets, keys). Use --no-self-perms to skip.\n',
    );
  } catch (e) {
    if (e instanceof CliError && e.httpStatus === 409) return; // already assigned
    if (e instanceof CliError && e.httpStatus === 403) {
      process.stderr.write(
        'WARNING: you may not assign roles on the new vault, so you have no data access to it yet: ask an Owner for Key Vault Secrets Officer (or Key Vault Administrator) on it.\n',
      );
      return;
    }
    throw e;
  }
}

/** The columns of az's `keyvault list -o table`. */
const vaultRow = (v: VaultJson & { resourceGroup: string | null }) => ({
  Location: v.location,
  Name: v.name,
  ResourceGroup: v.resourceGroup,
  VaultUri: v.properties.vaultUri,
});
const deletedRow = (v: DeletedVaultJson) => ({
  Name: v.name,
  Location: locationOf(v),
  DeletionDate: v.properties.deletionDate ?? null,
  ScheduledPurgeDate: v.properties.scheduledPurgeDate ?? null,
});

/** az adds `resourceGroup` to every ARM resource it prints. */
const withGroup = <T extends { id: string }>(v: T) => ({
  ...v,
  resourceGroup: /\/resourceGroups\/([^/]+)/i.exec(v.id)?.[1] ?? null,
});

const vaultOptions = oneResource('vault');
/** `recover` and `purge`: a deleted vault, by name (and location where names repeat). */
const deletedOptions = (c: Command) =>
  withSubscription(
    c
      .requiredOption('-n, --name <name>', 'vault name')
      .option('-l, --location <location>', 'location of the deleted vault'),
  );

async function deletedVault(c: Ctx, sub: string, name: string, location?: string): Promise<DeletedVaultJson> {
  const list = await api<{ value: DeletedVaultJson[] }>(
    c,
    'GET',
    `/subscriptions/${seg(sub)}/providers/Microsoft.KeyVault/deletedVaults?${VAULT_API}`,
  );
  const hit = list.value.find(
    (v) =>
      v.name.toLowerCase() === name.toLowerCase() && (!location || locationOf(v) === location.toLowerCase()),
  );
  if (!hit) throw new CliError(`no deleted vault named '${name}' in subscription ${sub}`);
  return hit;
}
const locationOf = (v: DeletedVaultJson): string =>
  (/\/locations\/([^/]+)\//i.exec(v.id)?.[1] ?? v.properties.location ?? 'local').toLowerCase();

/** `latchkey keyvault ...`: vaults (az keyvault), their access policies, and `keyvault secret`. */
export function keyvaultCommand(): Command {
  const kv = new Command('keyvault').description('Key vaults, access policies and secrets');

  vaultOptions(kv.command('create').description('Create a key vault'))
    .option('-l, --location <location>', 'location', 'local')
    .option(
      '--retention-days <days>',
      'soft-delete retention in days (7–90, default 90)',
      positiveInt('--retention-days', 90),
    )
    .option(
      '--enable-purge-protection <bool>',
      'true: deleted vaults and objects cannot be purged before retention ends',
    )
    .option(
      '--enable-rbac-authorization <bool>',
      'true (default): RBAC decides data access; false: access policies',
    )
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .option(
      '--no-self-perms',
      'do not give yourself data access (RBAC: the Key Vault Administrator role on the new vault; access policies: a policy with all permissions)',
    )
    .action(
      inSubscription(async (o, c, sub) => {
        const rbac = parseBool('--enable-rbac-authorization', o.enableRbacAuthorization) ?? true;
        // As az: create never rewrites an existing vault (changes go through `keyvault update`).
        const available = await api<{ nameAvailable: boolean; reason?: string }>(
          c,
          'POST',
          `/subscriptions/${seg(sub)}/providers/Microsoft.KeyVault/checkNameAvailability?${VAULT_API}`,
          { name: o.name, type: 'Microsoft.KeyVault/vaults' },
        );
        if (!available.nameAvailable)
          throw new CliError(
            available.reason === 'AlreadyExists'
              ? `The vault name '${o.name}' is already in use (a vault, or a deleted vault awaiting purge): change it with \`latchkey keyvault update\`, or recover a deleted one with \`latchkey keyvault recover\`.`
              : `The vault name '${o.name}' is not valid: 3–24 letters, digits and hyphens, starting with a letter.`,
          );
        // As az: a vault using access policies starts with one for its creator.
        const self =
          !rbac && o.selfPerms !== false
            ? (await api<{ objectId: string }>(c, 'GET', '/api/account')).objectId
            : null;
        const purge = parseBool('--enable-purge-protection', o.enablePurgeProtection);
        const tags = parseTags(o.tags);
        const tenantId = loadProfile()?.tenantId;
        const vault = withGroup(
          await api<VaultJson>(c, 'PUT', `${vaultPath(sub, o.resourceGroup, o.name)}?${VAULT_API}`, {
            location: o.location,
            ...(tags ? { tags } : {}),
            properties: {
              ...(tenantId ? { tenantId } : {}),
              sku: { family: 'A', name: 'standard' },
              enableRbacAuthorization: rbac,
              ...(o.retentionDays ? { softDeleteRetentionInDays: o.retentionDays } : {}),
              ...(purge ? { enablePurgeProtection: true } : {}),
              accessPolicies:
                self && tenantId
                  ? [
                      {
                        tenantId,
                        objectId: self,
                        permissions: { secrets: ['all'], keys: ['all'], certificates: ['all'] },
                      },
                    ]
                  : [],
            },
          }),
        );
        if (rbac && o.selfPerms !== false) await grantCreator(c, vault.id);
        show(c, vault, vaultRow);
      }),
    );

  listScope(
    kv.command('list').description('List key vaults (in a resource group, or the whole subscription)'),
  ).action(
    inSubscription(async (o, c, sub) => {
      const path = armPath(sub, VAULTS, o.resourceGroup || undefined);
      show(
        c,
        (await api<{ value: VaultJson[] }>(c, 'GET', `${path}?${VAULT_API}`)).value.map(withGroup),
        vaultRow,
      );
    }),
  );

  vaultOptions(kv.command('show').description('Show a key vault')).action(
    inSubscription(async (o, c, sub) => {
      const vault = await api<VaultJson>(c, 'GET', `${vaultPath(sub, o.resourceGroup, o.name)}?${VAULT_API}`);
      show(c, withGroup(vault), vaultRow);
    }),
  );

  // Retention is set at creation only (as in Azure), so update has no --retention-days.
  vaultOptions(kv.command('update').description('Update a key vault’s properties'))
    .option('--enable-purge-protection <bool>', 'true turns purge protection on (it cannot be turned off)')
    .option('--enable-rbac-authorization <bool>', 'true: RBAC; false: access policies')
    .option('--tags <tags...>', 'replace the tags: key[=value] ...')
    .action(
      inSubscription(async (o, c, sub) => {
        const rbac = parseBool('--enable-rbac-authorization', o.enableRbacAuthorization);
        const purge = parseBool('--enable-purge-protection', o.enablePurgeProtection);
        const tags = parseTags(o.tags);
        const properties = {
          ...(rbac !== undefined ? { enableRbacAuthorization: rbac } : {}),
          ...(purge !== undefined ? { enablePurgeProtection: purge } : {}),
        };
        show(
          c,
          withGroup(
            await api<VaultJson>(c, 'PATCH', `${vaultPath(sub, o.resourceGroup, o.name)}?${VAULT_API}`, {
              ...(tags ? { tags } : {}),
              properties,
            }),
          ),
          vaultRow,
        );
      }),
    );

  vaultOptions(
    kv.command('delete').description('Delete a key vault (soft delete: recoverable until purged)'),
  ).action(deleteAction((sub, rg, name) => `${vaultPath(sub, rg, name)}?${VAULT_API}`));

  withSubscription(kv.command('list-deleted').description('List soft-deleted key vaults')).action(
    inSubscription(async (_o, c, sub) => {
      const list = await api<{ value: DeletedVaultJson[] }>(
        c,
        'GET',
        `/subscriptions/${seg(sub)}/providers/Microsoft.KeyVault/deletedVaults?${VAULT_API}`,
      );
      show(c, list.value, deletedRow);
    }),
  );

  deletedOptions(
    kv
      .command('recover')
      .description('Recover a soft-deleted key vault (into the resource group it was deleted from)'),
  ).action(
    inSubscription(async (o, c, sub) => {
      const d = await deletedVault(c, sub, o.name, o.location);
      const rg = /\/resourceGroups\/([^/]+)/i.exec(d.properties.vaultId ?? '')?.[1];
      if (!rg) throw new CliError(`cannot tell the resource group of deleted vault '${o.name}'`);
      const tenantId = loadProfile()?.tenantId;
      show(
        c,
        withGroup(
          await api<VaultJson>(c, 'PUT', `${vaultPath(sub, rg, d.name)}?${VAULT_API}`, {
            location: locationOf(d),
            properties: {
              ...(tenantId ? { tenantId } : {}),
              sku: { family: 'A', name: 'standard' },
              createMode: 'recover',
            },
          }),
        ),
        vaultRow,
      );
    }),
  );

  deletedOptions(kv.command('purge').description('Permanently delete a soft-deleted key vault')).action(
    inSubscription(async (o, c, sub) => {
      const location = o.location ?? locationOf(await deletedVault(c, sub, o.name));
      await api(
        c,
        'POST',
        `/subscriptions/${seg(sub)}/providers/Microsoft.KeyVault/locations/${seg(location)}/deletedVaults/${seg(o.name)}/purge?${VAULT_API}`,
      );
    }),
  );

  policyCommands(kv);
  kv.addCommand(secretCommand());
  kv.addCommand(keyCommand());
  kv.addCommand(certificateCommand());
  return kv;
}

/** `keyvault set-policy|delete-policy`, as az: by --object-id, --spn (app id) or --upn (user name). */
function policyCommands(kv: Command) {
  const who = (c: Command) =>
    vaultOptions(c)
      .option('--object-id <id>', 'object id of a user, service principal or managed identity')
      .option('--spn <appId>', 'app (client) id of a service principal')
      .option('--upn <name>', 'user name');
  const objectIdOf = async (
    c: Ctx,
    o: { objectId?: string; spn?: string; upn?: string },
  ): Promise<string> => {
    const given = [o.objectId, o.spn, o.upn].filter((x) => x !== undefined);
    if (given.length !== 1) throw new CliError('give exactly one of --object-id, --spn, --upn', 2);
    if (o.objectId) {
      if (!isGuid(o.objectId)) throw new CliError('--object-id must be a GUID', 2);
      return o.objectId.toLowerCase();
    }
    return (await resolvePrincipal(c, (o.spn ?? o.upn)!)).id;
  };
  type VaultRef = { subscription?: string; resourceGroup: string; name: string };
  const changePolicies = async (c: Ctx, o: VaultRef, kind: 'replace' | 'remove', policy: AccessPolicy) => {
    const sub = await subscriptionOf(c, o.subscription);
    return api<{ properties: { accessPolicies: AccessPolicy[] } }>(
      c,
      'PUT',
      `${vaultPath(sub, o.resourceGroup, o.name)}/accessPolicies/${kind}?${VAULT_API}`,
      { properties: { accessPolicies: [policy] } },
    );
  };
  const current = async (c: Ctx, o: VaultRef) => {
    const sub = await subscriptionOf(c, o.subscription);
    return api<VaultJson>(c, 'GET', `${vaultPath(sub, o.resourceGroup, o.name)}?${VAULT_API}`);
  };
  /**
   * The action of `set-policy` and `delete-policy`: the identity's own policy now (none, or the one
   * without an application id) → the change to make, if any; then the vault as it is after.
   * `check` looks at the options first, before anything is looked up.
   */
  const policyAction = (
    change: (
      o: VaultRef & Record<string, unknown>,
      existing: AccessPolicy | undefined,
    ) => { kind: 'replace' | 'remove'; permissions: AccessPolicy['permissions'] } | undefined,
    check?: (o: Record<string, unknown>) => void,
  ) =>
    withCtx<VaultRef & { objectId?: string; spn?: string; upn?: string }>(async (o, c) => {
      check?.(o);
      const objectId = await objectIdOf(c, o);
      const vault = await current(c, o);
      const existing = (vault.properties.accessPolicies ?? []).find(
        (p) => p.objectId.toLowerCase() === objectId && !p.applicationId,
      );
      const todo = change(o, existing);
      if (todo)
        await changePolicies(c, o, todo.kind, {
          tenantId: vault.properties.tenantId,
          objectId,
          permissions: todo.permissions,
        });
      show(c, withGroup(await current(c, o)), vaultRow);
    });

  who(
    kv
      .command('set-policy')
      .description('Set the permissions of one identity (vaults using access policies)'),
  )
    .option(
      '--secret-permissions <perms...>',
      'secret permissions: get list set delete recover backup restore purge all',
    )
    .option(
      '--key-permissions <perms...>',
      'key permissions: get list create import update delete encrypt decrypt ...',
    )
    .option('--certificate-permissions <perms...>', 'certificate permissions')
    .action(
      policyAction(
        (o, existing) => ({
          kind: 'replace',
          permissions: {
            ...(existing?.permissions ?? {}),
            ...(o.secretPermissions ? { secrets: o.secretPermissions as string[] } : {}),
            ...(o.keyPermissions ? { keys: o.keyPermissions as string[] } : {}),
            ...(o.certificatePermissions ? { certificates: o.certificatePermissions as string[] } : {}),
          },
        }),
        (o) => {
          if (!o.secretPermissions && !o.keyPermissions && !o.certificatePermissions)
            throw new CliError(
              'give --secret-permissions, --key-permissions and/or --certificate-permissions',
              2,
            );
        },
      ),
    );

  who(kv.command('delete-policy').description('Remove the access policy of one identity')).action(
    // `remove` takes away the listed permissions; with all of them, the entry goes.
    policyAction((_o, existing) =>
      existing
        ? {
            kind: 'remove',
            permissions: {
              secrets: existing.permissions.secrets ?? [],
              keys: existing.permissions.keys ?? [],
              certificates: existing.permissions.certificates ?? [],
              storage: existing.permissions.storage ?? [],
            },
          }
        : undefined,
    ),
  );
}
