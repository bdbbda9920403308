import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { Principals } from '../authority/principals.js';
import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { newGuid } from '../lib/ids.js';
import { appStore, type StoredApp } from '../storage/management/app-store.js';
import { identityStore } from '../storage/management/identity-store.js';
import type { Database, Queryable } from '../storage/port.js';
import { applyIdentity, type IdentityInput, identityType } from './app-identity.js';
import {
  type AppSettings,
  checkReferences,
  checkSettings,
  openSettings,
  sealSettings,
} from './app-settings.js';
import type { Host, Hosts } from './hosts.js';
import type { UserIdentities } from './identities.js';
import { type UserIdentity, uaiFromStored } from './identities.js';
import {
  APP_ACTIONS,
  APP_NAME_RE,
  armId,
  auditOf,
  checkName,
  checkTags,
  HOST_ACTIONS,
  HOST_TYPE,
  LOCATION_RE,
  readableAt,
  readableOnly,
  resourceNotFound,
  SITE_TYPE,
  type Tags,
  writableAt,
} from './identity-common.js';
import type { Scopes } from './scopes.js';

/** An app (`Microsoft.Web/sites`-like): a workload placed on a host, with an identity block and settings. */
export interface App extends StoredApp {
  armId: string;
  /** `SystemAssigned` or the ARM id of a user-assigned identity: the identity Key Vault references use. */
  keyVaultReferenceIdentity: string | null;
  userIdentities: UserIdentity[];
}

const identityPrincipals = (a: App): string[] => [
  ...(a.systemPrincipalId ? [a.systemPrincipalId] : []),
  ...a.userIdentities.map((u) => u.principalId),
];

/** The ARM JSON of an app (`Microsoft.Web/sites`, api-version 2023-12-01). */
export function appView(a: App, host: Host | undefined) {
  const type = identityType(a);
  const identity: Record<string, unknown> = { type };
  if (a.systemPrincipalId) {
    identity.principalId = a.systemPrincipalId;
    identity.tenantId = a.tenantId;
  }
  if (a.userIdentities.length)
    identity.userAssignedIdentities = Object.fromEntries(
      a.userIdentities.map((u) => [u.armId, { principalId: u.principalId, clientId: u.clientId }]),
    );
  return {
    id: a.armId,
    name: a.name,
    type: SITE_TYPE,
    kind: 'app',
    location: a.location,
    tags: a.tags,
    identity,
    properties: {
      name: a.name,
      state: 'Running',
      hostId: host?.armId ?? null,
      hostName: host?.name ?? null,
      keyVaultReferenceIdentity: a.keyVaultReferenceIdentity ?? 'SystemAssigned',
    },
  };
}

/**
 * Apps: create/update with an identity block, placement on a host, sealed
 * settings. A system-assigned identity is created with its app and deleted
 * with it (or when switched off), taking its role assignments along.
 */
export function createApps(deps: {
  db: Database;
  clock: Clock;
  bus: ChangeBus;
  sealer: Sealer;
  principals: Principals;
  scopes: Scopes;
  access: Access;
  audit: AuditLog;
  hosts: Hosts;
  identities: UserIdentities;
  /** This installation's vault URL, `https://{name}.{vaultDomain}[:port]` (Key Vault references must point there). */
  vaultUrlTemplate: () => string;
}) {
  const { db, clock, bus, sealer, principals, scopes, access, audit, hosts, identities } = deps;

  const userIdentitiesOf = async (appRowId: string, q: Queryable) =>
    (await identityStore.listByApp(q, appRowId)).map(uaiFromStored);

  const load = async (r: StoredApp, q: Queryable): Promise<App> => ({
    ...r,
    armId: armId(r.subscriptionId, r.resourceGroup, SITE_TYPE, r.name),
    userIdentities: await userIdentitiesOf(r.rowId, q),
  });

  const byName = async (tenantId: string, name: string, q: Queryable = db): Promise<App | undefined> => {
    const r = await appStore.findByName(q, tenantId, name.toLowerCase());
    return r && load(r, q);
  };
  const find = async (tenantId: string, sub: string, rg: string, name: string, q: Queryable = db) => {
    const a = await byName(tenantId, name, q);
    return a && a.subscriptionId === sub.toLowerCase() && a.resourceGroup.toLowerCase() === rg.toLowerCase()
      ? a
      : undefined;
  };
  const placeOn = async (caller: Caller, ref: string | undefined, q: Queryable): Promise<Host> => {
    // A caller who may not place apps on a host hears the same 403 whether or not it exists: for
    // a host named by its ARM id the action is checked there first; one named by id or name is
    // found tenant-wide, so the refusal names neither its place nor whether it was found.
    if (ref?.startsWith('/')) await access.require(caller, HOST_ACTIONS.assign, ref);
    else if (ref) {
      const found = await hosts.resolve(caller.tenantId, ref, q).catch((e: unknown) => {
        if (e instanceof LatchkeyError && e.status === 404) return undefined;
        throw e;
      });
      if (found && (await access.allows(caller, HOST_ACTIONS.assign, found.armId))) return found;
      if (!found && (await access.allows(caller, HOST_ACTIONS.assign, '/')))
        throw resourceNotFound(HOST_TYPE, ref);
      throw new LatchkeyError(
        'Forbidden',
        `The caller (object id ${caller.oid}) is not authorized to perform '${HOST_ACTIONS.assign}' on host '${ref.slice(0, 128)}', or there is no such host.`,
      );
    }
    const host = ref
      ? await hosts.resolve(caller.tenantId, ref, q)
      : await hosts.ensureLocal(caller.tenantId);
    await access.require(caller, HOST_ACTIONS.assign, host.armId);
    return host;
  };
  const checkKvIdentity = (value: string | null | undefined): string | null | undefined => {
    if (value === undefined || value === null) return value;
    if (value.toLowerCase() === 'systemassigned') return 'SystemAssigned';
    if (!value.startsWith('/subscriptions/') || value.length > 600)
      throw new LatchkeyError(
        'BadParameter',
        'keyVaultReferenceIdentity is SystemAssigned or the ARM id of a user-assigned identity.',
      );
    return value;
  };

  const self = {
    byName,
    find,
    async byRowId(tenantId: string, rowId: string, q: Queryable = db): Promise<App | undefined> {
      const r = await appStore.findByRowId(q, tenantId, rowId);
      return r && load(r, q);
    },
    /** Apps placed on a host, with their identities (for the host's endpoint). */
    async placedOn(host: Host, q: Queryable = db): Promise<App[]> {
      const rows = await appStore.listByHost(q, host.tenantId, host.id);
      const out: App[] = [];
      for (const r of rows) out.push(await load(r, q));
      return out;
    },
    /** PUT: create, or replace the identity block, tags, placement given. */
    async createOrUpdate(
      caller: Caller,
      meta: RequestMeta,
      input: {
        subscriptionId: string;
        resourceGroup: string;
        name: string;
        location?: string;
        tags?: Tags;
        identity?: IdentityInput;
        host?: string;
        keyVaultReferenceIdentity?: string | null;
      },
      mode: 'put' | 'patch' = 'put',
    ): Promise<{ app: App; created: boolean }> {
      checkName(
        APP_NAME_RE,
        input.name,
        'app',
        '2–60 letters, digits and hyphens, not starting or ending with a hyphen.',
      );
      if (input.location !== undefined && !LOCATION_RE.test(input.location))
        throw new LatchkeyError('BadParameter', 'Invalid location.');
      const tags = input.tags === undefined ? undefined : checkTags(input.tags);
      const kvRef = checkKvIdentity(input.keyVaultReferenceIdentity);
      const { subscriptionId, resourceGroup, id } = await writableAt(
        access,
        scopes,
        caller,
        APP_ACTIONS.write,
        SITE_TYPE,
        input,
      );
      const result = await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        let app = await byName(caller.tenantId, input.name, tx);
        if (app && app.armId.toLowerCase() !== id.toLowerCase()) {
          throw new LatchkeyError(
            'Conflict',
            `An app named '${input.name}' already exists in another resource group (app names are unique in a tenant).`,
          );
        }
        if (!app && mode === 'patch') throw resourceNotFound(SITE_TYPE, input.name);
        const created = !app;
        const now = clock.now();
        if (!app) {
          const host = await placeOn(caller, input.host, tx);
          const rowId = newGuid();
          await appStore.insert(tx, {
            rowId,
            tenantId: caller.tenantId,
            subscriptionId: subscriptionId,
            resourceGroup: resourceGroup,
            name: input.name,
            hostId: host.id,
            keyVaultReferenceIdentity: kvRef ?? null,
            location: input.location ?? 'local',
            tags: tags ?? {},
            createdAt: now,
          });
          app = (await self.byRowId(caller.tenantId, rowId, tx))!;
        } else {
          if (input.host !== undefined) {
            const host = await placeOn(caller, input.host, tx);
            // The host an app runs on reads its settings (host-agent.ts): moving it there hands
            // them over, so only a caller who may read them may move it (a provisioning key with
            // apps:write and hosts:enroll, which reads no settings, could enroll a host of its own
            // and move an app onto it). Whether the app has settings does not matter.
            if (host.id !== app.hostId) await access.require(caller, APP_ACTIONS.listSettings, app.armId);
            await appStore.setHost(tx, app.rowId, host.id);
          }
          if (tags !== undefined || input.location !== undefined || kvRef !== undefined)
            await appStore.updateProperties(tx, app.rowId, {
              tags: tags ?? app.tags,
              location: input.location ?? app.location,
              keyVaultReferenceIdentity: kvRef === undefined ? app.keyVaultReferenceIdentity : kvRef,
            });
        }
        const before = { hostId: app.hostId, principals: identityPrincipals(app) };
        let changed: string[] = [];
        if (input.identity)
          changed = await applyIdentity(
            { db: tx, clock, principals, access, identities },
            caller,
            app,
            input.identity,
            created ? 'put' : mode,
          );
        await appStore.touch(tx, app.rowId, now);
        if (!created) await hosts.pruneUnserved(before.hostId, before.principals, tx);
        await audit.append(
          tx,
          auditOf(caller, meta, created ? 'AppCreate' : 'AppUpdate', id, {
            identity: input.identity ? input.identity.type : null,
            identityChanges: changed.join(',') || null,
          }),
        );
        return { app: (await self.byRowId(caller.tenantId, app.rowId, tx))!, created };
      });
      bus.publish('app', result.app.rowId);
      return result;
    },
    get: (caller: Caller, sub: string, rg: string, name: string): Promise<App> =>
      readableAt(access, caller, APP_ACTIONS.read, SITE_TYPE, find, [sub, rg, name]),
    async list(caller: Caller, sub: string, rg?: string): Promise<App[]> {
      await scopes.subscription(caller.tenantId, sub);
      const rows = await appStore.listBySubscription(db, caller.tenantId, sub.toLowerCase());
      const loaded: App[] = [];
      for (const r of rows)
        if (!rg || r.resourceGroup.toLowerCase() === rg.toLowerCase()) loaded.push(await load(r, db));
      return readableOnly(access, caller, APP_ACTIONS.read, loaded);
    },
    /** Deletes the app, its system-assigned identity (and that identity's assignments) and assignments at its scope. */
    async delete(caller: Caller, meta: RequestMeta, sub: string, rg: string, name: string): Promise<boolean> {
      const a = await find(caller.tenantId, sub, rg, name);
      await access.require(caller, APP_ACTIONS.delete, a?.armId ?? armId(sub, rg, SITE_TYPE, name));
      if (!a) return false;
      await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        await appStore.delete(tx, a.rowId);
        if (a.systemPrincipalId) await principals.delete(a.tenantId, a.systemPrincipalId, tx);
        await hosts.pruneUnserved(
          a.hostId,
          identityPrincipals(a).filter((p) => p !== a.systemPrincipalId),
          tx,
        );
        await access.deleteAtOrBelow(a.tenantId, a.armId, tx);
        await audit.append(tx, auditOf(caller, meta, 'AppDelete', a.armId));
      });
      bus.publish('app', a.rowId);
      return true;
    },

    // ---- settings (sealed at rest) ----
    /** Validates a full set of settings, Key Vault references included (as `replaceSettings` will). */
    validateSettings(settings: AppSettings): AppSettings {
      const clean = checkSettings(settings);
      checkReferences(clean, deps.vaultUrlTemplate());
      return clean;
    },
    async readSettings(app: App, q: Queryable = db): Promise<AppSettings> {
      return openSettings(sealer, app.tenantId, app.rowId, await appStore.sealedSettings(q, app.rowId));
    },
    async listSettings(caller: Caller, meta: RequestMeta, sub: string, rg: string, name: string) {
      // The action at the app as named first: 403 whether or not it exists (as ARM).
      const a = await readableAt(access, caller, APP_ACTIONS.listSettings, SITE_TYPE, find, [sub, rg, name]);
      const settings = await self.readSettings(a);
      await audit.record(
        auditOf(caller, meta, 'AppSettingsList', a.armId, { count: Object.keys(settings).length }),
      );
      return { app: a, settings };
    },
    /** Replaces every setting (ARM PUT config/appsettings). */
    async replaceSettings(
      caller: Caller,
      meta: RequestMeta,
      sub: string,
      rg: string,
      name: string,
      settings: AppSettings,
    ) {
      const a = await readableAt(access, caller, APP_ACTIONS.writeSettings, SITE_TYPE, find, [sub, rg, name]);
      const clean = self.validateSettings(settings);
      await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order (audit/log.ts)
        await appStore.writeSettings(
          tx,
          a.rowId,
          sealSettings(sealer, a.tenantId, a.rowId, clean),
          clock.now(),
        );
        await audit.append(
          tx,
          auditOf(caller, meta, 'AppSettingsWrite', a.armId, { count: Object.keys(clean).length }),
        );
      });
      return { app: a, settings: clean };
    },
  };
  return self;
}
export type Apps = ReturnType<typeof createApps>;
