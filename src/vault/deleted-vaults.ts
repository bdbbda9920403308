import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import type { Scopes } from '../management/scopes.js';
import type { Database, Queryable } from '../storage/port.js';
import { certificateAuthorityStore } from '../storage/vault/certificate-authority-store.js';
import { vaultStore as store } from '../storage/vault/vault-store.js';
import { statusOf, vaultEvent } from './audit.js';
import { revokeIssuedCertificates } from './certificate-ca.js';
import { VAULT_ACTIONS, VAULT_ROW_LOCK, type Vault, vaultFromRecord } from './model.js';

/**
 * Soft-deleted vaults (Microsoft.KeyVault/locations/deletedVaults): list, get,
 * purge now, and the purge job for those past their retention. A purge takes
 * the vault's objects and the role assignments at or below it.
 */
export function createDeletedVaults(deps: {
  db: Database;
  clock: Clock;
  bus: ChangeBus;
  access: Access;
  audit: AuditLog;
  scopes: Pick<Scopes, 'subscription'>;
}) {
  const { db, clock, bus, access, audit, scopes } = deps;
  const purgeNow = async (v: Vault, q: Queryable) => {
    // Its certificates signed by the tenant's CA go into the CRL, those issued into this vault
    // (not copies imported or restored here from elsewhere: certificate-ca.ts).
    const issued = await certificateAuthorityStore.vaultCertificates(q, v.id);
    await revokeIssuedCertificates(q, clock.now(), v.tenantId, issued, 'cessationOfOperation');
    await store.purge(q, v.id);
    await access.deleteAtOrBelow(v.tenantId, v.armId, q);
    bus.publish('vault', v.nameLower);
  };

  async function listDeleted(caller: Caller, subscriptionId: string): Promise<Vault[]> {
    const sub = await scopes.subscription(caller.tenantId, subscriptionId);
    const rows = await store.inSubscription(db, caller.tenantId, sub.subscriptionId, true);
    const out: Vault[] = [];
    for (const v of rows.map(vaultFromRecord))
      if (await access.allows(caller, VAULT_ACTIONS.deletedRead, v.armId)) out.push(v);
    return out;
  }

  async function getDeleted(
    caller: Caller,
    subscriptionId: string,
    location: string,
    name: string,
  ): Promise<Vault> {
    const sub = await scopes.subscription(caller.tenantId, subscriptionId);
    const r = await store.byName(db, name.toLowerCase());
    const v = r && vaultFromRecord(r);
    const missing = () =>
      new LatchkeyError(
        'ResourceNotFound',
        `No soft-deleted vault named '${name.slice(0, 64)}' in that location.`,
      );
    if (
      !v ||
      v.deletedAt === null ||
      v.tenantId !== caller.tenantId ||
      v.subscriptionId !== sub.subscriptionId
    )
      throw missing();
    if (v.location !== location.replaceAll(' ', '').toLowerCase()) throw missing();
    await access.require(caller, VAULT_ACTIONS.deletedRead, v.armId);
    return v;
  }

  /** Purges a soft-deleted vault now: its objects and the role assignments at or below it go too. */
  async function purgeDeleted(
    caller: Caller,
    meta: RequestMeta,
    subscriptionId: string,
    location: string,
    name: string,
  ): Promise<void> {
    const v = await getDeleted(caller, subscriptionId, location, name);
    const refuseIfProtected = (x: Vault) => {
      if (x.enablePurgeProtection && x.scheduledPurgeAt !== null && clock.now() < x.scheduledPurgeAt)
        throw new LatchkeyError(
          'Conflict',
          `Vault '${x.name}' has purge protection enabled: it cannot be purged before its scheduled purge date (${new Date(x.scheduledPurgeAt).toISOString()}).`,
        );
    };
    try {
      await access.require(caller, VAULT_ACTIONS.purge, v.armId);
      refuseIfProtected(v);
      await db.transaction(async (tx) => {
        // Read again under the lock: a vault recovered (or purged) meanwhile, on any node, is not
        // purged now; the purge protection is the row's as it is now.
        await audit.hold(tx);
        await tx.lock(VAULT_ROW_LOCK);
        const r = await store.byName(tx, v.nameLower);
        const now = r && vaultFromRecord(r);
        if (!now || now.id !== v.id || now.deletedAt === null)
          throw new LatchkeyError(
            'ResourceNotFound',
            `No soft-deleted vault named '${v.name}' in that location.`,
          );
        refuseIfProtected(now);
        await purgeNow(now, tx);
        await audit.append(tx, vaultEvent(caller, meta, 'VaultPurge', v.armId, v.nameLower, 200));
      });
    } catch (e) {
      await audit.record(vaultEvent(caller, meta, 'VaultPurge', v.armId, v.nameLower, statusOf(e)));
      throw e;
    }
  }

  /** Purge job: soft-deleted vaults past their retention are purged for good. Returns how many. */
  async function purgeDue(now: number, limit = 100): Promise<number> {
    const due = await store.due(db, now, limit);
    for (const r of due) {
      await db.transaction(async (tx) => {
        // Re-read inside the transaction, under the lock: a vault recovered meanwhile is left alone.
        await audit.hold(tx);
        await tx.lock(VAULT_ROW_LOCK);
        const current = await store.stillDue(tx, r.id, now);
        if (!current) return;
        const v = vaultFromRecord(current);
        await purgeNow(v, tx);
        await audit.append(tx, {
          tenantId: v.tenantId,
          callerKind: 'system',
          operation: 'VaultPurge',
          target: v.armId,
          vault: v.nameLower,
          status: 200,
          details: { scheduled: true },
        });
      });
    }
    return due.length;
  }

  return { listDeleted, getDeleted, purgeDeleted, purgeDue };
}
