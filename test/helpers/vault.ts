import { ClientSecretCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { findRole } from '../../src/access/roles.js';
import type { TestServer } from './server.js';

export interface VaultTestPrincipal {
  id: string;
  appId: string;
  secret: string;
  credential: ClientSecretCredential;
}

/** A service principal with a client secret (white-box: straight through the services). */
export async function vaultPrincipal(s: TestServer, displayName: string, tenantId = s.info.tenantId) {
  const sp = await s.services.principals.createServicePrincipal(tenantId, { displayName });
  const c = await s.services.credentials.addSecret(tenantId, sp.id);
  const credential = new ClientSecretCredential(tenantId, sp.appId!, c.secretText, {
    authorityHost: s.info.authority,
    disableInstanceDiscovery: true,
    agent: s.agent,
  });
  return { id: sp.id, appId: sp.appId!, secret: c.secretText, credential } satisfies VaultTestPrincipal;
}

/** Grants a built-in role at a scope (white-box: the role-assignment API belongs elsewhere). */
export async function grant(
  s: TestServer,
  principalId: string,
  role: string,
  scope: string,
  tenantId = s.info.tenantId,
) {
  await s.services.access.create(tenantId, { principalId, role: findRole(role)!, scope });
}

/** A client-credentials token for the vault audience, fetched directly from the token endpoint. */
export async function vaultToken(
  s: TestServer,
  p: { appId: string; secret: string },
  tenantId = s.info.tenantId,
) {
  const r = await s.request('POST', `/${tenantId}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'client_credentials',
      client_id: p.appId,
      client_secret: p.secret,
      scope: `${s.info.vaultResource}/.default`,
    },
  });
  if (r.status !== 200) throw new Error(`token: ${r.status} ${r.text}`);
  return r.json.access_token as string;
}

export const vaultPath = (s: TestServer, name: string, rg = 'default') =>
  `/subscriptions/${s.info.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.KeyVault/vaults/${name}`;

/**
 * PUT a vault through the ARM API as the admin: RBAC unless `body.properties` say otherwise
 * (before api-version 2026-02-01 an absent `enableRbacAuthorization` means access policies).
 */
export async function putVault(
  s: TestServer,
  name: string,
  body: { properties?: Record<string, unknown> } & Record<string, unknown> = {},
) {
  const r = await s.request('PUT', `${vaultPath(s, name)}?api-version=2023-07-01`, {
    headers: { authorization: `Bearer ${await s.adminToken()}` },
    json: {
      location: 'local',
      ...body,
      properties: {
        sku: { family: 'A', name: 'standard' },
        enableRbacAuthorization: true,
        ...body.properties,
      },
    },
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`PUT vault ${name}: ${r.status} ${r.text}`);
  return r.json as { id: string; properties: { vaultUri: string } };
}

/** The official SecretClient with default options (challenge resource verification on). */
export const secretClient = (s: TestServer, vault: string, p: VaultTestPrincipal) =>
  new SecretClient(s.vaultUrl(vault), p.credential, { agent: s.agent });
