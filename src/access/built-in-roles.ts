// duplicate-ok-file: data, not logic: Azure's built-in role definitions copied entry by entry (same ids, names,
// actions and data actions), so the entries are alike as Azure's are; the rules that read them are in roles.ts.
/**
 * Built-in role definitions, mirroring Azure's (same ids, names and, for the
 * Key Vault roles, the same data actions), so `--role "Key Vault Secrets User"`
 * means here what it means in Azure. Actions are control-plane operations;
 * data actions are vault data-plane operations.
 */
export interface RoleDefinition {
  id: string;
  roleName: string;
  description: string;
  actions: readonly string[];
  notActions: readonly string[];
  dataActions: readonly string[];
  notDataActions: readonly string[];
}

const KV = 'Microsoft.KeyVault/vaults';

export const BUILT_IN_ROLES: readonly RoleDefinition[] = [
  {
    id: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
    roleName: 'Owner',
    description: 'Full access to manage all resources, including assigning roles.',
    actions: ['*'],
    notActions: [],
    dataActions: [],
    notDataActions: [],
  },
  {
    id: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
    roleName: 'Contributor',
    description: 'Full access to manage all resources, but not to assign roles.',
    actions: ['*'],
    notActions: [
      'Microsoft.Authorization/*/write',
      'Microsoft.Authorization/*/delete',
      'Microsoft.Latchkey/provisioningKeys/*',
      // A tenant's settings (its federation issuers) are the tenant admin's (Owner at "/"): a
      // Contributor may create federated credentials, so it must not choose which issuers they trust.
      'Microsoft.Latchkey/tenantSettings/*',
      // The tenant's CA is the root every Latchkey certificate chains to: its Owner's to roll.
      'Microsoft.Latchkey/certificateAuthority/*',
      // Setting another principal's password or credentials would let a Contributor sign in as an
      // Owner: as good as writing role assignments.
      'Microsoft.Directory/users/write',
      'Microsoft.Directory/users/delete',
      'Microsoft.Directory/servicePrincipals/credentials/write',
    ],
    dataActions: [],
    notDataActions: [],
  },
  {
    id: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
    roleName: 'Reader',
    description: 'View all resources, but make no changes.',
    actions: ['*/read'],
    notActions: [],
    dataActions: [],
    notDataActions: [],
  },
  {
    id: '00482a5a-887f-4fb3-b363-3b7fe8e74483',
    roleName: 'Key Vault Administrator',
    description: 'Perform all data plane operations on a key vault and all objects in it.',
    actions: ['Microsoft.Authorization/*/read', `${KV}/*/read`],
    notActions: [],
    dataActions: ['Microsoft.KeyVault/vaults/*'],
    notDataActions: [],
  },
  {
    id: 'f25e0fa2-a7c8-4377-a976-54943a77a395',
    roleName: 'Key Vault Contributor',
    description: 'Manage key vaults, but not their data nor access to them.',
    actions: [`${KV}/*`, 'Microsoft.Resources/*/read'],
    notActions: [],
    dataActions: [],
    notDataActions: [],
  },
  {
    id: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
    roleName: 'Key Vault Secrets Officer',
    description: 'Perform any action on the secrets of a key vault, except manage permissions.',
    actions: ['Microsoft.Authorization/*/read', `${KV}/*/read`],
    notActions: [],
    dataActions: [`${KV}/secrets/*`],
    notDataActions: [],
  },
  {
    id: '4633458b-17de-408a-b874-0445c86b69e6',
    roleName: 'Key Vault Secrets User',
    description: 'Read secret contents.',
    actions: [],
    notActions: [],
    dataActions: [`${KV}/secrets/getSecret/action`, `${KV}/secrets/readMetadata/action`],
    notDataActions: [],
  },
  {
    id: '21090545-7ca7-4776-b22c-e363652d74d2',
    roleName: 'Key Vault Reader',
    description:
      'Read metadata of key vaults and their secrets and keys, but not secret contents or key material.',
    actions: ['Microsoft.Authorization/*/read', `${KV}/*/read`],
    notActions: [],
    dataActions: [`${KV}/*/read`, `${KV}/secrets/readMetadata/action`],
    notDataActions: [],
  },
  {
    id: 'a4417e6f-fecd-4de8-b567-7b0420556985',
    roleName: 'Key Vault Certificates Officer',
    description: 'Perform any action on the certificates of a key vault, except manage permissions.',
    actions: ['Microsoft.Authorization/*/read', `${KV}/*/read`],
    notActions: [],
    dataActions: [`${KV}/certificatecas/*`, `${KV}/certificates/*`, `${KV}/certificatecontacts/write`],
    notDataActions: [],
  },
  {
    id: 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba',
    roleName: 'Key Vault Certificate User',
    description: 'Read entire certificate contents including secret and key portion.',
    actions: [],
    notActions: [],
    dataActions: [
      `${KV}/certificates/read`,
      `${KV}/secrets/getSecret/action`,
      `${KV}/secrets/readMetadata/action`,
      `${KV}/keys/read`,
    ],
    notDataActions: [],
  },
  {
    id: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
    roleName: 'Key Vault Crypto Officer',
    description: 'Perform any action on the keys of a key vault, except manage permissions.',
    actions: ['Microsoft.Authorization/*/read', `${KV}/*/read`],
    notActions: [],
    // Azure's: keys and their rotation policies; plus `rng/action` (Latchkey serves `/rng` on vaults, Azure on Managed HSM).
    dataActions: [`${KV}/keys/*`, `${KV}/keyrotationpolicies/*`, `${KV}/rng/action`],
    notDataActions: [],
  },
  {
    id: '12338af0-0e69-4776-bea7-57ae8d297424',
    roleName: 'Key Vault Crypto User',
    description: 'Perform cryptographic operations using keys.',
    actions: [],
    notActions: [],
    dataActions: [
      `${KV}/keys/read`,
      `${KV}/keys/update/action`,
      `${KV}/keys/backup/action`,
      `${KV}/keys/encrypt/action`,
      `${KV}/keys/decrypt/action`,
      `${KV}/keys/wrap/action`,
      `${KV}/keys/unwrap/action`,
      `${KV}/keys/sign/action`,
      `${KV}/keys/verify/action`,
      `${KV}/rng/action`,
    ],
    notDataActions: [],
  },
  {
    id: 'e147488a-f6f5-4113-8e2d-b22465e65bf6',
    roleName: 'Key Vault Crypto Service Encryption User',
    description: 'Read metadata of keys and perform wrap/unwrap operations.',
    actions: [],
    notActions: [],
    dataActions: [`${KV}/keys/read`, `${KV}/keys/wrap/action`, `${KV}/keys/unwrap/action`],
    notDataActions: [],
  },
  {
    id: 'f1a07417-d97a-45cb-824c-7a7467783830',
    roleName: 'Managed Identity Operator',
    description: 'Read and assign user-assigned identities.',
    actions: [
      'Microsoft.ManagedIdentity/userAssignedIdentities/*/read',
      'Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action',
    ],
    notActions: [],
    dataActions: [],
    notDataActions: [],
  },
  {
    id: 'e40ec5ca-96e0-45a2-b4ff-59039f2c2b59',
    roleName: 'Managed Identity Contributor',
    description: 'Create, read, update and delete user-assigned identities.',
    actions: ['Microsoft.ManagedIdentity/userAssignedIdentities/*'],
    notActions: [],
    dataActions: [],
    notDataActions: [],
  },
];
