import { generateKeyCertificate } from './certificates.js';
import { DEFAULT_ROLL_POLICY, installCredential } from './credential-roller.js';
import { type HostState, openStateStore } from './state-store.js';

/**
 * A management API client that is already authenticated: today the CLI's
 * admin login; later (issue 6) a provisioning key. Enrolment needs nothing
 * else from it.
 */
export interface ManagementClient {
  /** `https://host[:port]` of the Latchkey server. */
  server: string;
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
}

interface HostJson {
  id: string;
  name: string;
  properties: {
    hostId: string;
    tenantId: string;
    principalId: string;
    clientId: string;
    credential: { keyId: string } | null;
  };
}

/**
 * Registers this machine as a host: generates the host key locally (it never
 * leaves the state dir), creates or updates the `Microsoft.Latchkey/hosts`
 * resource with the public certificate, and writes `host.json` and the
 * credential into the 0700 state dir.
 */
export async function enrollHost(
  client: ManagementClient,
  opts: {
    stateDir: string;
    hostName: string;
    subscriptionId: string;
    resourceGroup: string;
    caFile?: string;
    lifetimeMs?: number;
  },
): Promise<HostState> {
  const store = openStateStore(opts.stateDir);
  const cred = await generateKeyCertificate(
    `latchkey-host-${opts.hostName}`,
    opts.lifetimeMs ?? DEFAULT_ROLL_POLICY.lifetimeMs,
  );
  const path = `/subscriptions/${encodeURIComponent(opts.subscriptionId)}/resourceGroups/${encodeURIComponent(opts.resourceGroup)}/providers/Microsoft.Latchkey/hosts/${encodeURIComponent(opts.hostName)}?api-version=2024-01-01`;
  const h = await client.call<HostJson>('PUT', path, { properties: { certificate: cred.certPem } });
  if (!h.properties.credential) throw new Error('the server did not register the host certificate');
  const state: HostState = {
    hostId: h.properties.hostId,
    hostName: h.name,
    tenantId: h.properties.tenantId,
    principalId: h.properties.principalId,
    clientId: h.properties.clientId,
    server: client.server.replace(/\/+$/, ''),
    ...(opts.caFile ? { caFile: opts.caFile } : {}),
  };
  installCredential(store, 'host', { ...cred, keyId: h.properties.credential.keyId, createdAt: Date.now() });
  store.saveHost(state);
  return state;
}
