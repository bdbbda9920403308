import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../lib/clock.js';
import { walkPages } from '../lib/paged-walk.js';
import type { Database, Transaction } from '../storage/port.js';
import { type RotationCandidate, keyStore as store } from '../storage/vault/key-store.js';
import type { StoredDocument } from '../storage/vault/object-store.js';
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
import type { Keys } from './keys.js';

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
  /** A key changed outside the guard's writes (a rotation by the job): drop its cached versions everywhere. */
  changed: (vaultId: string, nameLower: string) => void;
}) {
  const { db, clock, audit, guard, keys } = deps;
  const existing = async (ctx: KeyCallContext, name: string) => {
    const cur = await store.find(db, ctx.vault.id, name.toLowerCase());
    if (!cur || cur.deletedAt !== null) throw keyNotFound(name);
    return cur;
  };
  const policyOf = (stored: StoredDocument | undefined): RotationPolicy =>
    stored
      ? {
          ...(JSON.parse(stored.json) as Pick<RotationPolicy, 'lifetimeActions' | 'expiryTime'>),
          created: stored.created,
          updated: stored.updated,
        }
      : DEFAULT_POLICY;

  /** One due key: rotate and/or notify, each in its own transaction with its audit record. */
  const handle = async (d: RotationCandidate, now: number) => {
    const policy = d.policy
      ? (JSON.parse(d.policy) as { lifetimeActions: LifetimeAction[] })
      : DEFAULT_POLICY;
    const due = dueActions(policy, { created: d.created, exp: d.exp }, now);
    const vault = { id: d.vaultId, tenantId: d.tenantId };
    /** The job's audit record of what it did to a version of this key. */
    const record = (
      tx: Transaction,
      operation: string,
      version: string,
      details: Record<string, string | number | boolean | null>,
    ) =>
      audit.append(tx, {
        tenantId: d.tenantId,
        callerKind: 'system',
        operation,
        target: `${deps.baseUrlOf(d.vault)}/keys/${d.name}/${version}`,
        vault: d.vault,
        status: 200,
        details,
      });
    if (due.notify && d.notifiedVersion !== d.currentVersion) {
      await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order (audit/log.ts)
        await store.setNotified(tx, d.vaultId, d.nameLower, d.currentVersion);
        await record(tx, 'KeyNearExpiry', d.currentVersion, { exp: d.exp });
      });
    }
    if (!due.rotate) return false;
    const prepared = await keys.prepareRotation(vault, d.nameLower);
    if (!prepared) return false;
    // The key's cached versions are dropped after the attempt, whatever came of it (a failed commit may have landed).
    try {
      return await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order (audit/log.ts)
        // Another node (or a user) may have rotated meanwhile: only the version we judged due is rotated.
        if ((await store.currentVersion(tx, d.vaultId, d.nameLower)) !== d.currentVersion) return false;
        const r = await keys.commitRotation(tx, vault, d.nameLower, prepared.material);
        if (!r) return false;
        await record(tx, 'KeyRotate', r.version, { policy: true, previous: d.currentVersion });
        return true;
      });
    } finally {
      deps.changed(d.vaultId, d.nameLower);
    }
  };

  return {
    async get(ctx: KeyCallContext, rawName: string): Promise<RotationPolicy & { name: string }> {
      const name = checkKeyName(rawName);
      return guard.read(ctx, OPS.getPolicy, name, async () => {
        const cur = await existing(ctx, name);
        return { ...policyOf(await store.getPolicy(db, ctx.vault.id, name.toLowerCase())), name: cur.name };
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
        const cur = await store.find(tx, ctx.vault.id, nameLower);
        if (!cur || cur.deletedAt !== null) throw keyNotFound(name);
        await store.putPolicy(tx, ctx.vault.id, nameLower, JSON.stringify(policy), now);
        return { ...policyOf(await store.getPolicy(tx, ctx.vault.id, nameLower)), name: cur.name };
      });
    },

    /**
     * The rotation job: walks the keys that have a policy or an expiry (in
     * pages, by primary key) and acts on those due. Returns how many rotated.
     */
    async runDue(now: number, pageSizeRows = 500): Promise<number> {
      let rotated = 0;
      await walkPages(
        (after, size) => store.rotationCandidates(db, after, size),
        pageSizeRows,
        async (d) => {
          if (await handle(d, now)) rotated++;
        },
        (d) => `key ${d.name} of vault ${d.vault}`,
        (failed) => `${failed} key(s) could not be rotated; ${rotated} were`,
      );
      return rotated;
    },
  };
}
export type KeyPolicies = ReturnType<typeof createKeyPolicies>;
