import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';
import type { Database, Transaction } from '../storage/port.js';
import { statusOf, vaultEvent } from './audit.js';
import { DAY_MS, VAULT_LIMITS } from './model.js';
import type { SecretCallContext } from './secrets.js';

/** Who calls, on which vault (the same context as secrets). */
export type KeyCallContext = SecretCallContext;

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
  rng: { op: 'VaultGetRandomBytes', action: 'Microsoft.KeyVault/vaults/rng/action', perm: 'get' },
} as const;
export type KeyOperation = { op: string; action: string; perm: string; orRead?: boolean };

export const keyNotFound = (name: string, version?: string) =>
  new LatchkeyError(
    'KeyNotFound',
    `A key with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`,
  );
export const deletedKeyNotFound = (name: string) =>
  new LatchkeyError('DeletedKeyNotFound', `Deleted Key not found: ${name}`);

export const pageSize = (max: number | undefined) =>
  Math.min(Math.max(max ?? VAULT_LIMITS.pageMax, 1), VAULT_LIMITS.pageMax);
export const retentionMs = (ctx: KeyCallContext) => ctx.vault.softDeleteRetentionInDays * DAY_MS;

export const encodeCursor = (c: unknown) => Buffer.from(JSON.stringify(c)).toString('base64url');
export function decodeCursor<T>(token: string | undefined, check: (x: unknown) => x is T): T | undefined {
  if (token === undefined) return undefined;
  try {
    const x: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (check(x)) return x;
  } catch {}
  throw new LatchkeyError('BadParameter', 'The $skiptoken is not valid.');
}
export const isNameCursor = (x: unknown): x is { n: string } =>
  typeof x === 'object' &&
  x !== null &&
  typeof (x as { n: unknown }).n === 'string' &&
  (x as { n: string }).n.length <= 127;
export const isVersionCursor = (x: unknown): x is { c: number; v: string } =>
  typeof x === 'object' &&
  x !== null &&
  Number.isSafeInteger((x as { c: unknown }).c) &&
  typeof (x as { v: unknown }).v === 'string' &&
  (x as { v: string }).v.length <= 32;

/**
 * Authorization and audit for key operations, through the one decision point:
 * a refused caller learns nothing about existence; reads (crypto operations
 * included) are recorded in batches, changes audited in their transaction.
 */
export function createKeyGuard(deps: {
  db: Database;
  access: Access;
  audit: AuditLog;
  onAuditError?: (e: unknown) => void;
}) {
  const { db, access, audit } = deps;
  const target = (ctx: KeyCallContext, name: string | null, version?: string, op?: KeyOperation) =>
    op === KEY_OPERATIONS.rng
      ? `${ctx.baseUrl}/rng`
      : name === null
        ? `${ctx.baseUrl}/keys`
        : `${ctx.baseUrl}/keys/${name}${version ? `/${version}` : ''}`;
  const record = (ctx: KeyCallContext, op: KeyOperation, tgt: string, status: number) => {
    audit
      .record(vaultEvent(ctx.caller, ctx.meta, op.op, tgt, ctx.vault.nameLower, status))
      .catch((e) => deps.onAuditError?.(e));
  };
  const require = (ctx: KeyCallContext, action: string, perm: string, name: string | null) =>
    access.requireVaultData(ctx.caller, ctx.vault.access, {
      dataAction: action,
      objectScope: name === null ? ctx.vault.armId : `${ctx.vault.armId}/keys/${name}`,
      policy: { kind: 'keys', permission: perm },
    });
  const authorize = async (ctx: KeyCallContext, op: KeyOperation, name: string | null) => {
    try {
      await require(ctx, op.action, op.perm, name);
    } catch (e) {
      if (!op.orRead || !ctx.vault.enableRbacAuthorization || !isLatchkeyError(e) || e.status !== 403)
        throw e;
      try {
        await require(ctx, KEY_OPERATIONS.get.action, 'get', name);
      } catch {
        throw e;
      }
    }
  };
  return {
    target,
    authorize,
    /** Authorizes before costly work done outside `write` (key generation); a refusal is recorded. */
    async precheck(ctx: KeyCallContext, op: KeyOperation, name: string | null): Promise<void> {
      try {
        await authorize(ctx, op, name);
      } catch (e) {
        record(ctx, op, target(ctx, name), statusOf(e));
        throw e;
      }
    },
    /** A read: authorize, run, record the outcome (not awaited: group commit). */
    async read<T>(
      ctx: KeyCallContext,
      op: KeyOperation,
      name: string | null,
      fn: () => Promise<T>,
      version?: string,
    ): Promise<T> {
      try {
        await authorize(ctx, op, name);
        const r = await fn();
        record(ctx, op, target(ctx, name, version, op), 200);
        return r;
      } catch (e) {
        record(ctx, op, target(ctx, name, version, op), statusOf(e));
        throw e;
      }
    },
    /** A change: authorize, then change and audit in one transaction; refusals and failures are recorded. */
    async write<T extends { version?: string; name?: string }>(
      ctx: KeyCallContext,
      op: KeyOperation,
      name: string | null,
      fn: (tx: Transaction) => Promise<T>,
    ): Promise<T> {
      try {
        await authorize(ctx, op, name);
        return await db.transaction(async (tx) => {
          const r = await fn(tx);
          await audit.append(
            tx,
            vaultEvent(
              ctx.caller,
              ctx.meta,
              op.op,
              target(ctx, r.name ?? name, r.version),
              ctx.vault.nameLower,
              200,
            ),
          );
          return r;
        });
      } catch (e) {
        record(ctx, op, target(ctx, name), statusOf(e));
        throw e;
      }
    },
  };
}
export type KeyGuard = ReturnType<typeof createKeyGuard>;
