import type { AuditEvent, AuditFilter, AuditLog } from '../audit/log.js';
import type { Principals } from '../authority/principals.js';
import { isGuid } from '../lib/ids.js';
import { type Caller, callerEvent, type RequestMeta } from './caller.js';
import type { Access } from './decision.js';

/**
 * Actions guarding the audit log, checked at the tenant root. Reading matches
 * `*\/read` (Owner, Contributor, Reader at "/"); verifying walks the whole
 * installation's chain, so it is an action (Owner, Contributor).
 */
export const AUDIT_ACTIONS = {
  read: 'Microsoft.Latchkey/auditEvents/read',
  verify: 'Microsoft.Latchkey/auditEvents/verify/action',
} as const;

/** An audit event as the API shows it: times in ISO 8601, caller flattened. */
export function auditEventView(e: AuditEvent) {
  return {
    seq: e.seq,
    id: e.id,
    time: new Date(e.time).toISOString(),
    operation: e.operation,
    status: e.status,
    target: e.target,
    vault: e.vault,
    callerOid: e.callerOid,
    callerAppId: e.callerAppId,
    callerKind: e.callerKind,
    provisioningKeyId: e.provisioningKeyId,
    clientIp: e.clientIp,
    requestId: e.requestId,
    details: e.details,
    hash: e.hash,
  };
}
export type AuditEventView = ReturnType<typeof auditEventView>;

export type AuditQuery = Omit<AuditFilter, 'tenantId'>;

/** The audit API's domain side: a tenant's events (newest first, keyset paging) and chain verification. */
export function createAuditQueries(deps: {
  audit: AuditLog;
  access: Pick<Access, 'require'>;
  principals: Pick<Principals, 'byUserName'>;
}) {
  const { audit, access, principals } = deps;

  return {
    /**
     * One page of the caller's tenant's events, newest first. `caller` may be an
     * object id, an app id or a user name. `more` says whether older events remain.
     */
    async list(
      caller: Caller,
      m: RequestMeta,
      q: AuditQuery & { limit: number },
    ): Promise<{ events: AuditEventView[]; more: boolean; last?: number }> {
      await access.require(caller, AUDIT_ACTIONS.read, '/');
      let who = q.caller;
      if (who && !isGuid(who)) who = (await principals.byUserName(caller.tenantId, who))?.principal.id ?? who;
      const rows = await audit.list({
        ...q,
        ...(who ? { caller: who } : {}),
        tenantId: caller.tenantId,
        limit: q.limit + 1,
      });
      const page = rows.slice(0, q.limit);
      await audit.record(
        callerEvent(caller, m, {
          operation: 'AuditList',
          target: '/api/audit',
          status: 200,
          details: { count: page.length },
        }),
      );
      const last = page.at(-1)?.seq;
      return { events: page.map(auditEventView), more: rows.length > q.limit, ...(last ? { last } : {}) };
    },

    /** Walks the installation's whole chain and reports the first broken link. */
    async verify(
      caller: Caller,
      m: RequestMeta,
    ): Promise<{
      ok: boolean;
      count: number;
      head?: { seq: number; hash: string } | null;
      brokenAt?: number;
      reason?: string;
    }> {
      await access.require(caller, AUDIT_ACTIONS.verify, '/');
      await audit.drain();
      const r = await audit.verify();
      await audit.record(
        callerEvent(caller, m, {
          operation: 'AuditVerify',
          target: '/api/audit/verify',
          status: 200,
          details: r.ok ? { ok: true, count: r.count } : { ok: false, count: r.count, brokenAt: r.brokenAt },
        }),
      );
      return r.ok
        ? { ok: true, count: r.count, head: r.head }
        : { ok: false, count: r.count, brokenAt: r.brokenAt, reason: r.reason };
    },
  };
}
export type AuditQueries = ReturnType<typeof createAuditQueries>;
