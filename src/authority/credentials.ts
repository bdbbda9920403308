import { createHash, X509Certificate } from 'node:crypto';
import { generateSecret, type SecretHasher } from '../crypto/hashing.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid, newGuid } from '../lib/ids.js';
import { type CredentialRecord, credentialStore } from '../storage/authority/credential-store.js';
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

const info = (c: CredentialRecord): CredentialInfo => ({
  keyId: c.id,
  principalId: c.principalId,
  type: c.kind === 'secret' ? 'Password' : 'AsymmetricX509Cert',
  displayName: c.displayName,
  hint: c.hint,
  thumbprintSha1: c.thumbprintSha1,
  thumbprintSha256: c.thumbprintSha256,
  startDateTime: new Date(c.startAt).toISOString(),
  endDateTime: new Date(c.endAt).toISOString(),
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
  const count = (principalId: string, q: Queryable) => credentialStore.countOf(q, principalId);

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
      const row: CredentialRecord = {
        id: newGuid(),
        tenantId,
        principalId,
        kind: 'secret',
        displayName: (input.displayName ?? 'secret').slice(0, 120),
        hint: secretText.slice(0, SECRET_PREFIX.length + 3),
        secretHash: hasher.hash(secretText),
        thumbprintSha1: null,
        thumbprintSha256: null,
        certificatePem: null,
        startAt: now,
        endAt: now + days * DAY,
      };
      await credentialStore.insert(q, row, clock.now());
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
      if (await credentialStore.hasCertificate(q, principalId, cert.thumbprintSha256))
        throw new LatchkeyError('Conflict', 'That certificate is already registered for this principal.');
      const row: CredentialRecord = {
        id: newGuid(),
        tenantId,
        principalId,
        kind: 'certificate',
        displayName: (input.displayName ?? cert.subject).slice(0, 120),
        hint: cert.thumbprintSha256.slice(0, 8),
        secretHash: null,
        thumbprintSha1: cert.thumbprintSha1,
        thumbprintSha256: cert.thumbprintSha256,
        certificatePem: cert.pem,
        startAt: cert.notBefore,
        endAt: cert.notAfter,
      };
      await credentialStore.insert(q, row, clock.now());
      return info(row);
    },
    async list(tenantId: string, principalId: string): Promise<CredentialInfo[]> {
      return (await credentialStore.list(db, tenantId, principalId)).map(info);
    },
    async delete(tenantId: string, principalId: string, keyId: string, q: Queryable = db): Promise<void> {
      if (!isGuid(keyId)) throw new LatchkeyError('NotFound', 'Credential not found.');
      if (!(await credentialStore.delete(q, tenantId, principalId, keyId.toLowerCase())))
        throw new LatchkeyError('NotFound', 'Credential not found.');
    },
    async deleteAll(tenantId: string, principalId: string, q: Queryable = db): Promise<void> {
      await credentialStore.deleteAllOf(q, tenantId, principalId);
    },
    /** True when `secret` matches one of the principal's current secrets (constant-time per candidate). */
    async verifySecret(principalId: string, secret: string): Promise<boolean> {
      const hashes = await credentialStore.currentSecretHashes(db, principalId, clock.now());
      let ok = false;
      for (const h of hashes) if (hasher.equals(secret, h)) ok = true;
      return ok;
    },
    /** The current certificate with that thumbprint (`x5t#S256` or legacy `x5t`), if registered for the principal. */
    async findCertificate(
      principalId: string,
      thumb: { sha256?: string; sha1?: string },
    ): Promise<string | undefined> {
      return credentialStore.findCurrentCertificate(db, principalId, thumb, clock.now());
    },
  };
}
export type Credentials = ReturnType<typeof createCredentials>;
