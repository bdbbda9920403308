import { createHash, X509Certificate } from 'node:crypto';
import { generateSecret, type SecretHasher } from '../crypto/hashing.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid, newGuid } from '../lib/ids.js';
import type { Database, Queryable } from '../storage/port.js';

export interface CredentialInfo {
  keyId: string;
  principalId: string;
  type: 'Password' | 'AsymmetricX509Cert';
  displayName: string;
  /** First characters of a secret (safe to show), or the certificate's SHA-256 thumbprint. */
  hint: string | null;
  thumbprintSha1: string | null;
  thumbprintSha256: string | null;
  startDateTime: string;
  endDateTime: string;
}

export interface CredentialRow {
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

const info = (r: CredentialRow): CredentialInfo => ({
  keyId: r.id,
  principalId: r.principal_id,
  type: r.kind === 'secret' ? 'Password' : 'AsymmetricX509Cert',
  displayName: r.display_name,
  hint: r.hint,
  thumbprintSha1: r.thumbprint_sha1,
  thumbprintSha256: r.thumbprint_sha256,
  startDateTime: new Date(Number(r.start_at)).toISOString(),
  endDateTime: new Date(Number(r.end_at)).toISOString(),
});

const DAY = 86_400_000;
export const SECRET_PREFIX = 'lks~';
export const MAX_SECRET_DAYS = 730;
export const MAX_CREDENTIALS = 20;
const PEM_MAX = 16 * 1024;

export interface ParsedCertificate {
  pem: string;
  thumbprintSha1: string;
  thumbprintSha256: string;
  notBefore: number;
  notAfter: number;
  subject: string;
}

/** Parses a PEM certificate and computes its thumbprints (base64url, as in `x5t` / `x5t#S256`). */
export function parseCertificate(pem: string): ParsedCertificate {
  if (pem.length > PEM_MAX) throw new LatchkeyError('BadParameter', 'The certificate is too large.');
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!m)
    throw new LatchkeyError('BadParameter', 'Expected a PEM certificate (-----BEGIN CERTIFICATE-----).');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m[0]);
  } catch (e) {
    throw new LatchkeyError('BadParameter', 'The certificate could not be parsed.', { cause: e });
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa' && cert.publicKey.asymmetricKeyType !== 'ec') {
    throw new LatchkeyError('BadParameter', 'Only RSA and EC certificates are supported.');
  }
  return {
    pem: `${m[0]}\n`,
    thumbprintSha1: createHash('sha1').update(cert.raw).digest('base64url'),
    thumbprintSha256: createHash('sha256').update(cert.raw).digest('base64url'),
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
    subject: cert.subject.replaceAll('\n', ', ').slice(0, 200),
  };
}

export function createCredentials(deps: { db: Database; clock: Clock; hasher: SecretHasher }) {
  const { db, clock, hasher } = deps;
  const count = async (principalId: string, q: Queryable) =>
    Number(
      (
        await q.get<{ n: number }>('SELECT COUNT(*) AS n FROM credentials WHERE principal_id = $1', [
          principalId,
        ])
      )?.n ?? 0,
    );

  return {
    /** Adds a client secret. The returned `secretText` is shown once and never stored. */
    async addSecret(
      tenantId: string,
      principalId: string,
      input: { displayName?: string; years?: number; days?: number } = {},
      q: Queryable = db,
    ): Promise<CredentialInfo & { secretText: string }> {
      const days = input.days ?? Math.round((input.years ?? 1) * 365);
      if (!Number.isFinite(days) || days < 1 || days > MAX_SECRET_DAYS) {
        throw new LatchkeyError('BadParameter', `A secret's lifetime must be 1–${MAX_SECRET_DAYS} days.`);
      }
      if ((await count(principalId, q)) >= MAX_CREDENTIALS) {
        throw new LatchkeyError('Conflict', `A principal may have at most ${MAX_CREDENTIALS} credentials.`);
      }
      const secretText = generateSecret(SECRET_PREFIX);
      const now = clock.now();
      const row: CredentialRow = {
        id: newGuid(),
        tenant_id: tenantId,
        principal_id: principalId,
        kind: 'secret',
        display_name: (input.displayName ?? 'secret').slice(0, 120),
        hint: secretText.slice(0, SECRET_PREFIX.length + 3),
        secret_hash: hasher.hash(secretText),
        thumbprint_sha1: null,
        thumbprint_sha256: null,
        certificate_pem: null,
        start_at: now,
        end_at: now + days * DAY,
      };
      await this.insert(row, q);
      return { ...info(row), secretText };
    },
    async addCertificate(
      tenantId: string,
      principalId: string,
      pem: string,
      input: { displayName?: string } = {},
      q: Queryable = db,
    ): Promise<CredentialInfo> {
      const cert = parseCertificate(pem);
      if (cert.notAfter <= clock.now())
        throw new LatchkeyError('BadParameter', 'The certificate has expired.');
      if ((await count(principalId, q)) >= MAX_CREDENTIALS) {
        throw new LatchkeyError('Conflict', `A principal may have at most ${MAX_CREDENTIALS} credentials.`);
      }
      const dup = await q.get(
        'SELECT id FROM credentials WHERE principal_id = $1 AND thumbprint_sha256 = $2',
        [principalId, cert.thumbprintSha256],
      );
      if (dup)
        throw new LatchkeyError('Conflict', 'That certificate is already registered for this principal.');
      const row: CredentialRow = {
        id: newGuid(),
        tenant_id: tenantId,
        principal_id: principalId,
        kind: 'certificate',
        display_name: (input.displayName ?? cert.subject).slice(0, 120),
        hint: cert.thumbprintSha256.slice(0, 8),
        secret_hash: null,
        thumbprint_sha1: cert.thumbprintSha1,
        thumbprint_sha256: cert.thumbprintSha256,
        certificate_pem: cert.pem,
        start_at: cert.notBefore,
        end_at: cert.notAfter,
      };
      await this.insert(row, q);
      return info(row);
    },
    async insert(row: CredentialRow, q: Queryable) {
      await q.run(
        `INSERT INTO credentials (id, tenant_id, principal_id, kind, display_name, hint, secret_hash, thumbprint_sha1,
           thumbprint_sha256, certificate_pem, start_at, end_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          row.id,
          row.tenant_id,
          row.principal_id,
          row.kind,
          row.display_name,
          row.hint,
          row.secret_hash,
          row.thumbprint_sha1,
          row.thumbprint_sha256,
          row.certificate_pem,
          row.start_at,
          row.end_at,
          clock.now(),
        ],
      );
    },
    async list(tenantId: string, principalId: string): Promise<CredentialInfo[]> {
      const rows = await db.all<CredentialRow>(
        'SELECT * FROM credentials WHERE tenant_id = $1 AND principal_id = $2 ORDER BY created_at, id',
        [tenantId, principalId],
      );
      return rows.map(info);
    },
    async delete(tenantId: string, principalId: string, keyId: string, q: Queryable = db): Promise<void> {
      if (!isGuid(keyId)) throw new LatchkeyError('NotFound', 'Credential not found.');
      const r = await q.run(
        'DELETE FROM credentials WHERE id = $1 AND principal_id = $2 AND tenant_id = $3',
        [keyId.toLowerCase(), principalId, tenantId],
      );
      if (r.changes === 0) throw new LatchkeyError('NotFound', 'Credential not found.');
    },
    async deleteAll(tenantId: string, principalId: string, q: Queryable = db): Promise<void> {
      await q.run('DELETE FROM credentials WHERE principal_id = $1 AND tenant_id = $2', [
        principalId,
        tenantId,
      ]);
    },
    /** True when `secret` matches one of the principal's current secrets (constant-time per candidate). */
    async verifySecret(principalId: string, secret: string): Promise<boolean> {
      const now = clock.now();
      const rows = await db.all<{ secret_hash: Buffer }>(
        "SELECT secret_hash FROM credentials WHERE principal_id = $1 AND kind = 'secret' AND start_at <= $2 AND end_at > $2",
        [principalId, now],
      );
      let ok = false;
      for (const r of rows) if (hasher.equals(secret, Buffer.from(r.secret_hash))) ok = true;
      return ok;
    },
    /** The current certificate with that thumbprint (`x5t#S256` or legacy `x5t`), if registered for the principal. */
    async findCertificate(
      principalId: string,
      thumb: { sha256?: string; sha1?: string },
    ): Promise<string | undefined> {
      const now = clock.now();
      const row = thumb.sha256
        ? await db.get<{ certificate_pem: string }>(
            "SELECT certificate_pem FROM credentials WHERE principal_id = $1 AND kind = 'certificate' AND thumbprint_sha256 = $2 AND start_at <= $3 AND end_at > $3",
            [principalId, thumb.sha256, now],
          )
        : thumb.sha1
          ? await db.get<{ certificate_pem: string }>(
              "SELECT certificate_pem FROM credentials WHERE principal_id = $1 AND kind = 'certificate' AND thumbprint_sha1 = $2 AND start_at <= $3 AND end_at > $3",
              [principalId, thumb.sha1, now],
            )
          : undefined;
      return row?.certificate_pem;
    },
  };
}
export type Credentials = ReturnType<typeof createCredentials>;
