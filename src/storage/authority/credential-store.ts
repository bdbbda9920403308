import type { Queryable } from '../port.js';

/** A client secret (only its hash) or a certificate registered for a principal (times in epoch ms). */
export interface CredentialRecord {
  id: string;
  tenantId: string;
  principalId: string;
  kind: 'secret' | 'certificate';
  displayName: string;
  /** First characters of a secret (safe to show), or the start of the certificate's SHA-256 thumbprint. */
  hint: string | null;
  secretHash: Buffer | null;
  thumbprintSha1: string | null;
  thumbprintSha256: string | null;
  certificatePem: string | null;
  startAt: number;
  endAt: number;
}

/** A credential as client authentication checks it (no PEM: see `certificatePem`). */
export interface ClientCredential {
  id: string;
  kind: 'secret' | 'certificate';
  secretHash: Buffer | null;
  thumbprintSha1: string | null;
  thumbprintSha256: string | null;
  startAt: number;
  endAt: number;
}

interface CredentialRow {
  id: string;
  tenant_id: string;
  principal_id: string;
  kind: 'secret' | 'certificate';
  display_name: string;
  hint: string | null;
  secret_hash: Buffer | null;
  thumbprint_sha1: string | null;
  thumbprint_sha256: string | null;
  certificate_pem: string | null;
  start_at: number;
  end_at: number;
}

const fromRow = (r: CredentialRow): CredentialRecord => ({
  id: r.id,
  tenantId: r.tenant_id,
  principalId: r.principal_id,
  kind: r.kind,
  displayName: r.display_name,
  hint: r.hint,
  secretHash: r.secret_hash === null ? null : Buffer.from(r.secret_hash),
  thumbprintSha1: r.thumbprint_sha1,
  thumbprintSha256: r.thumbprint_sha256,
  certificatePem: r.certificate_pem,
  startAt: Number(r.start_at),
  endAt: Number(r.end_at),
});

/** The SQL behind principals' credentials (migration 0001). */
export const credentialStore = {
  async countOf(q: Queryable, principalId: string): Promise<number> {
    const r = await q.get<{ n: number }>('SELECT COUNT(*) AS n FROM credentials WHERE principal_id = $1', [
      principalId,
    ]);
    return Number(r?.n ?? 0);
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  /** True when the principal already has the certificate with this SHA-256 thumbprint. */
  async hasCertificate(q: Queryable, principalId: string, thumbprintSha256: string): Promise<boolean> {
    return (
      (await q.get('SELECT id FROM credentials WHERE principal_id = $1 AND thumbprint_sha256 = $2', [
        principalId,
        thumbprintSha256,
      ])) !== undefined
    );
  },
  async insert(q: Queryable, c: CredentialRecord, createdAt: number): Promise<void> {
    await q.run(
      `INSERT INTO credentials (id, tenant_id, principal_id, kind, display_name, hint, secret_hash, thumbprint_sha1,
         thumbprint_sha256, certificate_pem, start_at, end_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        c.id,
        c.tenantId,
        c.principalId,
        c.kind,
        c.displayName,
        c.hint,
        c.secretHash,
        c.thumbprintSha1,
        c.thumbprintSha256,
        c.certificatePem,
        c.startAt,
        c.endAt,
        createdAt,
      ],
    );
  },
  /** A principal's credentials, oldest first. */
  async list(q: Queryable, tenantId: string, principalId: string): Promise<CredentialRecord[]> {
    const rows = await q.all<CredentialRow>(
      'SELECT * FROM credentials WHERE tenant_id = $1 AND principal_id = $2 ORDER BY created_at, id',
      [tenantId, principalId],
    );
    return rows.map(fromRow);
  },
  /** False when the principal has no credential with that id. */
  async delete(q: Queryable, tenantId: string, principalId: string, id: string): Promise<boolean> {
    const r = await q.run('DELETE FROM credentials WHERE id = $1 AND principal_id = $2 AND tenant_id = $3', [
      id,
      principalId,
      tenantId,
    ]);
    return r.changes > 0;
  },
  async deleteAllOf(q: Queryable, tenantId: string, principalId: string): Promise<void> {
    await q.run('DELETE FROM credentials WHERE principal_id = $1 AND tenant_id = $2', [
      principalId,
      tenantId,
    ]);
  },
  /**
   * What client authentication needs of every credential of a principal (at most
   * MAX_CREDENTIALS rows): secret hashes, thumbprints and validity windows, not the PEMs.
   */
  async clientCredentials(q: Queryable, principalId: string): Promise<ClientCredential[]> {
    const rows = await q.all<
      Omit<CredentialRow, 'tenant_id' | 'principal_id' | 'display_name' | 'hint' | 'certificate_pem'>
    >(
      'SELECT id, kind, secret_hash, thumbprint_sha1, thumbprint_sha256, start_at, end_at FROM credentials WHERE principal_id = $1',
      [principalId],
    );
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      secretHash: r.secret_hash === null ? null : Buffer.from(r.secret_hash),
      thumbprintSha1: r.thumbprint_sha1,
      thumbprintSha256: r.thumbprint_sha256,
      startAt: Number(r.start_at),
      endAt: Number(r.end_at),
    }));
  },
  /** The PEM of a certificate credential of the principal (a credential's PEM never changes). */
  async certificatePem(q: Queryable, principalId: string, id: string): Promise<string | undefined> {
    const row = await q.get<{ certificate_pem: string }>(
      "SELECT certificate_pem FROM credentials WHERE id = $1 AND principal_id = $2 AND kind = 'certificate'",
      [id, principalId],
    );
    return row?.certificate_pem ?? undefined;
  },
  /**
   * One primary-key read: the principal is still enabled and (when given) the credential is
   * still registered for it and valid at `now`.
   */
  async stillValid(
    q: Queryable,
    principalId: string,
    credentialId: string | undefined,
    now: number,
  ): Promise<boolean> {
    const row =
      credentialId === undefined
        ? await q.get('SELECT 1 AS ok FROM principals WHERE id = $1 AND enabled = 1', [principalId])
        : await q.get(
            `SELECT 1 AS ok FROM credentials c JOIN principals p ON p.id = c.principal_id
             WHERE c.id = $1 AND c.principal_id = $2 AND p.enabled = 1 AND c.start_at <= $3 AND c.end_at > $3`,
            [credentialId, principalId, now],
          );
    return row !== undefined;
  },
};
