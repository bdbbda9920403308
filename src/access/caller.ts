import type { AuditInput } from '../audit/log.js';

/** Who is calling: the verified identity behind a request (from an access token or a provisioning key). */
export interface Caller {
  tenantId: string;
  /** Object id of the principal. */
  oid: string;
  /** Client (app) id the token was issued to. */
  appId: string | null;
  kind: 'user' | 'app';
  /** Set when the call is made with a provisioning key (its scopes then bound the call). */
  provisioningKeyId?: string;
  provisioningScopes?: readonly string[];
  /** A provisioning key limited to one resource group: its id (`/subscriptions/{s}/resourceGroups/{rg}`). */
  provisioningResourceGroup?: string;
}

/** Request metadata carried into audit records. */
export interface RequestMeta {
  requestId: string;
  clientIp: string;
}

/** What an audit record says about the operation itself (the caller's part comes from the Caller). */
export interface CallerEventInput {
  operation: string;
  target: string | null;
  status: number;
  vault?: string | null;
  details?: AuditInput['details'];
}

/**
 * The audit record of an operation made by `caller`: who (ids and kind, the provisioning key if
 * any), what, and the request's id and client address. Ids and metadata only, never a value.
 */
export function callerEvent(caller: Caller, meta: RequestMeta, e: CallerEventInput): AuditInput {
  return {
    tenantId: caller.tenantId,
    callerOid: caller.oid,
    callerAppId: caller.appId,
    callerKind: caller.kind,
    provisioningKeyId: caller.provisioningKeyId ?? null,
    operation: e.operation,
    target: e.target,
    vault: e.vault ?? null,
    status: e.status,
    clientIp: meta.clientIp,
    requestId: meta.requestId,
    details: e.details ?? null,
  };
}
