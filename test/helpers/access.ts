import { randomUUID } from 'node:crypto';
import { createServicePrincipal, secretTokenRequest } from './authority.js';
import type { TestServer } from './server.js';

export interface TestPrincipal {
  id: string;
  appId: string;
  secret: string;
  /** A fresh client-credentials token for `resource` (default: the vault audience). */
  token(resource?: string): Promise<string>;
}

/** A service principal with a client secret, and a way to get its tokens. */
export async function servicePrincipal(s: TestServer, displayName: string): Promise<TestPrincipal> {
  const p = await createServicePrincipal(s, { displayName });
  const secret = p.secret!;
  return {
    id: p.id,
    appId: p.appId,
    secret,
    async token(resource = s.info.vaultResource) {
      const r = await secretTokenRequest(s, { appId: p.appId, secret }, `${resource}/.default`);
      if (r.status !== 200) throw new Error(`token for ${displayName}: ${r.status} ${r.text}`);
      return r.json.access_token as string;
    },
  };
}

/** The role definition GUIDs of Azure's built-in roles used in tests. */
export const ROLE_IDS = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  Reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  'Key Vault Administrator': '00482a5a-887f-4fb3-b363-3b7fe8e74483',
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6',
  'Key Vault Reader': '21090545-7ca7-4776-b22c-e363652d74d2',
  'Key Vault Crypto Officer': '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
  'Key Vault Crypto User': '12338af0-0e69-4776-bea7-57ae8d297424',
} as const;
export type RoleName = keyof typeof ROLE_IDS;

const authz = (scope: string) =>
  `${scope === '/' ? '' : scope}/providers/Microsoft.Authorization/roleAssignments`;

/** Creates a role assignment through the ARM API as the admin; returns its full id. */
export async function assignRole(
  s: TestServer,
  principalId: string,
  role: RoleName,
  scope: string,
): Promise<string> {
  const r = await s.request('PUT', `${authz(scope)}/${randomUUID()}?api-version=2022-04-01`, {
    headers: { authorization: `Bearer ${await s.adminToken()}` },
    json: {
      properties: {
        roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${ROLE_IDS[role]}`,
        principalId,
      },
    },
  });
  if (r.status !== 201) throw new Error(`assign ${role} at ${scope}: ${r.status} ${r.text}`);
  return r.json.id as string;
}

/** Deletes a role assignment by its full id as the admin. */
export async function unassignRole(s: TestServer, id: string): Promise<void> {
  const r = await s.request('DELETE', `${id}?api-version=2022-04-01`, {
    headers: { authorization: `Bearer ${await s.adminToken()}` },
  });
  if (r.status !== 200) throw new Error(`unassign ${id}: ${r.status} ${r.text}`);
}

/** ARM path of a vault in the test server's default subscription and resource group. */
export const vaultArmPath = (s: TestServer, name: string, rg = 'default') =>
  `/subscriptions/${s.info.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.KeyVault/vaults/${name}`;

/** Creates a vault through the ARM API as the admin (RBAC unless `properties` say otherwise). */
export async function createVault(
  s: TestServer,
  name: string,
  properties: Record<string, unknown> = {},
): Promise<{ id: string; vaultUri: string }> {
  const r = await s.request('PUT', `${vaultArmPath(s, name)}?api-version=2023-07-01`, {
    headers: { authorization: `Bearer ${await s.adminToken()}` },
    json: {
      location: 'local',
      properties: { sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true, ...properties },
    },
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`create vault ${name}: ${r.status} ${r.text}`);
  return { id: r.json.id, vaultUri: r.json.properties.vaultUri };
}
