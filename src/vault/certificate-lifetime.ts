import type { AuditLog } from '../audit/log.js';
import { isLatchkeyError } from '../errors/index.js';
import { walkPages } from '../lib/paged-walk.js';
import type { Database } from '../storage/port.js';
import {
  type LifetimeCandidate,
  certificateLifetimeStore as store,
} from '../storage/vault/certificate-lifetime-store.js';
import type { Issuance } from './certificate-ca.js';
import type { CertificatePolicy, LifetimeAction } from './certificate-policy.js';
import type { CertificateOperation, createCertificateVersions } from './certificate-versions.js';
import type { KeyMaterial } from './key-material.js';
import { DAY_MS } from './model.js';

type Details = Record<string, string | number | boolean | null>;

/** When a lifetime action of a certificate valid from `nbf` to `exp` is due (epoch ms). */
export function dueAt(a: LifetimeAction, nbf: number, exp: number): number {
  const days = a.trigger.days_before_expiry;
  if (days !== undefined) return exp - days * DAY_MS;
  return nbf + Math.floor(((exp - nbf) * (a.trigger.lifetime_percentage ?? 80)) / 100);
}

/**
 * Certificates' lifetime actions carried out on schedule (the `certificate-lifetime` job; one
 * node at a time on PostgreSQL, src/jobs/runner.ts): for the current version of each live
 * certificate with an expiry, an action whose trigger (N days before expiry, or N % of the
 * validity) has passed is done once:
 *
 * - `EmailContacts`: a `CertificateNearExpiry` audit event (Latchkey sends no mail) — once per
 *   version (`certificate_lifetime_events`);
 * - `AutoRenew`: a new version by the policy's issuer (`Self`, `Latchkey` or a vault issuer),
 *   with a new key (the current one under `key_props.reuse_key`), and a `CertificateRenew`
 *   audit event; the new version's own triggers lie ahead. Each version is renewed once at most
 *   (`certificate_lifetime_events`), and not at all if its trigger was already due when it was
 *   made (else each renewal would be due at once, every run). Issuer `Unknown` is not renewed
 *   (its certificate comes from outside). A `CertificateRenewFailed` event says why a version
 *   is not renewed, once per version, as it does for an issuer that fails.
 */
export function createCertificateLifetime(deps: {
  db: Database;
  audit: AuditLog;
  baseUrlOf: (vaultNameLower: string) => string;
  versions: Pick<ReturnType<typeof createCertificateVersions>, 'addVersion' | 'completed'>;
  /**
   * A key (new, or the current one under `reuse_key`) and a certificate for the policy, by its
   * issuer (certificates.ts); throws if it cannot.
   */
  renew: (
    vault: { id: string; tenantId: string },
    name: string,
    policy: CertificatePolicy,
  ) => Promise<{ der: Buffer; chain: Buffer[]; material: KeyMaterial; issuance?: Issuance }>;
  onChanged?: (vaultId: string, nameLower: string) => void;
}) {
  const { db, audit } = deps;
  const event = (d: LifetimeCandidate, operation: string, version: string, details: Details) => ({
    tenantId: d.tenantId,
    callerKind: 'system' as const,
    operation,
    target: `${deps.baseUrlOf(d.vault)}/certificates/${d.name}/${version}`,
    vault: d.vault,
    status: 200,
    details,
  });
  /** Records `action` done for the version with its audit event, once (false if it already was). */
  const once = (d: LifetimeCandidate, now: number, action: string, operation: string, details: Details) =>
    db.transaction(async (tx) => {
      await audit.hold(tx); // before the mark below: lock order (audit/log.ts)
      if (!(await store.markDone(tx, d.vaultId, d.nameLower, d.version, action, now))) return false;
      await audit.append(tx, event(d, operation, d.version, details));
      return true;
    });

  const renew = async (
    d: LifetimeCandidate,
    policy: CertificatePolicy,
    due: number,
    now: number,
  ): Promise<boolean> => {
    if (policy.issuer.name === 'Unknown') {
      await once(d, now, 'AutoRenewFailed', 'CertificateRenewFailed', {
        reason: "issuer 'Unknown': the certificate comes from an outside CA (merge a new one)",
      });
      return false;
    }
    // A version due the moment it was made (a trigger longer than its validity, as a policy stored
    // before certificate-policy.ts bounded it may hold, or a certificate its issuer made shorter)
    // would renew into another such version on every run: it is not renewed, and the event says why.
    if (Math.max(d.nbf ?? d.created, d.created) >= due) {
      await once(d, now, 'AutoRenewFailed', 'CertificateRenewFailed', {
        reason:
          "the AutoRenew trigger was already due when this version was made (a days_before_expiry longer than the certificate's validity?): it is not renewed, or each renewal would renew again at once; shorten the trigger and create a new version",
      });
      return false;
    }
    const vault = { id: d.vaultId, tenantId: d.tenantId };
    let issued: Awaited<ReturnType<typeof deps.renew>>;
    try {
      issued = await deps.renew(vault, d.name, policy);
    } catch (e) {
      if (!isLatchkeyError(e) || e.status >= 500) throw e;
      await once(d, now, 'AutoRenewFailed', 'CertificateRenewFailed', { reason: e.message });
      return false;
    }
    const operation: CertificateOperation = deps.versions.completed(policy.issuer.name);
    const renewed = await db.transaction(async (tx) => {
      await audit.hold(tx); // before the new version's rows: lock order (audit/log.ts)
      // Another node (or a user) may have made a new version meanwhile: only the judged one renews.
      if ((await store.currentVersion(tx, d.vaultId, d.nameLower)) !== d.version) return false;
      // And each version is renewed once at most.
      if (!(await store.markDone(tx, d.vaultId, d.nameLower, d.version, 'AutoRenew', now))) return false;
      const r = await deps.versions.addVersion(tx, vault, d.name, {
        ...issued,
        policy,
        enabled: true,
        tags: null,
        operation,
      });
      await audit.append(tx, event(d, 'CertificateRenew', r.version, { previous: d.version, exp: r.exp }));
      return true;
    });
    if (renewed) deps.onChanged?.(d.vaultId, d.nameLower);
    return renewed;
  };

  /** One certificate: its due actions. */
  const handle = async (d: LifetimeCandidate, now: number) => {
    const policy = JSON.parse(d.policy) as CertificatePolicy;
    const nbf = d.nbf ?? d.exp;
    let renewed = false;
    let notified = false;
    for (const a of policy.lifetime_actions) {
      const due = dueAt(a, nbf, d.exp);
      if (now < due) continue;
      if (a.action.action_type === 'EmailContacts')
        notified = (await once(d, now, 'EmailContacts', 'CertificateNearExpiry', { exp: d.exp })) || notified;
      else if (!renewed) renewed = await renew(d, policy, due, now);
    }
    return { renewed, notified };
  };

  return {
    /** The job's round: every live certificate with an expiry, in pages by primary key. */
    async runDue(now: number, pageSizeRows = 500): Promise<{ renewed: number; notified: number }> {
      const n = { renewed: 0, notified: 0 };
      await walkPages(
        (after, size) => store.candidates(db, after, size),
        pageSizeRows,
        async (d) => {
          const r = await handle(d, now);
          if (r.renewed) n.renewed++;
          if (r.notified) n.notified++;
        },
        (d) => `certificate ${d.name} of vault ${d.vaultId}`,
        (failed) => `${failed} certificate(s) failed their lifetime actions`,
      );
      return n;
    },
  };
}
