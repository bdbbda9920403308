import { z } from 'zod';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';

/**
 * The provisioning manifest (`apiVersion: latchkey/v1`): the desired state of
 * one tenant's identities, vaults, apps, role assignments and secrets. The
 * same schema validates a file in the CLI (with line:column) and the body on
 * the server; `schemas/manifest.schema.json` is generated from it.
 */
const str = (max: number) => z.string().min(1).max(max);
const state = z.enum(['present', 'absent']).optional();

export const principalRefSchema = z.union([
  z.strictObject({ app: str(60) }),
  z.strictObject({ identity: str(128) }),
  z.strictObject({ servicePrincipal: str(64) }),
  z.strictObject({ user: str(256) }),
]);

export const scopeRefSchema = z.union([
  z.string().min(1).max(600),
  z.strictObject({ vault: str(24), secret: str(127).optional() }),
  z.strictObject({ resourceGroup: str(90) }),
]);

const permissionList = z.array(str(32)).max(32).optional();

/**
 * A federated identity credential of an identity (docs/federation.md): created or updated as
 * declared, deleted when `absent`; credentials the manifest does not name are left alone.
 */
export const federatedCredentialSchema = z.strictObject({
  name: str(120),
  issuer: str(600).optional(),
  subject: str(600).optional(),
  /** Default: `["api://AzureADTokenExchange"]`. */
  audiences: z.array(str(600)).min(1).max(1).optional(),
  description: z.string().max(600).optional(),
  state,
});

export const identitySchema = z.strictObject({
  name: str(128),
  state,
  federatedCredentials: z.array(federatedCredentialSchema).max(20).optional(),
});

/**
 * An existing application registration (made with `latchkey ad app create` or Graph), named by its
 * application (client) id, and the federated credentials it should have. The manifest never
 * creates nor deletes the application itself.
 */
export const applicationSchema = z.strictObject({
  appId: z
    .string()
    .max(36)
    .regex(
      /^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/,
      'expected an application (client) id, a GUID',
    ),
  federatedCredentials: z.array(federatedCredentialSchema).max(20),
});

export const vaultSchema = z.strictObject({
  name: str(24),
  enableRbacAuthorization: z.boolean().optional(),
  softDeleteRetentionInDays: z.number().int().min(7).max(90).optional(),
  enablePurgeProtection: z.boolean().optional(),
  accessPolicies: z
    .array(
      z.strictObject({
        principal: principalRefSchema,
        permissions: z.strictObject({
          secrets: permissionList,
          keys: permissionList,
          certificates: permissionList,
        }),
      }),
    )
    .max(100)
    .optional(),
  state,
});

export const appSchema = z.strictObject({
  name: str(60),
  identity: z
    .strictObject({
      type: z.enum(['None', 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned']),
      userAssignedIdentities: z.array(str(128)).max(20).optional(),
    })
    .optional(),
  settings: z.record(z.string().min(1).max(128), z.string().max(16 * 1024)).optional(),
  state,
});

export const roleAssignmentSchema = z.strictObject({
  principal: principalRefSchema,
  role: str(128),
  scope: scopeRefSchema,
  state,
});

export const secretValueSchema = z.union([
  z.strictObject({ fromFile: str(1024) }),
  z.strictObject({ fromEnv: str(256) }),
  z.strictObject({ generate: z.strictObject({ length: z.number().int().min(8).max(1024) }) }),
  /** Filled in by the CLI from `fromFile` / `fromEnv`; never written in a file. */
  z.strictObject({ resolved: z.string().max(25 * 1024) }),
]);

export const secretSchema = z.strictObject({
  vault: str(24),
  name: str(127),
  contentType: z.string().max(255).optional(),
  expires: z
    .string()
    .max(40)
    .refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 date-time')
    .optional(),
  value: secretValueSchema.optional(),
  state,
});

export const manifestSchema = z.strictObject({
  apiVersion: z.literal('latchkey/v1'),
  tenant: str(253),
  resourceGroup: str(90).optional(),
  identities: z.array(identitySchema).max(500).optional(),
  applications: z.array(applicationSchema).max(500).optional(),
  vaults: z.array(vaultSchema).max(200).optional(),
  apps: z.array(appSchema).max(500).optional(),
  roleAssignments: z.array(roleAssignmentSchema).max(2000).optional(),
  secrets: z.array(secretSchema).max(2000).optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type PrincipalRef = z.infer<typeof principalRefSchema>;
export type ScopeRef = z.infer<typeof scopeRefSchema>;
export type ManifestSecret = z.infer<typeof secretSchema>;
export type ManifestIdentity = z.infer<typeof identitySchema>;
export type ManifestFederatedCredential = z.infer<typeof federatedCredentialSchema>;
export type ManifestApplication = z.infer<typeof applicationSchema>;
export type ManifestVault = z.infer<typeof vaultSchema>;
export type ManifestApp = z.infer<typeof appSchema>;
export type ManifestRoleAssignment = z.infer<typeof roleAssignmentSchema>;

export type JsonPath = readonly (string | number)[];
export const formatPath = (path: JsonPath): string =>
  path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : String(p)), '') ||
  '(root)';

/** The first problem of an invalid manifest: its JSON path and a message (never a value). */
export function manifestProblem(input: unknown): { path: JsonPath; message: string } | undefined {
  const r = manifestSchema.safeParse(input);
  if (r.success) return undefined;
  const issue = r.error.issues[0]!;
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const keys = issue.code === 'unrecognized_keys' ? (issue.keys as string[]) : [];
  return {
    path: keys.length ? [...path, keys[0]!] : path,
    message: keys.length ? `unknown field '${keys[0]!.slice(0, 64)}'` : issue.message,
  };
}

/** Validates a manifest; `ManifestInvalid` names the JSON path of the first problem. */
export function parseManifest(input: unknown): Manifest {
  const problem = manifestProblem(input);
  if (problem)
    throw new LatchkeyError(
      'ManifestInvalid',
      `Invalid manifest at ${formatPath(problem.path)}: ${problem.message}`.slice(0, 400),
    );
  return manifestSchema.parse(input);
}

/** A manifest-level reference error at a path (UnknownRole, InvalidReference, ManifestInvalid). */
export const manifestError = (
  code: 'UnknownRole' | 'InvalidReference' | 'ManifestInvalid' | 'TenantMismatch',
  path: JsonPath,
  message: string,
) => new LatchkeyError(code, `${message} (at ${formatPath(path)})`.slice(0, 400));

/** Runs a service's check; a refusal keeps its code and status and gains the manifest path it is about. */
export async function checkedAt(path: JsonPath, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (e) {
    if (!isLatchkeyError(e)) throw e;
    throw new LatchkeyError(e.code, `${e.message} (at ${formatPath(path)})`.slice(0, 600), {
      status: e.status,
      cause: e,
    });
  }
}
