import type { ResourceResolver, ScopeResolver } from '../access/arm-scope.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { Credentials } from '../authority/credentials.js';
import type { Principals } from '../authority/principals.js';
import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import type { Database } from '../storage/port.js';
import { createApps } from './apps.js';
import { createHostAgentApi } from './host-agent.js';
import { createHosts } from './hosts.js';
import { createUserIdentities } from './identities.js';
import { HOST_TYPE, SITE_TYPE, UAI_TYPE } from './identity-common.js';
import type { Scopes } from './scopes.js';

/**
 * The managed-identity domain: hosts, user-assigned identities, apps, and the
 * API hosts call. Also makes apps, identities and hosts valid role-assignment
 * scopes.
 */
export function createIdentityDomain(deps: {
  db: Database;
  clock: Clock;
  bus: ChangeBus;
  sealer: Sealer;
  principals: Principals;
  credentials: Credentials;
  scopes: Scopes;
  access: Access;
  audit: AuditLog;
  scopeResolver?: Pick<ScopeResolver, 'registerResourceType'>;
  vaultResource: string;
  vaultUrlTemplate: () => string;
}) {
  const hosts = createHosts(deps);
  const userIdentities = createUserIdentities(deps);
  const apps = createApps({ ...deps, hosts, identities: userIdentities });
  const hostAgent = createHostAgentApi({ ...deps, hosts, apps });

  const noChildren = (children: readonly string[]) => {
    if (children.length) throw new LatchkeyError('BadParameter', 'This resource type has no child scopes.');
  };
  const site: ResourceResolver = async (ref) => {
    noChildren(ref.children);
    return (await apps.find(ref.tenantId, ref.subscriptionId, ref.resourceGroup, ref.name))?.armId;
  };
  const uai: ResourceResolver = async (ref) => {
    noChildren(ref.children);
    return (await userIdentities.find(ref.tenantId, ref.subscriptionId, ref.resourceGroup, ref.name))?.armId;
  };
  const host: ResourceResolver = async (ref) => {
    noChildren(ref.children);
    const h = await hosts.byName(ref.tenantId, ref.name);
    return h &&
      h.subscriptionId === ref.subscriptionId.toLowerCase() &&
      h.resourceGroup.toLowerCase() === ref.resourceGroup.toLowerCase()
      ? h.armId
      : undefined;
  };
  deps.scopeResolver?.registerResourceType(SITE_TYPE, site);
  deps.scopeResolver?.registerResourceType(UAI_TYPE, uai);
  deps.scopeResolver?.registerResourceType(HOST_TYPE, host);

  return { hosts, userIdentities, apps, hostAgent };
}
export type IdentityDomain = ReturnType<typeof createIdentityDomain>;
