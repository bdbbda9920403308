import type { Caller, RequestMeta } from '../access/caller.js';
import type { AuditLog } from '../audit/log.js';
import type { CredentialInfo, Credentials } from '../authority/credentials.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid } from '../lib/ids.js';
import { hostStore } from '../storage/management/host-store.js';
import type { Database } from '../storage/port.js';
import type { AppSettings } from './app-settings.js';
import type { App, Apps } from './apps.js';
import { type Host, type Hosts, hostCredentialTag } from './hosts.js';
import { auditOf } from './identity-common.js';

/** One identity an endpoint may serve. */
export interface ServedIdentity {
  type: 'SystemAssigned' | 'UserAssigned';
  principalId: string;
  clientId: string;
  /** ARM id: the app's (system-assigned) or the identity's (user-assigned). */
  resourceId: string;
}

/** An identity as a host's endpoint names it: the host's id and the identity's principal id. */
export interface ServedIdentityRef {
  hostId: string;
  principalId: string;
}

export interface PlacedApp {
  name: string;
  id: string;
  /**
   * The app's row id: new for every app created, so an app deleted and created again under the
   * same name (and ARM id) is told apart. Sessions on the host's endpoint are bound to it. Absent
   * from a server older than session 18's.
   */
  rowId?: string;
  identities: ServedIdentity[];
  /** The identity Key Vault references resolve with, when the app has one. */
  keyVaultReferenceIdentity: ServedIdentity | null;
}

export interface HostManifest {
  hostId: string;
  hostName: string;
  tenantId: string;
  vaultResource: string;
  /** `https://{name}.{vaultDomain}[:port]`. */
  vaultUrlTemplate: string;
  apps: PlacedApp[];
}

export function servedIdentities(a: App): ServedIdentity[] {
  const out: ServedIdentity[] = [];
  if (a.systemPrincipalId && a.systemClientId)
    out.push({
      type: 'SystemAssigned',
      principalId: a.systemPrincipalId,
      clientId: a.systemClientId,
      resourceId: a.armId,
    });
  for (const u of a.userIdentities)
    out.push({ type: 'UserAssigned', principalId: u.principalId, clientId: u.clientId, resourceId: u.armId });
  return out;
}

/** App Service's rule: `keyVaultReferenceIdentity` (default SystemAssigned); with none, a sole user-assigned identity. */
export function keyVaultIdentity(a: App): ServedIdentity | null {
  const ids = servedIdentities(a);
  const ref = a.keyVaultReferenceIdentity;
  if (ref && ref !== 'SystemAssigned')
    return (
      ids.find((i) => i.type === 'UserAssigned' && i.resourceId.toLowerCase() === ref.toLowerCase()) ?? null
    );
  return ids.find((i) => i.type === 'SystemAssigned') ?? (ids.length === 1 ? ids[0]! : null);
}

/**
 * What a host's endpoint calls, authenticated as the host itself: the apps
 * placed on it and their identities, their settings, and certificate
 * credentials for itself and for those identities (and for nothing else).
 */
export function createHostAgentApi(deps: {
  db: Database;
  clock: Clock;
  hosts: Hosts;
  apps: Apps;
  credentials: Credentials;
  audit: AuditLog;
  vaultResource: string;
  vaultUrlTemplate: () => string;
}) {
  const { db, clock, hosts, apps, credentials, audit } = deps;

  /** The host, when the caller is that host's own principal (a host sees only itself). */
  const asHost = async (caller: Caller, hostId: string): Promise<Host> => {
    const h = isGuid(hostId) ? await hosts.byId(caller.tenantId, hostId) : undefined;
    if (!h) throw new LatchkeyError('ResourceNotFound', 'Host not found.');
    if (caller.oid !== h.principalId)
      throw new LatchkeyError(
        'Forbidden',
        'Only the host itself may call this API (authenticate with its certificate).',
      );
    return h;
  };
  const servedBy = async (h: Host, principalId: string): Promise<ServedIdentity> => {
    for (const a of await apps.placedOn(h)) {
      const i = servedIdentities(a).find((x) => x.principalId === principalId.toLowerCase());
      if (i) return i;
    }
    throw new LatchkeyError('ResourceNotFound', 'No app on this host has that identity.');
  };
  /** The host (the caller itself) and the identity it serves of `at.principalId`. */
  const served = async (caller: Caller, at: ServedIdentityRef) => {
    const h = await asHost(caller, at.hostId);
    return { h, i: await servedBy(h, at.principalId) };
  };
  const tag = (h: Host) => hostCredentialTag(h.id);

  return {
    async manifest(caller: Caller, hostId: string): Promise<HostManifest> {
      const h = await asHost(caller, hostId);
      const placed = await apps.placedOn(h);
      return {
        hostId: h.id,
        hostName: h.name,
        tenantId: h.tenantId,
        vaultResource: deps.vaultResource,
        vaultUrlTemplate: deps.vaultUrlTemplate(),
        apps: placed.map((a) => ({
          name: a.name,
          id: a.armId,
          rowId: a.rowId,
          identities: servedIdentities(a),
          keyVaultReferenceIdentity: keyVaultIdentity(a),
        })),
      };
    },
    async appSettings(
      caller: Caller,
      meta: RequestMeta,
      hostId: string,
      appName: string,
    ): Promise<AppSettings> {
      const h = await asHost(caller, hostId);
      const a = await apps.byName(h.tenantId, appName);
      if (!a || a.hostId !== h.id) throw new LatchkeyError('ResourceNotFound', 'No such app on this host.');
      const settings = await apps.readSettings(a);
      await audit.record(auditOf(caller, meta, 'AppSettingsReadByHost', a.armId, { host: h.name }));
      return settings;
    },

    // ---- certificates of the host itself (renewal) ----
    async listOwnCertificates(caller: Caller, hostId: string): Promise<CredentialInfo[]> {
      const h = await asHost(caller, hostId);
      return (await credentials.list(h.tenantId, h.principalId)).filter((c) => c.displayName === tag(h));
    },
    async addOwnCertificate(caller: Caller, meta: RequestMeta, hostId: string, pem: string) {
      const h = await asHost(caller, hostId);
      return db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        const c = await hosts.addCertificate(h, pem, tx);
        await audit.append(tx, auditOf(caller, meta, 'HostCertificateAdd', h.armId, { keyId: c.keyId }));
        return c;
      });
    },
    async deleteOwnCertificate(caller: Caller, meta: RequestMeta, hostId: string, keyId: string) {
      const h = await asHost(caller, hostId);
      await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        await credentials.delete(h.tenantId, h.principalId, keyId, tx);
        await audit.append(tx, auditOf(caller, meta, 'HostCertificateDelete', h.armId, { keyId }));
      });
    },

    // ---- certificates of identities served by the host ----
    async listIdentityCertificates(caller: Caller, at: ServedIdentityRef) {
      const { h, i } = await served(caller, at);
      return (await credentials.list(h.tenantId, i.principalId)).filter((c) => c.displayName === tag(h));
    },
    async addIdentityCertificate(caller: Caller, meta: RequestMeta, at: ServedIdentityRef, pem: string) {
      const { h, i } = await served(caller, at);
      return db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        // Expired certificates this host registered earlier go first (a crash may have left some).
        await hostStore.deleteExpiredHostCredentials(tx, i.principalId, tag(h), clock.now());
        const c = await credentials.addCertificate(
          h.tenantId,
          i.principalId,
          pem,
          { displayName: tag(h) },
          tx,
        );
        await audit.append(
          tx,
          auditOf(caller, meta, 'ManagedIdentityCertificateAdd', i.resourceId, {
            keyId: c.keyId,
            host: h.name,
          }),
        );
        return c;
      });
    },
    async deleteIdentityCertificate(caller: Caller, meta: RequestMeta, at: ServedIdentityRef, keyId: string) {
      const { h, i } = await served(caller, at);
      const mine = (await credentials.list(h.tenantId, i.principalId)).some(
        (c) => c.keyId === keyId.toLowerCase() && c.displayName === tag(h),
      );
      if (!mine) throw new LatchkeyError('NotFound', 'Credential not found.');
      await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        await credentials.delete(h.tenantId, i.principalId, keyId, tx);
        await audit.append(
          tx,
          auditOf(caller, meta, 'ManagedIdentityCertificateDelete', i.resourceId, { keyId, host: h.name }),
        );
      });
    },
  };
}
export type HostAgentApi = ReturnType<typeof createHostAgentApi>;
