import { LatchkeyError } from '../errors/index.js';
import {
  createObjectGuard,
  type ObjectCallContext,
  type ObjectGuard,
  type ObjectOperation,
} from './object-guard.js';

/** Who calls, on which vault (the same context as secrets). */
export type KeyCallContext = ObjectCallContext;

const K = 'Microsoft.KeyVault/vaults/keys';
const P = 'Microsoft.KeyVault/vaults/keyrotationpolicies';

/**
 * Each key operation: audit name, RBAC data action, access-policy permission.
 * `orRead`: Azure lets a principal with `keys/read` perform the public-key
 * operations (encrypt, wrap, verify) of an asymmetric key.
 */
export const KEY_OPERATIONS = {
  create: { op: 'KeyCreate', action: `${K}/create/action`, perm: 'create' },
  import: { op: 'KeyImport', action: `${K}/import/action`, perm: 'import' },
  get: { op: 'KeyGet', action: `${K}/read`, perm: 'get' },
  list: { op: 'KeyList', action: `${K}/read`, perm: 'list' },
  versions: { op: 'KeyListVersions', action: `${K}/read`, perm: 'list' },
  update: { op: 'KeyUpdate', action: `${K}/update/action`, perm: 'update' },
  delete: { op: 'KeyDelete', action: `${K}/delete`, perm: 'delete' },
  listDeleted: { op: 'KeyListDeleted', action: `${K}/read`, perm: 'list' },
  getDeleted: { op: 'KeyGetDeleted', action: `${K}/read`, perm: 'get' },
  recover: { op: 'KeyRecover', action: `${K}/recover/action`, perm: 'recover' },
  purge: { op: 'KeyPurge', action: `${K}/purge/action`, perm: 'purge' },
  backup: { op: 'KeyBackup', action: `${K}/backup/action`, perm: 'backup' },
  restore: { op: 'KeyRestore', action: `${K}/restore/action`, perm: 'restore' },
  rotate: { op: 'KeyRotate', action: `${K}/rotate/action`, perm: 'rotate' },
  getPolicy: { op: 'KeyGetRotationPolicy', action: `${P}/read`, perm: 'getrotationpolicy' },
  setPolicy: { op: 'KeySetRotationPolicy', action: `${P}/write`, perm: 'setrotationpolicy' },
  encrypt: { op: 'KeyEncrypt', action: `${K}/encrypt/action`, perm: 'encrypt', orRead: true },
  decrypt: { op: 'KeyDecrypt', action: `${K}/decrypt/action`, perm: 'decrypt' },
  wrapKey: { op: 'KeyWrap', action: `${K}/wrap/action`, perm: 'wrapKey', orRead: true },
  unwrapKey: { op: 'KeyUnwrap', action: `${K}/unwrap/action`, perm: 'unwrapKey' },
  sign: { op: 'KeySign', action: `${K}/sign/action`, perm: 'sign' },
  verify: { op: 'KeyVerify', action: `${K}/verify/action`, perm: 'verify', orRead: true },
  /** Random bytes: a Latchkey data action (Azure serves `/rng` on Managed HSM only); policy vaults: keys `get`. */
  rng: {
    op: 'VaultGetRandomBytes',
    action: 'Microsoft.KeyVault/vaults/rng/action',
    perm: 'get',
    targetPath: 'rng',
  },
} as const;
export type KeyOperation = ObjectOperation;

export const keyNotFound = (name: string, version?: string) =>
  new LatchkeyError(
    'KeyNotFound',
    `A key with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`,
  );
export const deletedKeyNotFound = (name: string) =>
  new LatchkeyError('KeyNotFound', `Deleted Key not found: ${name}`);

/**
 * Authorization and audit for key operations (objects.ts): reads (crypto
 * operations included) recorded in batches, changes audited in their
 * transaction; the public-key operations marked `orRead` also pass with `keys/read`.
 */
export function createKeyGuard(deps: Omit<Parameters<typeof createObjectGuard>[0], 'collection' | 'orRead'>) {
  return createObjectGuard({ ...deps, collection: 'keys', orRead: KEY_OPERATIONS.get });
}
export type KeyGuard = ObjectGuard;
