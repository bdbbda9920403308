import type { Caller, RequestMeta } from '../access/caller.js';
import { callerEvent } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import { DIRECTORY_ACTIONS } from '../access/roles.js';
import type { AuditLog } from '../audit/log.js';
import type { TenantIssuers } from '../authority/tenant-issuers.js';
import type { Tenants } from '../authority/tenants.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';

/** At most this many issuers on a tenant's list (the server's list is the real bound). */
export const MAX_TENANT_ISSUERS = 50;

/** A tenant's federation issuers as the API shows them. */
export interface TenantFederationView {
  tenantId: string;
  /** The tenant's own list; null: the tenant follows the server's list. */
  allowedIssuers: string[] | null;
  /** The server's list (`federation.allowedIssuers`): what a tenant may choose from. */
  serverAllowedIssuers: string[];
  /** What the tenant's federated credentials may name now (the server's list, narrowed). */
  effectiveIssuers: string[];
}

/**
 * Latchkey-specific tenant settings (no Azure counterpart): today the tenant's federation issuer
 * allow-list, which can only narrow the server's (docs/federation.md, "Per-tenant issuer
 * allow-list"). Reading and changing are the tenant admin's (`Microsoft.Latchkey/tenantSettings/write`
 * at "/", which Owner has and Contributor has not); another tenant's settings are a 404.
 */
export function createTenantSettings(deps: {
  db: Database;
  clock: Clock;
  access: Access;
  audit: AuditLog;
  tenants: Pick<Tenants, 'find'>;
  issuers: TenantIssuers;
}) {
  const { db, access, issuers } = deps;
  /** The caller's own tenant (by GUID or domain) once the caller is its admin; any other is a 404. */
  const own = async (caller: Caller, ref: string) => {
    const t = await deps.tenants.find(ref);
    if (!t || t.id !== caller.tenantId) throw new LatchkeyError('NotFound', 'Tenant not found.');
    await access.require(caller, DIRECTORY_ACTIONS.tenantSettings, '/');
    return t;
  };
  const view = async (tenantId: string): Promise<TenantFederationView> => {
    const list = await issuers.tenantList(tenantId);
    return {
      tenantId,
      allowedIssuers: list === null ? null : [...list],
      serverAllowedIssuers: issuers.serverIssuers(),
      effectiveIssuers: await issuers.effective(tenantId),
    };
  };
  return {
    async getFederation(caller: Caller, ref: string): Promise<TenantFederationView> {
      return view((await own(caller, ref)).id);
    },
    /**
     * Sets the tenant's issuers (null: follow the server's list). Every issuer must be on the
     * server's list: a tenant narrows it, never widens it. Credentials that name an issuer taken
     * off stay, but their exchanges are refused at once on every node.
     */
    async setFederation(
      caller: Caller,
      meta: RequestMeta,
      ref: string,
      allowedIssuers: readonly string[] | null,
    ): Promise<TenantFederationView> {
      const t = await own(caller, ref);
      const list = allowedIssuers === null ? null : [...new Set(allowedIssuers)];
      if (list && list.length > MAX_TENANT_ISSUERS)
        throw new LatchkeyError('BadParameter', `A tenant lists at most ${MAX_TENANT_ISSUERS} issuers.`);
      const foreign = list?.find((i) => !issuers.serverAllows(i));
      if (foreign !== undefined)
        throw new LatchkeyError(
          'BadParameter',
          `The issuer '${foreign.slice(0, 600)}' is not on this server's list of allowed federation issuers: a tenant can only narrow that list (an operator sets federation.allowedIssuers).`,
        );
      await db.transaction(async (tx) => {
        await deps.audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        await issuers.set(tx, t.id, list, deps.clock.now());
        await deps.audit.append(
          tx,
          callerEvent(caller, meta, {
            operation: 'TenantFederationIssuersSet',
            target: `/tenants/${t.id}`,
            status: 200,
            details: {
              allowedIssuers: list === null ? null : list.join(' ').slice(0, 3000),
              count: list?.length ?? null,
            },
          }),
        );
      });
      issuers.changed(t.id);
      return view(t.id);
    },
  };
}
export type TenantSettingsService = ReturnType<typeof createTenantSettings>;
