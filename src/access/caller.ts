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
