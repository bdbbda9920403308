/**
 * Provisioning-key scopes and the control-plane actions each allows. A key is
 * never more than its scopes: it does not inherit its creator's roles.
 */
export const PROVISIONING_SCOPES = {
  // Enrol new hosts (the service refuses a key's PUT on an existing host: re-keying a host is
  // RBAC's hosts/write, never a key's), see them, and place apps on them. Never delete.
  'hosts:enroll': [
    'Microsoft.Latchkey/hosts/read',
    'Microsoft.Latchkey/hosts/write',
    'Microsoft.Latchkey/hosts/assign/action',
  ],
  // Not what would let the key act as an identity: attaching it to an app (whose host gets its
  // tokens) or giving it a federated credential (whose issuer's tokens become its tokens). Those are
  // `identities:assign`: an identity may hold roles far beyond the key's scopes and resource group.
  'identities:write': [
    'Microsoft.ManagedIdentity/userAssignedIdentities/read',
    'Microsoft.ManagedIdentity/userAssignedIdentities/write',
    'Microsoft.ManagedIdentity/userAssignedIdentities/delete',
    'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read',
    'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete',
  ],
  // Acting as any user-assigned identity the key reaches, with all of its roles (wherever they
  // are): attach it to an app, give it a federated credential. Azure's Managed Identity Operator's
  // `assign/action`, plus the credentials Managed Identity Contributor may write.
  'identities:assign': [
    'Microsoft.ManagedIdentity/userAssignedIdentities/read',
    'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action',
    'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read',
    'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write',
  ],
  // Not `config/list/action`: an app's settings are sealed values, and writing them does not mean reading them.
  'apps:write': [
    'Microsoft.Web/sites/read',
    'Microsoft.Web/sites/write',
    'Microsoft.Web/sites/delete',
    'Microsoft.Web/sites/config/write',
  ],
  // Control plane only: vault data (secrets, keys) needs secrets:write.
  'vaults:write': [
    'Microsoft.KeyVault/vaults/read',
    'Microsoft.KeyVault/vaults/write',
    'Microsoft.KeyVault/vaults/delete',
    'Microsoft.KeyVault/vaults/accessPolic*',
    'Microsoft.KeyVault/locations/deletedVaults/*',
    'Microsoft.KeyVault/deletedVaults/*',
  ],
  'roleAssignments:write': [
    'Microsoft.Authorization/roleAssignments/*',
    'Microsoft.Authorization/roleDefinitions/read',
  ],
  // Writes and metadata only: never `getSecret` (a value) nor `backup` (every value, sealed).
  'secrets:write': [
    'Microsoft.KeyVault/vaults/secrets/setSecret/action',
    'Microsoft.KeyVault/vaults/secrets/update/action',
    'Microsoft.KeyVault/vaults/secrets/delete',
    'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
    'Microsoft.KeyVault/vaults/secrets/recover/action',
    'Microsoft.KeyVault/vaults/secrets/purge/action',
    'Microsoft.KeyVault/vaults/secrets/restore/action',
  ],
  // Application registrations' credentials (a manifest's `applications`, the Graph routes): the
  // directory's credentials action at `/`, which is every credential of every application in the
  // tenant, passwords included. Never for a key bound to a resource group (`/` is outside it).
  'applications:credentials': [
    'Microsoft.Directory/servicePrincipals/read',
    'Microsoft.Directory/servicePrincipals/credentials/write',
  ],
  'audit:read': ['Microsoft.Latchkey/auditEvents/read'],
} as const satisfies Record<string, readonly string[]>;

export type ProvisioningScope = keyof typeof PROVISIONING_SCOPES;

export const isProvisioningScope = (s: string): s is ProvisioningScope =>
  Object.hasOwn(PROVISIONING_SCOPES, s);

/** Reads that any write scope on a resource type implies (a pipeline must see what it changes). */
const implicitReads = ['Microsoft.Resources/*/read', 'Microsoft.Resources/subscriptions/read'];

/** The scope that grants `action`, if any of `scopes` does. */
export function scopeFor(
  scopes: readonly string[],
  action: string,
  matches: (pattern: string, action: string) => boolean,
) {
  if (implicitReads.some((p) => matches(p, action))) return scopes[0];
  return scopes.find((s) => isProvisioningScope(s) && PROVISIONING_SCOPES[s].some((p) => matches(p, action)));
}

/** The scope a caller would need for `action` (for error messages that tell the fix). */
export function scopeNeeded(
  action: string,
  matches: (pattern: string, action: string) => boolean,
): string | undefined {
  return (Object.keys(PROVISIONING_SCOPES) as ProvisioningScope[]).find((s) =>
    PROVISIONING_SCOPES[s].some((p) => matches(p, action)),
  );
}
