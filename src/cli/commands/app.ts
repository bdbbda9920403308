import { Command } from 'commander';
import { identityTypeOf } from '../../management/app-identity.js';
import { type Ctx, print } from '../context.js';
import { CliError } from '../errors.js';
import { warn } from '../log.js';
import { api } from '../session.js';
import {
  armPath,
  collect,
  deleteAction,
  inSubscription,
  listScope,
  oneResource,
  parseTags,
  show,
} from './arm.js';
import { identityPath } from './identity.js';

export const WEB_API = 'api-version=2023-12-01';
const SYSTEM = '[system]';
const SITES = 'Microsoft.Web/sites';

export const appPath = (sub: string, rg: string, name?: string): string => armPath(sub, SITES, rg, name);

interface IdentityBlock {
  type: string;
  principalId?: string;
  tenantId?: string;
  userAssignedIdentities?: Record<string, { principalId: string; clientId: string }>;
}
interface AppJson {
  id: string;
  name: string;
  type: string;
  location: string;
  tags: Record<string, string>;
  identity: IdentityBlock;
  properties: {
    hostId: string | null;
    hostName: string | null;
    state: string;
    keyVaultReferenceIdentity: string;
  };
}

const appView = (a: AppJson) => ({
  ...a,
  resourceGroup: /\/resourceGroups\/([^/]+)/i.exec(a.id)?.[1] ?? null,
});

/** az's few columns for `-o table` (az webapp list: Name, Location, State, ResourceGroup, ...). */
const appRow = (a: ReturnType<typeof appView>) => ({
  Name: a.name,
  ResourceGroup: a.resourceGroup,
  Host: a.properties.hostName,
  State: a.properties.state,
  Identity: a.identity?.type ?? 'None',
});

const options = oneResource('app');

/** `--identities [system] ID...`: ARM ids, or names of identities in the app's resource group. */
function splitIdentities(list: string[] | undefined, sub: string, rg: string) {
  const items = (list ?? [SYSTEM]).flatMap((s) => s.split(/\s+/)).filter(Boolean);
  const system = items.some((i) => i.toLowerCase() === SYSTEM);
  const user = items
    .filter((i) => i.toLowerCase() !== SYSTEM)
    .map((i) => (i.startsWith('/') ? i : identityPath(sub, rg, i)));
  return { system, user };
}

/** az prints `webapp identity` as the identity block alone. */
const identityOut = (a: AppJson) => ({
  principalId: a.identity.principalId ?? null,
  tenantId: a.identity.tenantId ?? null,
  type: a.identity.type,
  userAssignedIdentities: a.identity.userAssignedIdentities ?? null,
});

async function getApp(c: Ctx, sub: string, rg: string, name: string) {
  return api<AppJson>(c, 'GET', `${appPath(sub, rg, name)}?${WEB_API}`);
}

/** az lists settings as `[{name, value, slotSetting}]`; after a change it shows names only (values redacted). */
const settingsList = (props: Record<string, string>, redact: boolean) =>
  Object.entries(props).map(([name, value]) => ({ name, slotSetting: false, value: redact ? null : value }));

/** `latchkey app ...`: apps with managed identities, their placement and settings (az webapp). */
export function appCommand(): Command {
  const app = new Command('app').description('Apps (workloads) with managed identities');

  options(app.command('create').description('Create an app, placed on a host (default: the local host)'))
    .option('--host <name>', 'the host the app runs on (name or ARM id; default: the local host)')
    .option('--assign-identity [ids...]', `identities to assign: ${SYSTEM} and/or user-assigned ids or names`)
    .option('-l, --location <location>', 'location', 'local')
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .action(
      inSubscription(async (o, c, sub) => {
        const tags = parseTags(o.tags);
        let identity: { type: string; userAssignedIdentities?: Record<string, object> } | undefined;
        if (o.assignIdentity !== undefined) {
          const ids = splitIdentities(
            o.assignIdentity === true ? undefined : o.assignIdentity,
            sub,
            o.resourceGroup,
          );
          identity = {
            type: identityTypeOf(ids.system, ids.user.length > 0),
            ...(ids.user.length
              ? { userAssignedIdentities: Object.fromEntries(ids.user.map((u) => [u, {}])) }
              : {}),
          };
        }
        const r = await api<AppJson>(c, 'PUT', `${appPath(sub, o.resourceGroup, o.name)}?${WEB_API}`, {
          location: o.location,
          ...(tags ? { tags } : {}),
          ...(identity ? { identity } : {}),
          ...(o.host ? { properties: { hostId: o.host } } : {}),
        });
        print(c, appView(r));
      }),
    );

  listScope(
    app.command('list').description('List apps (in a resource group, or the whole subscription)'),
  ).action(
    inSubscription(async (o, c, sub) => {
      const path = armPath(sub, SITES, o.resourceGroup || undefined);
      show(c, (await api<{ value: AppJson[] }>(c, 'GET', `${path}?${WEB_API}`)).value.map(appView), appRow);
    }),
  );

  options(app.command('show').description('Show an app')).action(
    inSubscription(async (o, c, sub) => print(c, appView(await getApp(c, sub, o.resourceGroup, o.name)))),
  );

  options(
    app
      .command('delete')
      .description(
        'Delete an app (its system-assigned identity and that identity’s role assignments go too)',
      ),
  ).action(deleteAction((sub, rg, name) => `${appPath(sub, rg, name)}?${WEB_API}`));

  options(
    app
      .command('update')
      .description('Move an app to another host, or choose the identity Key Vault references use'),
  )
    .option('--host <name>', 'the host the app runs on (name or ARM id)')
    .option(
      '--key-vault-reference-identity <id>',
      'SystemAssigned, or the ARM id of an attached user-assigned identity',
    )
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .action(
      inSubscription(async (o, c, sub) => {
        const tags = parseTags(o.tags);
        const properties = {
          ...(o.host ? { hostId: o.host } : {}),
          ...(o.keyVaultReferenceIdentity ? { keyVaultReferenceIdentity: o.keyVaultReferenceIdentity } : {}),
        };
        const r = await api<AppJson>(c, 'PATCH', `${appPath(sub, o.resourceGroup, o.name)}?${WEB_API}`, {
          ...(tags ? { tags } : {}),
          ...(Object.keys(properties).length ? { properties } : {}),
        });
        print(c, appView(r));
      }),
    );

  // ---- app identity ----
  const identity = app.command('identity').description('The managed identities of an app');
  /** `assign` and `remove`: from the app's identity block and the identities named, the new block. */
  const identityChange = (
    verb: string,
    description: string,
    next: (cur: IdentityBlock, ids: ReturnType<typeof splitIdentities>, app: string) => object,
  ) =>
    options(identity.command(verb).description(description))
      .option('--identities <ids...>', `${SYSTEM} and/or user-assigned identity ids or names`, collect)
      .action(
        inSubscription(async (o, c, sub) => {
          const cur = await getApp(c, sub, o.resourceGroup, o.name);
          const block = next(cur.identity, splitIdentities(o.identities, sub, o.resourceGroup), o.name);
          const path = `${appPath(sub, o.resourceGroup, o.name)}?${WEB_API}`;
          print(c, identityOut(await api<AppJson>(c, 'PATCH', path, { identity: block })));
        }),
      );
  identityChange('assign', `Assign identities (default: ${SYSTEM})`, (cur, ids) => {
    const system = ids.system || !!cur.principalId;
    const user = [...Object.keys(cur.userAssignedIdentities ?? {}), ...ids.user];
    return {
      type: identityTypeOf(system, user.length > 0),
      ...(user.length ? { userAssignedIdentities: Object.fromEntries(user.map((u) => [u, {}])) } : {}),
    };
  });
  identityChange('remove', `Remove identities (default: ${SYSTEM})`, (cur, ids, app) => {
    const removing = new Set(ids.user.map((u) => u.toLowerCase()));
    const current = Object.keys(cur.userAssignedIdentities ?? {});
    for (const u of ids.user)
      if (!current.some((x) => x.toLowerCase() === u.toLowerCase()))
        throw new CliError(`the identity ${u} is not assigned to app '${app}'`);
    const keep = current.filter((u) => !removing.has(u.toLowerCase()));
    const system = !!cur.principalId && !ids.system;
    return {
      type: identityTypeOf(system, keep.length > 0),
      userAssignedIdentities: Object.fromEntries(
        current.map((u) => [u, removing.has(u.toLowerCase()) ? null : {}]),
      ),
    };
  });
  options(identity.command('show').description('Show the identities of an app')).action(
    inSubscription(async (o, c, sub) => print(c, identityOut(await getApp(c, sub, o.resourceGroup, o.name)))),
  );

  // ---- app config appsettings ----
  const settings = app
    .command('config')
    .description('App configuration')
    .command('appsettings')
    .description('App settings (environment variables; values may be Key Vault references)');
  type Settings = { properties: Record<string, string> };
  type AppRef = { resourceGroup: string; name: string };
  /** The app's settings, with their values. */
  const readSettings = async (c: Ctx, sub: string, o: AppRef) =>
    (
      await api<Settings>(
        c,
        'POST',
        `${appPath(sub, o.resourceGroup, o.name)}/config/appsettings/list?${WEB_API}`,
      )
    ).properties;
  /** Replaces the app's settings; prints their names as az does after a change (values redacted). */
  const writeSettings = async (c: Ctx, sub: string, o: AppRef, next: Record<string, string>) => {
    const w = await api<Settings>(
      c,
      'PUT',
      `${appPath(sub, o.resourceGroup, o.name)}/config/appsettings?${WEB_API}`,
      {
        properties: next,
      },
    );
    return settingsList(w.properties, true);
  };
  options(settings.command('list').description('List app settings (with their values)')).action(
    inSubscription(async (o, c, sub) => print(c, settingsList(await readSettings(c, sub, o), false))),
  );
  options(settings.command('set').description('Add or change app settings'))
    .requiredOption('--settings <settings...>', 'space-separated KEY=VALUE pairs', collect)
    .action(
      inSubscription(async (o, c, sub) => {
        const next = { ...(await readSettings(c, sub, o)) };
        for (const kv of o.settings as string[]) {
          const i = kv.indexOf('=');
          if (i < 1) throw new CliError(`invalid setting '${kv.slice(0, 40)}': use KEY=VALUE`, 2);
          const key = kv.slice(0, i);
          for (const k of Object.keys(next)) if (k.toUpperCase() === key.toUpperCase()) delete next[k];
          next[key] = kv.slice(i + 1);
        }
        const written = await writeSettings(c, sub, o, next);
        warn('App settings have been redacted. Use `latchkey app config appsettings list` to view.');
        print(c, written);
      }),
    );
  options(settings.command('delete').description('Delete app settings'))
    .requiredOption('--setting-names <names...>', 'space-separated setting names', collect)
    .action(
      inSubscription(async (o, c, sub) => {
        const drop = new Set((o.settingNames as string[]).map((n) => n.toUpperCase()));
        const next = Object.fromEntries(
          Object.entries(await readSettings(c, sub, o)).filter(([k]) => !drop.has(k.toUpperCase())),
        );
        print(c, await writeSettings(c, sub, o, next));
      }),
    );
  return app;
}
