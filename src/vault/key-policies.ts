import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import { type KeyCallContext, type KeyGuard, keyNotFound, KEY_OPERATIONS as OPS } from './key-guard.js';
import { checkKeyName } from './key-model.js';
import {
  checkPolicy,
  DEFAULT_POLICY,
  dueActions,
  type LifetimeAction,
  type LifetimeActionInput,
  type RotationPolicy,
} from './key-rotation.js';
import { keyStore as store } from './key-store.js';
import type { Keys } from './keys.js';

interface DueRow {
  vault_id: string;
  name_lower: string;
  name: string;
  current_version: string;
  notified_version: string | null;
  created_at: number;
  exp: number | null;
  policy: string | null;
  tenant_id: string;
  vault: string;
}

/**
 * Rotation policies and the job that carries them out: rotate a key when its
 * current version reaches `timeAfterCreate`, or comes within
 * `timeBeforeExpiry` of its `exp`; notify (an audit event
 * `KeyNearExpiry`, once per version) within the Notify action's window. Keys
 * without a policy have Azure's default one (notify 30 days before expiry).
 */
export function createKeyPolicies(deps: {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  guard: KeyGuard;
  keys: Pick<Keys, 'prepareRotation' | 'commitRotation'>;
  baseUrlOf: (vaultNameLower: string) => string;
}) {
  const { db, clock, audit, guard, keys } = deps;
  const existing = async (ctx: KeyCallContext, name: string) => {
    const row = await store.find(db, ctx.vault.id, name.toLowerCase());
    if (!row || row.deleted_at !== null) throw keyNotFound(name);
    return row;
  };
  const policyOf = (
    row: { policy: string; created_at: number; updated_at: number } | undefined,
  ): RotationPolicy =>
    row
      ? {
          ...(JSON.parse(row.policy) as Pick<RotationPolicy, 'lifetimeActions' | 'expiryTime'>),
          created: Number(row.created_at),
          updated: Number(row.updated_at),
        }
      : DEFAULT_POLICY;

  /** One due key: rotate and/or notify, each in its own transaction with its audit record. */
  const handle = async (d: DueRow, now: number) => {
    const policy = d.policy
      ? (JSON.parse(d.policy) as { lifetimeActions: LifetimeAction[] })
      : DEFAULT_POLICY;
    const due = dueActions(
      policy,
      { created: Number(d.created_at), exp: d.exp === null ? null : Number(d.exp) },
      now,
    );
    const vault = { id: d.vault_id, tenantId: d.tenant_id };
    const target = `${deps.baseUrlOf(d.vault)}/keys/${d.name}`;
    if (due.notify && d.notified_version !== d.current_version) {
      await db.transaction(async (tx) => {
        await store.setNotified(tx, d.vault_id, d.name_lower, d.current_version);
        await audit.append(tx, {
          tenantId: d.tenant_id,
          callerKind: 'system',
          operation: 'KeyNearExpiry',
          target: `${target}/${d.current_version}`,
          vault: d.vault,
          status: 200,
          details: { exp: d.exp === null ? null : Number(d.exp) },
        });
      });
    }
    if (!due.rotate) return false;
    const prepared = await keys.prepareRotation(vault, d.name_lower);
    if (!prepared) return false;
    return db.transaction(async (tx) => {
      // Another node (or a user) may have rotated meanwhile: only the version we judged due is rotated.
      const cur = await tx.get<{ current_version: string }>(
        'SELECT current_version FROM keys WHERE vault_id = $1 AND name_lower = $2 AND deleted_at IS NULL',
        [d.vault_id, d.name_lower],
      );
      if (cur?.current_version !== d.current_version) return false;
      const r = await keys.commitRotation(tx, vault, d.name_lower, prepared.material);
      if (!r) return false;
      await audit.append(tx, {
        tenantId: d.tenant_id,
        callerKind: 'system',
        operation: 'KeyRotate',
        target: `${target}/${r.version}`,
        vault: d.vault,
        status: 200,
        details: { policy: true, previous: d.current_version },
      });
      return true;
    });
  };

  return {
    async get(ctx: KeyCallContext, rawName: string): Promise<RotationPolicy & { name: string }> {
      const name = checkKeyName(rawName);
      return guard.read(ctx, OPS.getPolicy, name, async () => {
        const row = await existing(ctx, name);
        return { ...policyOf(await store.getPolicy(db, ctx.vault.id, name.toLowerCase())), name: row.name };
      });
    },

    async set(
      ctx: KeyCallContext,
      rawName: string,
      input: { lifetimeActions?: LifetimeActionInput[] | null; expiryTime?: string | null },
    ): Promise<RotationPolicy & { name: string }> {
      const name = checkKeyName(rawName);
      const now = clock.now();
      const policy = checkPolicy(input, now);
      return guard.write(ctx, OPS.setPolicy, name, async (tx) => {
        const nameLower = name.toLowerCase();
        const row = await store.find(tx, ctx.vault.id, nameLower);
        if (!row || row.deleted_at !== null) throw keyNotFound(name);
        await store.putPolicy(tx, ctx.vault.id, nameLower, JSON.stringify(policy), now);
        return { ...policyOf(await store.getPolicy(tx, ctx.vault.id, nameLower)), name: row.name };
      });
    },

    /**
     * The rotation job: walks the keys that have a policy or an expiry (in
     * pages, by primary key) and acts on those due. Returns how many rotated.
     */
    async runDue(now: number, pageSizeRows = 500): Promise<number> {
      let after = { vault: '', name: '' };
      let rotated = 0;
      for (;;) {
        const rows = await db.all<DueRow>(
          `SELECT k.vault_id, k.name_lower, k.name, k.current_version, k.notified_version, v.created_at, v.exp, p.policy,
                  vt.tenant_id, vt.name_lower AS vault
           FROM keys k
           JOIN key_versions v ON v.vault_id = k.vault_id AND v.name_lower = k.name_lower AND v.version = k.current_version
           JOIN vaults vt ON vt.id = k.vault_id AND vt.deleted_at IS NULL
           LEFT JOIN key_rotation_policies p ON p.vault_id = k.vault_id AND p.name_lower = k.name_lower
           WHERE k.deleted_at IS NULL AND (p.policy IS NOT NULL OR v.exp IS NOT NULL)
             AND (k.vault_id > $1 OR (k.vault_id = $1 AND k.name_lower > $2))
           ORDER BY k.vault_id, k.name_lower LIMIT $3`,
          [after.vault, after.name, pageSizeRows],
        );
        for (const d of rows) if (await handle(d, now)) rotated++;
        const last = rows[rows.length - 1];
        if (!last || rows.length < pageSizeRows) return rotated;
        after = { vault: last.vault_id, name: last.name_lower };
      }
    },
  };
}
export type KeyPolicies = ReturnType<typeof createKeyPolicies>;
