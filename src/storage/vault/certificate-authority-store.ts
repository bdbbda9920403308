import type { Queryable } from '../port.js';

/**
 * One generation of a tenant's own CA (issuer provider `Latchkey`): its certificate (public),
 * sealed private key, and its last CRL. The highest generation is the current CA.
 */
export interface CertificateAuthorityRecord {
  tenantId: string;
  generation: number;
  cer: Buffer;
  sealedKey: Buffer;
  created: number;
  /** When a newer generation replaced it; null for the current CA. */
  retired: number | null;
  /** The latest expiry (ms) of a certificate it signed. */
  issuedUntil: number;
  /**
   * The number of its last CRL, or higher: a revocation raises it (a number never used), so that
   * a CRL made from the revocations read before it can no longer be stored (`putCrl`).
   */
  crlNumber: number;
  /** Its last CRL (DER) and when it was made; null when none was made or a revocation made it stale. */
  crl: Buffer | null;
  crlThisUpdate: number | null;
}

/** A revoked certificate of a CA generation, listed in its CRL until `notAfter`. */
export interface CertificateRevocationRecord {
  serial: string;
  notAfter: number;
  revoked: number;
  reason: string;
}

/** A certificate version: where the CA issued a certificate (0021), or where a copy is held. */
export interface IssuancePlace {
  vaultId: string;
  nameLower: string;
  version: string;
}

/** A certificate (DER) and the version that holds it. */
export interface HeldCertificate {
  der: Buffer;
  at: IssuancePlace;
}

interface HeldRow {
  cer: Buffer | Uint8Array;
  vault_id: string;
  name_lower: string;
  version: string;
}
const held = (rows: HeldRow[]): HeldCertificate[] =>
  rows.map((r) => ({
    der: Buffer.from(r.cer),
    at: { vaultId: r.vault_id, nameLower: r.name_lower, version: r.version },
  }));

interface AuthorityRow {
  tenant_id: string;
  generation: number | string;
  cer: Buffer | Uint8Array;
  sealed_key: Buffer | Uint8Array;
  created_at: number | string;
  retired_at: number | string | null;
  issued_until: number | string;
  crl_number: number | string;
  crl: Buffer | Uint8Array | null;
  crl_this_update: number | string | null;
}

const COLS =
  'tenant_id, generation, cer, sealed_key, created_at, retired_at, issued_until, crl_number, crl, crl_this_update';
const record = (r: AuthorityRow): CertificateAuthorityRecord => ({
  tenantId: r.tenant_id,
  generation: Number(r.generation),
  cer: Buffer.from(r.cer),
  sealedKey: Buffer.from(r.sealed_key),
  created: Number(r.created_at),
  retired: r.retired_at === null ? null : Number(r.retired_at),
  issuedUntil: Number(r.issued_until),
  crlNumber: Number(r.crl_number),
  crl: r.crl === null ? null : Buffer.from(r.crl),
  crlThisUpdate: r.crl_this_update === null ? null : Number(r.crl_this_update),
});

/** The SQL of the tenants' CA generations, their revocations and issuances (migrations 0016, 0020, 0021). */
export const certificateAuthorityStore = {
  /** Every generation of the tenant's CA, the newest first. */
  async all(q: Queryable, tenantId: string): Promise<CertificateAuthorityRecord[]> {
    const rows = await q.all<AuthorityRow>(
      `SELECT ${COLS} FROM certificate_ca_generations WHERE tenant_id = $1 ORDER BY generation DESC`,
      [tenantId],
    );
    return rows.map(record);
  },
  /** The tenant's current CA (its highest generation). */
  async current(q: Queryable, tenantId: string): Promise<CertificateAuthorityRecord | undefined> {
    const r = await q.get<AuthorityRow>(
      `SELECT ${COLS} FROM certificate_ca_generations WHERE tenant_id = $1 ORDER BY generation DESC LIMIT 1`,
      [tenantId],
    );
    return r && record(r);
  },
  async find(
    q: Queryable,
    tenantId: string,
    generation: number,
  ): Promise<CertificateAuthorityRecord | undefined> {
    const r = await q.get<AuthorityRow>(
      `SELECT ${COLS} FROM certificate_ca_generations WHERE tenant_id = $1 AND generation = $2`,
      [tenantId, generation],
    );
    return r && record(r);
  },
  /**
   * Stores a generation unless the tenant already has it (another node made it first); returns
   * whether this one was stored.
   */
  async insertIfAbsent(q: Queryable, r: CertificateAuthorityRecord): Promise<boolean> {
    const res = await q.run(
      `INSERT INTO certificate_ca_generations (${COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (tenant_id, generation) DO NOTHING`,
      [
        r.tenantId,
        r.generation,
        r.cer,
        r.sealedKey,
        r.created,
        r.retired,
        r.issuedUntil,
        r.crlNumber,
        r.crl,
        r.crlThisUpdate,
      ],
    );
    return res.changes > 0;
  },
  async retire(q: Queryable, tenantId: string, generation: number, at: number): Promise<void> {
    await q.run(
      'UPDATE certificate_ca_generations SET retired_at = $3 WHERE tenant_id = $1 AND generation = $2 AND retired_at IS NULL',
      [tenantId, generation, at],
    );
  },
  /** A certificate it signed expires at `notAfter`: the generation stays published until then. */
  async issuedUntil(q: Queryable, tenantId: string, generation: number, notAfter: number): Promise<void> {
    await q.run(
      `UPDATE certificate_ca_generations SET issued_until = $3
       WHERE tenant_id = $1 AND generation = $2 AND issued_until < $3`,
      [tenantId, generation, notAfter],
    );
  },
  /** Stores a new CRL if its number is the next one (else another node stored one first: false). */
  async putCrl(
    q: Queryable,
    tenantId: string,
    generation: number,
    crl: { der: Buffer; number: number; thisUpdate: number },
  ): Promise<boolean> {
    const res = await q.run(
      `UPDATE certificate_ca_generations SET crl = $3, crl_number = $4, crl_this_update = $5
       WHERE tenant_id = $1 AND generation = $2 AND crl_number = $6`,
      [tenantId, generation, crl.der, crl.number, crl.thisUpdate, crl.number - 1],
    );
    return res.changes > 0;
  },
  /**
   * Records a revocation (a certificate already revoked keeps its first date and reason, except
   * that `keyCompromise` replaces a milder reason: a certificate revoked as superseded, or at its
   * purge, whose key is then found compromised must say so, RFC 5280 §5.3.1) and makes the
   * generation's CRL stale; true when it was new or its reason became keyCompromise. The CRL number goes up too: a CRL being made
   * meanwhile from the revocations read before this one then fails its `putCrl` (its number is
   * taken) and is made again, instead of being stored without this revocation and served as
   * fresh for an hour (RFC 5280 §5.2.3 asks CRL numbers to increase, not to be consecutive).
   */
  async revoke(
    q: Queryable,
    tenantId: string,
    generation: number,
    r: CertificateRevocationRecord,
  ): Promise<boolean> {
    const res = await q.run(
      `INSERT INTO certificate_ca_revocations (tenant_id, generation, serial, not_after, revoked_at, reason)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, generation, serial)
       DO UPDATE SET reason = excluded.reason
       WHERE excluded.reason = 'keyCompromise' AND certificate_ca_revocations.reason <> 'keyCompromise'`,
      [tenantId, generation, r.serial, r.notAfter, r.revoked, r.reason],
    );
    if (res.changes > 0)
      await q.run(
        'UPDATE certificate_ca_generations SET crl = NULL, crl_number = crl_number + 1 WHERE tenant_id = $1 AND generation = $2',
        [tenantId, generation],
      );
    return res.changes > 0;
  },
  /** The generation's revoked certificates that have not expired at `now`. */
  async revoked(
    q: Queryable,
    tenantId: string,
    generation: number,
    now: number,
  ): Promise<CertificateRevocationRecord[]> {
    const rows = await q.all<{
      serial: string;
      not_after: number | string;
      revoked_at: number | string;
      reason: string;
    }>(
      `SELECT serial, not_after, revoked_at, reason FROM certificate_ca_revocations
       WHERE tenant_id = $1 AND generation = $2 AND not_after > $3 ORDER BY revoked_at, serial`,
      [tenantId, generation, now],
    );
    return rows.map((r) => ({
      serial: r.serial,
      notAfter: Number(r.not_after),
      revoked: Number(r.revoked_at),
      reason: r.reason,
    }));
  },
  /** Records where a certificate the generation signed was issued (migration 0021); kept if already recorded. */
  async recordIssuance(
    q: Queryable,
    tenantId: string,
    generation: number,
    serial: string,
    at: IssuancePlace,
  ): Promise<void> {
    await q.run(
      `INSERT INTO certificate_ca_issuances (tenant_id, generation, serial, vault_id, name_lower, version)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, generation, serial) DO NOTHING`,
      [tenantId, generation, serial, at.vaultId, at.nameLower, at.version],
    );
  },
  /** Where the generation issued the certificate `serial`; undefined when not recorded (issued before 0021). */
  async issuance(
    q: Queryable,
    tenantId: string,
    generation: number,
    serial: string,
  ): Promise<IssuancePlace | undefined> {
    const r = await q.get<{ vault_id: string; name_lower: string; version: string }>(
      `SELECT vault_id, name_lower, version FROM certificate_ca_issuances
       WHERE tenant_id = $1 AND generation = $2 AND serial = $3`,
      [tenantId, generation, serial],
    );
    return r && { vaultId: r.vault_id, nameLower: r.name_lower, version: r.version };
  },
  /** The certificates (DER) of every certificate version in a vault and where each is held, for revoking them at its purge. */
  async vaultCertificates(q: Queryable, vaultId: string): Promise<HeldCertificate[]> {
    return held(
      await q.all<HeldRow>(
        'SELECT cer, vault_id, name_lower, version FROM certificate_versions WHERE vault_id = $1',
        [vaultId],
      ),
    );
  },
  /** The certificates (DER) of every version of a certificate object and where each is held, for revoking them at its purge. */
  async versionCertificates(q: Queryable, vaultId: string, nameLower: string): Promise<HeldCertificate[]> {
    return held(
      await q.all<HeldRow>(
        'SELECT cer, vault_id, name_lower, version FROM certificate_versions WHERE vault_id = $1 AND name_lower = $2',
        [vaultId, nameLower],
      ),
    );
  },
};
