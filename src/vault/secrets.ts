import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { newVersionId } from '../lib/ids.js';
import type { Database, Transaction } from '../storage/port.js';
import { statusOf, vaultEvent } from './audit.js';
import { openBackup, type SecretBackup, sealBackup } from './backup.js';
import { DAY_MS, VAULT_LIMITS, type Vault } from './model.js';
import {
  checkContentType,
  checkSecretName,
  checkTags,
  checkValue,
  checkVersion,
  checkWindow,
} from './secret-rules.js';
import { recordFromRow, type SecretRecord, type SecretRow, secretStore as store } from './secret-store.js';

export type { SecretRecord } from './secret-store.js';

/** Who calls, on which vault; `baseUrl` is the vault's canonical URL (audit targets). */
export interface SecretCallContext {
  caller: Caller;
  meta: RequestMeta;
  vault: Vault;
  baseUrl: string;
}

export interface SecretAttributesInput {
  enabled?: boolean;
  /** Epoch ms; null clears (update). */
  nbf?: number | null;
  exp?: number | null;
}
export interface SetSecretInput extends SecretAttributesInput {
  value: string;
  contentType?: string | null;
  tags?: Record<string, string> | null;
}
export interface UpdateSecretInput extends SecretAttributesInput {
  contentType?: string | null;
  tags?: Record<string, string> | null;
}
export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, absent on the last one. */
  next?: string;
}

const S = 'Microsoft.KeyVault/vaults/secrets';
/** Each operation: audit name, RBAC data action, access-policy permission, and whether it targets one secret. */
const OPS = {
  set: { op: 'SecretSet', action: `${S}/setSecret/action`, perm: 'set' },
  get: { op: 'SecretGet', action: `${S}/getSecret/action`, perm: 'get' },
  update: { op: 'SecretUpdate', action: `${S}/update/action`, perm: 'set' },
  list: { op: 'SecretList', action: `${S}/readMetadata/action`, perm: 'list' },
  versions: { op: 'SecretListVersions', action: `${S}/readMetadata/action`, perm: 'list' },
  delete: { op: 'SecretDelete', action: `${S}/delete`, perm: 'delete' },
  listDeleted: { op: 'SecretListDeleted', action: `${S}/readMetadata/action`, perm: 'list' },
  getDeleted: { op: 'SecretGetDeleted', action: `${S}/readMetadata/action`, perm: 'get' },
  recover: { op: 'SecretRecover', action: `${S}/recover/action`, perm: 'recover' },
  purge: { op: 'SecretPurge', action: `${S}/purge/action`, perm: 'purge' },
  backup: { op: 'SecretBackup', action: `${S}/backup/action`, perm: 'backup' },
  restore: { op: 'SecretRestore', action: `${S}/restore/action`, perm: 'restore' },
} as const;
type Op = (typeof OPS)[keyof typeof OPS];

const encodeCursor = (c: unknown) => Buffer.from(JSON.stringify(c)).toString('base64url');
function decodeCursor<T>(token: string | undefined, check: (x: unknown) => x is T): T | undefined {
  if (token === undefined) return undefined;
  try {
    const x: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (check(x)) return x;
  } catch {}
  throw new LatchkeyError('BadParameter', 'The $skiptoken is not valid.');
}
const isNameCursor = (x: unknown): x is { n: string } =>
  typeof x === 'object' &&
  x !== null &&
  typeof (x as { n: unknown }).n === 'string' &&
  (x as { n: string }).n.length <= 127;
const isVersionCursor = (x: unknown): x is { c: number; v: string } =>
  typeof x === 'object' &&
  x !== null &&
  Number.isSafeInteger((x as { c: unknown }).c) &&
  typeof (x as { v: unknown }).v === 'string' &&
  (x as { v: string }).v.length <= 32;

const notFound = (name: string, version?: string) =>
  new LatchkeyError(
    'SecretNotFound',
    `A secret with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.`,
  );
const deletedNotFound = (name: string) =>
  new LatchkeyError('DeletedSecretNotFound', `Deleted Secret not found: ${name}`);
const pageSize = (max: number | undefined) =>
  Math.min(Math.max(max ?? VAULT_LIMITS.pageMax, 1), VAULT_LIMITS.pageMax);

/**
 * The Key Vault secrets data plane: versions, soft delete, recover, purge,
 * backup and restore. Values are sealed with AES-256-GCM, bound by AAD to
 * tenant, vault, name and version. Every operation is authorized by the one
 * decision point first (so a refused caller learns nothing about existence)
 * and audited: mutations in their transaction, reads and refusals batched.
 */
export function createSecrets(deps: {
  db: Database;
  clock: Clock;
  sealer: Sealer;
  access: Access;
  audit: AuditLog;
  /** The canonical URL of a vault by its lower-case name (audit targets of the purge job). */
  baseUrlOf: (vaultNameLower: string) => string;
  onAuditError?: (e: unknown) => void;
}) {
  const { db, clock, sealer, access, audit } = deps;
  const aad = (v: Vault, nameLower: string, version: string) =>
    `secret|${v.tenantId}|${v.id}|${nameLower}|${version}`;
  const target = (ctx: SecretCallContext, name: string | null, version?: string) =>
    name === null
      ? `${ctx.baseUrl}/secrets`
      : `${ctx.baseUrl}/secrets/${name}${version ? `/${version}` : ''}`;
  const record = (ctx: SecretCallContext, op: Op, tgt: string, status: number) => {
    audit
      .record(vaultEvent(ctx.caller, ctx.meta, op.op, tgt, ctx.vault.nameLower, status))
      .catch((e) => deps.onAuditError?.(e));
  };
  const authorize = (ctx: SecretCallContext, op: Op, name: string | null) =>
    access.requireVaultData(ctx.caller, ctx.vault.access, {
      dataAction: op.action,
      objectScope: name === null ? ctx.vault.armId : `${ctx.vault.armId}/secrets/${name}`,
      policy: { kind: 'secrets', permission: op.perm },
    });
  /** A read: authorize, run, record the outcome (not awaited: group commit). */
  const read = async <T>(
    ctx: SecretCallContext,
    op: Op,
    name: string | null,
    fn: () => Promise<T>,
  ): Promise<T> => {
    try {
      await authorize(ctx, op, name);
      const r = await fn();
      record(ctx, op, target(ctx, name), 200);
      return r;
    } catch (e) {
      record(ctx, op, target(ctx, name), statusOf(e));
      throw e;
    }
  };
  /** A change: authorize, then change and audit in one transaction; refusals and failures are recorded. */
  const write = async <T extends { version?: string }>(
    ctx: SecretCallContext,
    op: Op,
    name: string | null,
    fn: (tx: Transaction) => Promise<T & { name?: string }>,
  ): Promise<T> => {
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
  };
  const withValue = (v: Vault, nameLower: string, row: SecretRow): SecretRecord => ({
    ...recordFromRow(row),
    value: sealer.open(row.value_sealed!, aad(v, nameLower, row.version)).toString('utf8'),
  });

  return {
    async set(ctx: SecretCallContext, rawName: string, input: SetSecretInput): Promise<SecretRecord> {
      const name = checkSecretName(rawName);
      checkValue(input.value);
      checkContentType(input.contentType);
      checkTags(input.tags);
      checkWindow(input.nbf ?? null, input.exp ?? null);
      return write(ctx, OPS.set, name, async (tx) => {
        const now = clock.now();
        const version = newVersionId();
        const nameLower = name.toLowerCase();
        const stored = await store.upsertSecret(tx, ctx.vault.id, name, version, now);
        if (stored === undefined)
          throw new LatchkeyError(
            'Conflict',
            `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
          );
        const rec: SecretRecord = {
          name: stored,
          version,
          value: input.value,
          contentType: input.contentType ?? null,
          tags: input.tags ?? null,
          enabled: input.enabled ?? true,
          nbf: input.nbf ?? null,
          exp: input.exp ?? null,
          created: now,
          updated: now,
          deletedAt: null,
          scheduledPurgeAt: null,
        };
        await store.insertVersion(tx, ctx.vault.id, nameLower, {
          ...rec,
          sealed: sealer.seal(input.value, aad(ctx.vault, nameLower, version)),
        });
        return rec;
      });
    },

    /** The value of the latest (or a given) version. A disabled version is refused (403), as Azure does. */
    async get(ctx: SecretCallContext, rawName: string, rawVersion?: string): Promise<SecretRecord> {
      const name = checkSecretName(rawName);
      const version = rawVersion === undefined ? undefined : checkVersion(rawVersion);
      return read(ctx, OPS.get, name, async () => {
        const nameLower = name.toLowerCase();
        const row = await store.find(db, ctx.vault.id, nameLower, version);
        if (!row || row.deleted_at !== null) throw notFound(name, version);
        if (Number(row.enabled) !== 1)
          throw new LatchkeyError('Forbidden', 'Operation get is not allowed on a disabled secret.', {
            inner: 'SecretDisabled',
          });
        return withValue(ctx.vault, nameLower, row);
      });
    },

    /** Changes attributes, tags or content type of the latest (or a given) version; never the value. */
    async update(
      ctx: SecretCallContext,
      rawName: string,
      rawVersion: string | undefined,
      patch: UpdateSecretInput,
    ): Promise<SecretRecord> {
      const name = checkSecretName(rawName);
      const version = rawVersion === undefined ? undefined : checkVersion(rawVersion);
      checkContentType(patch.contentType);
      checkTags(patch.tags);
      return write(ctx, OPS.update, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const row = await store.find(tx, ctx.vault.id, nameLower, version);
        if (!row || row.deleted_at !== null) throw notFound(name, version);
        const cur = recordFromRow(row);
        const next: SecretRecord = {
          ...cur,
          contentType: patch.contentType === undefined ? cur.contentType : patch.contentType,
          tags: patch.tags === undefined ? cur.tags : patch.tags,
          enabled: patch.enabled ?? cur.enabled,
          nbf: patch.nbf === undefined ? cur.nbf : patch.nbf,
          exp: patch.exp === undefined ? cur.exp : patch.exp,
          updated: clock.now(),
        };
        checkWindow(next.nbf, next.exp);
        await store.updateVersion(tx, ctx.vault.id, nameLower, next);
        return next;
      });
    },

    async list(ctx: SecretCallContext, opts: { max?: number; after?: string }): Promise<Page<SecretRecord>> {
      const after = decodeCursor(opts.after, isNameCursor)?.n ?? '';
      return read(ctx, OPS.list, null, () => pageOf(ctx, false, after, pageSize(opts.max)));
    },

    async listVersions(
      ctx: SecretCallContext,
      rawName: string,
      opts: { max?: number; after?: string },
    ): Promise<Page<SecretRecord>> {
      const name = checkSecretName(rawName);
      const after = decodeCursor(opts.after, isVersionCursor);
      const size = pageSize(opts.max);
      return read(ctx, OPS.versions, name, async () => {
        const rows = await store.versions(
          db,
          ctx.vault.id,
          name.toLowerCase(),
          after && { created: after.c, version: after.v },
          size + 1,
        );
        const items = rows.slice(0, size).map(recordFromRow);
        const last = items[items.length - 1];
        return rows.length > size && last
          ? { items, next: encodeCursor({ c: last.created, v: last.version }) }
          : { items };
      });
    },

    /** Soft delete: the secret (all versions) is recoverable until its scheduled purge date. */
    async delete(ctx: SecretCallContext, rawName: string): Promise<SecretRecord> {
      const name = checkSecretName(rawName);
      return write(ctx, OPS.delete, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const row = await store.find(tx, ctx.vault.id, nameLower);
        if (!row || row.deleted_at !== null) throw notFound(name);
        const now = clock.now();
        const purgeAt = now + ctx.vault.softDeleteRetentionInDays * DAY_MS;
        await store.setDeleted(tx, ctx.vault.id, nameLower, now, purgeAt);
        return { ...recordFromRow(row), deletedAt: now, scheduledPurgeAt: purgeAt };
      });
    },

    async listDeleted(
      ctx: SecretCallContext,
      opts: { max?: number; after?: string },
    ): Promise<Page<SecretRecord>> {
      const after = decodeCursor(opts.after, isNameCursor)?.n ?? '';
      return read(ctx, OPS.listDeleted, null, () => pageOf(ctx, true, after, pageSize(opts.max)));
    },

    async getDeleted(ctx: SecretCallContext, rawName: string): Promise<SecretRecord> {
      const name = checkSecretName(rawName);
      return read(ctx, OPS.getDeleted, name, async () => {
        const row = await store.find(db, ctx.vault.id, name.toLowerCase());
        if (!row || row.deleted_at === null) throw deletedNotFound(name);
        return recordFromRow(row);
      });
    },

    async recover(ctx: SecretCallContext, rawName: string): Promise<SecretRecord> {
      const name = checkSecretName(rawName);
      return write(ctx, OPS.recover, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const row = await store.find(tx, ctx.vault.id, nameLower);
        if (!row || row.deleted_at === null) throw deletedNotFound(name);
        await store.setDeleted(tx, ctx.vault.id, nameLower, null, null);
        return { ...recordFromRow(row), deletedAt: null, scheduledPurgeAt: null };
      });
    },

    /** Permanent deletion of a deleted secret; refused while the vault has purge protection. */
    async purge(ctx: SecretCallContext, rawName: string): Promise<void> {
      const name = checkSecretName(rawName);
      await write(ctx, OPS.purge, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const row = await store.find(tx, ctx.vault.id, nameLower);
        if (!row || row.deleted_at === null) throw deletedNotFound(name);
        if (ctx.vault.enablePurgeProtection)
          throw new LatchkeyError(
            'Forbidden',
            'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.',
          );
        await store.purge(tx, ctx.vault.id, nameLower);
        return { name: row.name };
      });
    },

    /** A sealed blob with every version, restorable only into this installation and tenant. */
    async backup(ctx: SecretCallContext, rawName: string): Promise<Buffer> {
      const name = checkSecretName(rawName);
      return read(ctx, OPS.backup, name, async () => {
        const nameLower = name.toLowerCase();
        const rows = await store.allVersions(db, ctx.vault.id, nameLower);
        const first = rows[0];
        if (!first || first.deleted_at !== null) throw notFound(name);
        const backup: SecretBackup = {
          v: 1,
          tenantId: ctx.vault.tenantId,
          name: first.name,
          current: first.current_version,
          versions: rows.map((r) => {
            const { value, ...rest } = withValue(ctx.vault, nameLower, r);
            return {
              version: rest.version,
              value: value ?? '',
              contentType: rest.contentType,
              tags: rest.tags,
              enabled: rest.enabled,
              nbf: rest.nbf,
              exp: rest.exp,
              created: rest.created,
              updated: rest.updated,
            };
          }),
        };
        return sealBackup(sealer, backup);
      });
    },

    /** Restores a backup (all versions, same version ids); the name must be free in this vault. */
    async restore(ctx: SecretCallContext, blob: Buffer): Promise<SecretRecord> {
      return write(ctx, OPS.restore, null, async (tx) => {
        const b = openBackup(sealer, ctx.vault.tenantId, blob);
        const nameLower = b.name.toLowerCase();
        if (await store.exists(tx, ctx.vault.id, nameLower))
          throw new LatchkeyError(
            'Conflict',
            `Secret ${b.name} already exists in this vault (or is deleted and recoverable); it cannot be restored over.`,
          );
        const now = clock.now();
        await store.upsertSecret(tx, ctx.vault.id, b.name, b.current, now);
        for (const v of b.versions) {
          checkValue(v.value);
          await store.insertVersion(tx, ctx.vault.id, nameLower, {
            ...v,
            sealed: sealer.seal(v.value, aad(ctx.vault, nameLower, v.version)),
          });
        }
        const { value: _value, ...cur } = b.versions.find((v) => v.version === b.current)!;
        return { ...cur, name: b.name, deletedAt: null, scheduledPurgeAt: null };
      });
    },

    /** Purge job: deleted secrets past their scheduled purge date go for good. Returns how many. */
    async purgeDue(now: number, limit = 500): Promise<number> {
      const due = await db.all<{
        vault_id: string;
        name_lower: string;
        tenant_id: string;
        vault: string;
        name: string;
      }>(
        `SELECT s.vault_id, s.name_lower, s.name, v.tenant_id, v.name_lower AS vault FROM secrets s JOIN vaults v ON v.id = s.vault_id
         WHERE s.scheduled_purge_at IS NOT NULL AND s.scheduled_purge_at <= $1 ORDER BY s.scheduled_purge_at LIMIT $2`,
        [now, limit],
      );
      for (const d of due) {
        await db.transaction(async (tx) => {
          const still = await tx.get(
            'SELECT 1 AS x FROM secrets WHERE vault_id = $1 AND name_lower = $2 AND scheduled_purge_at IS NOT NULL AND scheduled_purge_at <= $3',
            [d.vault_id, d.name_lower, now],
          );
          if (!still) return; // recovered meanwhile
          await store.purge(tx, d.vault_id, d.name_lower);
          await audit.append(tx, {
            tenantId: d.tenant_id,
            callerKind: 'system',
            operation: 'SecretPurge',
            target: `${deps.baseUrlOf(d.vault)}/secrets/${d.name}`,
            vault: d.vault,
            status: 200,
            details: { scheduled: true },
          });
        });
      }
      return due.length;
    },
  };

  async function pageOf(ctx: SecretCallContext, deleted: boolean, after: string, size: number) {
    const rows = await store.page(db, ctx.vault.id, deleted, after, size + 1);
    const items = rows.slice(0, size).map(recordFromRow);
    const last = items[items.length - 1];
    return rows.length > size && last
      ? { items, next: encodeCursor({ n: last.name.toLowerCase() }) }
      : { items };
  }
}
export type Secrets = ReturnType<typeof createSecrets>;
