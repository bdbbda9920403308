import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import { generateSecret, type SecretHasher } from '../crypto/hashing.js';
import { LatchkeyError } from '../errors/index.js';
import type { CacheStats } from '../lib/cache-stats.js';
import { createChangeCache } from '../lib/change-cache.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { isGuid, newGuid } from '../lib/ids.js';
import { pemBlocks } from '../lib/pem.js';
import {
  type ClientCredential,
  type CredentialRecord,
  credentialStore,
} from '../storage/authority/credential-store.js';
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
  // Not the lazy regular expression: quadratic on BEGIN lines without an END (src/lib/pem.ts).
  const m = pemBlocks(pem).find((b) => b.label === 'CERTIFICATE' && b.body.length > 0);
  if (!m)
    throw new LatchkeyError('BadParameter', 'Expected a PEM certificate (-----BEGIN CERTIFICATE-----).');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m.text);
  } catch (e) {
    throw new LatchkeyError('BadParameter', 'The certificate could not be parsed.', { cause: e });
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa' && cert.publicKey.asymmetricKeyType !== 'ec') {
    throw new LatchkeyError('BadParameter', 'Only RSA and EC certificates are supported.');
  }
  return {
    pem: `${m.text}\n`,
    thumbprintSha1: createHash('sha1').update(cert.raw).digest('base64url'),
    thumbprintSha256: createHash('sha256').update(cert.raw).digest('base64url'),
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
    subject: cert.subject.replaceAll('\n', ', ').slice(0, 200),
  };
}

/** A credential that authenticated a client: whether it (or its principal) came from memory. */
export interface CredentialMatch {
  credentialId: string;
  cached: boolean;
}

export function createCredentials(deps: {
  db: Database;
  clock: Clock;
  hasher: SecretHasher;
  bus?: ChangeBus;
  stats?: CacheStats;
  /**
   * Whether other nodes may change the credentials (PostgreSQL): an answer from memory is then
   * confirmed by one read (`confirm`). Default: true on PostgreSQL.
   */
  shared?: boolean;
}) {
  const { db, clock, hasher, bus } = deps;
  const shared = deps.shared ?? db.dialect === 'postgres';
  const count = (principalId: string, q: Queryable) => credentialStore.countOf(q, principalId);
  // Client authentication's view of each principal's credentials (hashes, thumbprints, validity;
  // never a secret in clear, never a PEM), by principal id. Every change publishes `credential`
  // (and a deleted principal `principal`): this node drops the entry at once, the others when the
  // relay delivers it; entries are re-read after a second anyway. A credential that does not match
  // from memory is looked up again in the database before a refusal, so a credential added on
  // another node works at once; validity windows are checked against the clock on every use.
  const cache = createChangeCache<ClientCredential[]>({
    clock,
    inTransaction: () => db.current() !== undefined,
    max: 5_000,
    maxAgeMs: 1_000,
    ...(deps.stats ? { stats: deps.stats } : {}),
  });
  bus?.subscribe('credential', (id) => cache.drop(id.toLowerCase()));
  bus?.subscribe('principal', (id) => cache.drop(id.toLowerCase()));
  bus?.onResync(() => cache.clear());
  /** After a change to a principal's credentials: drop them here and on every other node. */
  const changed = (principalId: string) => {
    const key = principalId.toLowerCase();
    cache.drop(key);
    bus?.publish('credential', key);
  };
  /** The principal's credentials, from memory unless `fresh`; the first match of `pick`. */
  const match = async (
    principalId: string,
    fresh: boolean,
    pick: (c: ClientCredential, now: number) => boolean,
  ): Promise<CredentialMatch | undefined> => {
    const key = principalId.toLowerCase();
    const hit = fresh ? undefined : cache.get(key);
    if (hit) {
      const now = clock.now();
      const c = hit.find((c) => pick(c, now));
      if (c) return { credentialId: c.id, cached: true };
    }
    const mark = cache.mark();
    const list = await credentialStore.clientCredentials(db, key);
    cache.put(key, list, mark);
    const now = clock.now();
    const c = list.find((c) => pick(c, now));
    return c && { credentialId: c.id, cached: false };
  };
  const current = (c: ClientCredential, now: number) => c.startAt <= now && c.endAt > now;

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
      changed(principalId);
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
      changed(principalId);
      return info(row);
    },
    async list(tenantId: string, principalId: string): Promise<CredentialInfo[]> {
      return (await credentialStore.list(db, tenantId, principalId)).map(info);
    },
    async delete(tenantId: string, principalId: string, keyId: string, q: Queryable = db): Promise<void> {
      if (!isGuid(keyId)) throw new LatchkeyError('NotFound', 'Credential not found.');
      const removed = await credentialStore.delete(q, tenantId, principalId, keyId.toLowerCase());
      changed(principalId);
      if (!removed) throw new LatchkeyError('NotFound', 'Credential not found.');
    },
    async deleteAll(tenantId: string, principalId: string, q: Queryable = db): Promise<void> {
      await credentialStore.deleteAllOf(q, tenantId, principalId);
      changed(principalId);
    },
    /** Call after changing a principal's credentials other than through this service (host certificates). */
    changed,
    /**
     * The principal's current client secret that `secret` is, if any (its HMAC compared in
     * constant time with each candidate's); `fresh` skips the cache.
     */
    async matchSecret(
      principalId: string,
      secret: string,
      fresh = false,
    ): Promise<CredentialMatch | undefined> {
      const hash = hasher.hash(secret);
      return match(
        principalId,
        fresh,
        (c, now) =>
          c.kind === 'secret' &&
          c.secretHash !== null &&
          current(c, now) &&
          c.secretHash.length === hash.length &&
          timingSafeEqual(c.secretHash, hash),
      );
    },
    /**
     * The principal's current certificate with that thumbprint (`x5t#S256`, else legacy `x5t`),
     * if registered; `fresh` skips the cache. Its PEM: `certificatePem`.
     */
    async findCertificate(
      principalId: string,
      thumb: { sha256?: string; sha1?: string },
      fresh = false,
    ): Promise<CredentialMatch | undefined> {
      if (thumb.sha256 === undefined && thumb.sha1 === undefined) return undefined;
      return match(
        principalId,
        fresh,
        (c, now) =>
          c.kind === 'certificate' &&
          current(c, now) &&
          (thumb.sha256 !== undefined
            ? c.thumbprintSha256 === thumb.sha256
            : c.thumbprintSha1 === thumb.sha1),
      );
    },
    /** The PEM of a certificate credential (never changes for a credential id). */
    async certificatePem(principalId: string, credentialId: string): Promise<string | undefined> {
      return credentialStore.certificatePem(db, principalId.toLowerCase(), credentialId);
    },
    /**
     * True unless an answer from memory may be stale: with other nodes sharing the database
     * (PostgreSQL), one read confirms the principal is still enabled and the credential (if given)
     * still registered and current, so a revocation on any node counts on the very next request
     * everywhere, without waiting for its notification.
     */
    async confirm(principalId: string, credentialId?: string): Promise<boolean> {
      if (!shared) return true;
      return credentialStore.stillValid(db, principalId.toLowerCase(), credentialId, clock.now());
    },
    /** Drops this node's cached credentials of a principal (a confirmation failed). */
    forget(principalId: string): void {
      cache.drop(principalId.toLowerCase());
    },
  };
}
export type Credentials = ReturnType<typeof createCredentials>;
