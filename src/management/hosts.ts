import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { CredentialInfo, Credentials } from '../authority/credentials.js';
import type { Principals } from '../authority/principals.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid, newGuid } from '../lib/ids.js';
import { hostStore, type StoredHost } from '../storage/management/host-store.js';
import type { Database, Queryable } from '../storage/port.js';
import {
  armId,
  auditOf,
  checkName,
  HOST_ACTIONS,
  HOST_NAME_RE,
  HOST_TYPE,
  parseArmId,
  readableAt,
  readableOnly,
  resourceNotFound,
  writableAt,
} from './identity-common.js';
import { DEFAULT_RESOURCE_GROUP, type Scopes } from './scopes.js';

/** A workload host: where an identity endpoint (`latchkey up` or `latchkey agent`) serves apps' identities. */
export interface Host extends StoredHost {
  armId: string;
}

const fromRow = (r: StoredHost): Host => ({
  ...r,
  armId: armId(r.subscriptionId, r.resourceGroup, HOST_TYPE, r.name),
});

export const LOCAL_HOST_NAME = 'local';
/** Display name of the credentials a host registers (for itself and for identities it serves). */
export const hostCredentialTag = (hostId: string): string => `latchkey-host:${hostId}`;

/** The ARM JSON of a host. */
export const hostView = (h: Host) => ({
  id: h.armId,
  name: h.name,
  type: HOST_TYPE,
  location: 'local',
  properties: {
    hostId: h.id,
    tenantId: h.tenantId,
    principalId: h.principalId,
    clientId: h.clientId,
    builtIn: h.builtIn,
    createdTime: new Date(h.createdAt).toISOString(),
  },
});

/**
 * Hosts (`Microsoft.Latchkey/hosts`). Each has a principal whose certificate
 * credentials the host's endpoint holds; `latchkey up` has a built-in `local`
 * host, `latchkey agent --enroll` registers others.
 */
export function createHosts(deps: {
  db: Database;
  clock: Clock;
  principals: Principals;
  credentials: Credentials;
  scopes: Scopes;
  access: Access;
  audit: AuditLog;
}) {
  const { db, clock, principals, credentials, scopes, access, audit } = deps;

  const insertHost = async (
    q: Queryable,
    tenantId: string,
    sub: string,
    rg: string,
    name: string,
    builtIn: boolean,
  ): Promise<Host> => {
    const id = newGuid();
    const p = await principals.createServicePrincipal(
      tenantId,
      {
        displayName: `host:${name}`,
        kind: 'managedIdentity',
        resourceId: armId(sub, rg, HOST_TYPE, name),
      },
      q,
    );
    const now = clock.now();
    await hostStore.insert(q, {
      id,
      tenantId,
      subscriptionId: sub,
      resourceGroup: rg,
      name,
      principalId: p.id,
      builtIn,
      createdAt: now,
    });
    return (await self.byId(tenantId, id, q))!;
  };

  const self = {
    async byId(tenantId: string, id: string, q: Queryable = db): Promise<Host | undefined> {
      if (!isGuid(id)) return undefined;
      const r = await hostStore.findById(q, tenantId, id.toLowerCase());
      return r && fromRow(r);
    },
    async byName(tenantId: string, name: string, q: Queryable = db): Promise<Host | undefined> {
      const r = await hostStore.findByName(q, tenantId, name.toLowerCase());
      return r && fromRow(r);
    },
    /** A host named by name, host id or ARM id, in the tenant (404 otherwise). */
    async resolve(tenantId: string, ref: string, q: Queryable = db): Promise<Host> {
      const parsed = ref.startsWith('/') ? parseArmId(ref) : undefined;
      const h = parsed
        ? parsed.type.toLowerCase() === HOST_TYPE.toLowerCase()
          ? await self.byName(tenantId, parsed.name, q)
          : undefined
        : ((await self.byId(tenantId, ref, q)) ?? (await self.byName(tenantId, ref, q)));
      if (!h || (parsed && h.subscriptionId !== parsed.subscriptionId))
        throw resourceNotFound(HOST_TYPE, ref.split('/').pop() ?? ref);
      return h;
    },
    /** The tenant's built-in host (`local`), created on first use. */
    async ensureLocal(tenantId: string): Promise<Host> {
      const found = await hostStore.findBuiltIn(db, tenantId);
      if (found) return fromRow(found);
      return db.transaction(async (tx) => {
        await audit.hold(tx); // it appends below: lock order (audit/log.ts)
        await tx.lock(`latchkey:local-host:${tenantId}`);
        const again = await hostStore.findBuiltIn(tx, tenantId);
        if (again) return fromRow(again);
        const sub = await scopes.defaultSubscription(tenantId, tx);
        const rg = await scopes.ensureResourceGroup(tenantId, sub.subscriptionId, DEFAULT_RESOURCE_GROUP, tx);
        const h = await insertHost(tx, tenantId, sub.subscriptionId, rg.name, LOCAL_HOST_NAME, true);
        await audit.append(tx, {
          tenantId,
          operation: 'HostCreate',
          target: h.armId,
          status: 200,
          details: { builtIn: true },
        });
        return h;
      });
    },
    /** Registers a public certificate for the host's own principal (enrolment, renewal). */
    async addCertificate(host: Host, pem: string, q: Queryable = db): Promise<CredentialInfo> {
      await hostStore.deleteExpiredHostCredentials(
        q,
        host.principalId,
        hostCredentialTag(host.id),
        clock.now(),
      );
      return credentials.addCertificate(
        host.tenantId,
        host.principalId,
        pem,
        {
          displayName: hostCredentialTag(host.id),
        },
        q,
      );
    },

    /**
     * Removes the certificates a host registered for identities it no longer
     * serves (detached, app deleted or moved): from then on the host cannot
     * get tokens for them, whatever keys it kept.
     */
    async pruneUnserved(hostId: string, principalIds: readonly string[], q: Queryable = db): Promise<void> {
      for (const pid of new Set(principalIds)) {
        await hostStore.deleteUnservedCredentials(q, hostId, pid, hostCredentialTag(hostId));
        credentials.changed(pid);
      }
    },

    // ---- ARM (administrators) ----
    async createOrUpdate(
      caller: Caller,
      meta: RequestMeta,
      input: { subscriptionId: string; resourceGroup: string; name: string; certificate?: string },
    ): Promise<{ host: Host; created: boolean; credential: CredentialInfo | null }> {
      checkName(HOST_NAME_RE, input.name, 'host', '1–63 letters, digits, dots, hyphens and underscores.');
      const { subscriptionId, resourceGroup } = await writableAt(
        access,
        scopes,
        caller,
        HOST_ACTIONS.write,
        HOST_TYPE,
        input,
      );
      return db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        let host = await self.byName(caller.tenantId, input.name, tx);
        if (
          host &&
          (host.subscriptionId !== subscriptionId ||
            host.resourceGroup.toLowerCase() !== resourceGroup.toLowerCase())
        )
          throw new LatchkeyError(
            'Conflict',
            `A host named '${input.name}' already exists in another resource group.`,
          );
        const created = !host;
        // A provisioning key enrols new hosts; a credential for an existing host is a hosts/write
        // of a principal with RBAC on it (a key could otherwise take over any host it can name).
        if (host && caller.provisioningScopes)
          throw new LatchkeyError(
            'Conflict',
            `A host named '${input.name}' already exists: a provisioning key enrols new hosts only; adding a certificate to an existing host needs a principal with hosts/write on it.`,
          );
        if (host?.builtIn && input.certificate)
          throw new LatchkeyError(
            'BadRequest',
            `'${host.name}' is the built-in host of 'latchkey up': its certificates are managed by its own endpoint, never over the API.`,
          );
        if (!host) {
          if (!input.certificate)
            throw new LatchkeyError(
              'BadParameter',
              'A new host needs properties.certificate (its public certificate, PEM).',
            );
          host = await insertHost(tx, caller.tenantId, subscriptionId, resourceGroup, input.name, false);
        }
        const credential = input.certificate ? await self.addCertificate(host, input.certificate, tx) : null;
        await hostStore.touch(tx, host.id, clock.now());
        await audit.append(
          tx,
          auditOf(caller, meta, created ? 'HostCreate' : 'HostUpdate', host.armId, {
            certificate: credential?.keyId ?? null,
          }),
        );
        return { host, created, credential };
      });
    },
    get: (caller: Caller, subscriptionId: string, resourceGroup: string, name: string): Promise<Host> =>
      readableAt(
        access,
        caller,
        HOST_ACTIONS.read,
        HOST_TYPE,
        async (tenantId, sub, rg, n) => {
          const h = await self.byName(tenantId, n);
          const placed =
            h?.subscriptionId === sub.toLowerCase() && h.resourceGroup.toLowerCase() === rg.toLowerCase();
          return placed ? h : undefined;
        },
        [subscriptionId, resourceGroup, name],
      ),
    /**
     * The host with this id, if the caller may read it (`hosts/read` at the host); undefined
     * otherwise, as for no such host. For pages that name an app's host.
     */
    async readableById(caller: Caller, id: string): Promise<Host | undefined> {
      const h = await self.byId(caller.tenantId, id);
      return h && (await access.allows(caller, HOST_ACTIONS.read, h.armId)) ? h : undefined;
    },
    async list(caller: Caller, subscriptionId?: string, resourceGroup?: string): Promise<Host[]> {
      const rows = await hostStore.listByTenant(db, caller.tenantId);
      const placed = rows
        .map(fromRow)
        .filter(
          (h) =>
            (!subscriptionId || h.subscriptionId === subscriptionId.toLowerCase()) &&
            (!resourceGroup || h.resourceGroup.toLowerCase() === resourceGroup.toLowerCase()),
        );
      return readableOnly(access, caller, HOST_ACTIONS.read, placed);
    },
    async delete(
      caller: Caller,
      meta: RequestMeta,
      subscriptionId: string,
      resourceGroup: string,
      name: string,
    ) {
      const h = await self.get(caller, subscriptionId, resourceGroup, name).catch(async (e) => {
        if (e instanceof LatchkeyError && e.code === 'Forbidden') throw e;
        return undefined;
      });
      if (!h) return false;
      await access.require(caller, HOST_ACTIONS.delete, h.armId);
      if (h.builtIn) throw new LatchkeyError('BadRequest', 'The built-in local host cannot be deleted.');
      await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        if ((await hostStore.countApps(tx, h.id)) > 0)
          throw new LatchkeyError(
            'Conflict',
            `Apps are placed on host '${h.name}': move or delete them first.`,
          );
        await hostStore.delete(tx, h.id);
        await principals.delete(h.tenantId, h.principalId, tx);
        await access.deleteAtOrBelow(h.tenantId, h.armId, tx);
        await audit.append(tx, auditOf(caller, meta, 'HostDelete', h.armId));
      });
      return true;
    },
  };
  return self;
}
export type Hosts = ReturnType<typeof createHosts>;
