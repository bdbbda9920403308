import { KEY_RULES } from './key-model.js';
import {
  createObjectGuard,
  type ObjectCallContext,
  type ObjectGuard,
  type ObjectOperation,
} from './object-guard.js';
import { actionOperation, lifecycleOperations } from './object-kind.js';

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
  create: actionOperation('Key', K, 'create'),
  import: actionOperation('Key', K, 'import'),
  get: { op: 'KeyGet', action: `${K}/read`, perm: 'get' },
  update: actionOperation('Key', K, 'update'),
  ...lifecycleOperations('Key', K, `${K}/read`),
  backup: actionOperation('Key', K, 'backup'),
  restore: actionOperation('Key', K, 'restore'),
  rotate: actionOperation('Key', K, 'rotate'),
  getPolicy: { op: 'KeyGetRotationPolicy', action: `${P}/read`, perm: 'getrotationpolicy' },
  setPolicy: { op: 'KeySetRotationPolicy', action: `${P}/write`, perm: 'setrotationpolicy' },
  encrypt: { op: 'KeyEncrypt', action: `${K}/encrypt/action`, perm: 'encrypt', orRead: true },
  decrypt: { op: 'KeyDecrypt', action: `${K}/decrypt/action`, perm: 'decrypt' },
  wrapKey: { op: 'KeyWrap', action: `${K}/wrap/action`, perm: 'wrapKey', orRead: true },
  unwrapKey: { op: 'KeyUnwrap', action: `${K}/unwrap/action`, perm: 'unwrapKey' },
  sign: actionOperation('Key', K, 'sign'),
  verify: { ...actionOperation('Key', K, 'verify'), orRead: true },
  /** Random bytes: a Latchkey data action (Azure serves `/rng` on Managed HSM only); policy vaults: keys `get`. */
  rng: {
    op: 'VaultGetRandomBytes',
    action: 'Microsoft.KeyVault/vaults/rng/action',
    perm: 'get',
    targetPath: 'rng',
  },
} satisfies Record<string, ObjectOperation>;
export type KeyOperation = ObjectOperation;

export const { notFound: keyNotFound, deletedNotFound: deletedKeyNotFound } = KEY_RULES;

/**
 * Authorization and audit for key operations (objects.ts): reads (crypto
 * operations included) recorded in batches, changes audited in their
 * transaction; the public-key operations marked `orRead` also pass with `keys/read`.
 */
export function createKeyGuard(deps: Omit<Parameters<typeof createObjectGuard>[0], 'collection' | 'orRead'>) {
  return createObjectGuard({ ...deps, collection: 'keys', orRead: KEY_OPERATIONS.get });
}
export type KeyGuard = ObjectGuard;
