import { X509Certificate as NodeX509 } from 'node:crypto';
import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database, Queryable } from '../storage/port.js';
import {
  type CertificateAuthorityRecord,
  type IssuancePlace,
  certificateAuthorityStore as store,
} from '../storage/vault/certificate-authority-store.js';
import type { CertificatePolicy } from './certificate-policy.js';
import { addMonths, loadX509, policyExtensions, serial, signingKeys, subjectOf } from './certificate-x509.js';
import { generateMaterial, type PrivateJwk } from './key-material.js';

/** How long a tenant's CA certificate is valid (its leaves never outlive it). */
const CA_YEARS = 20;
/** A CRL is made again after this long (or at once after a revocation)… */
export const CRL_REFRESH_MS = 3_600_000;
/** …and says the next one comes within this long (`nextUpdate`). */
export const CRL_VALIDITY_MS = 86_400_000;
/** The CRL Number extension (RFC 5280 §5.2.3); @peculiar/x509 has no class for it. */
const CRL_NUMBER_OID = '2.5.29.20';

/** Why a certificate is revoked (RFC 5280 CRLReason names, as @peculiar/x509's `X509CrlReason`). */
export type RevocationReason = 'unspecified' | 'keyCompromise' | 'superseded' | 'cessationOfOperation';

/** A certificate's notAfter in ms (node 20's X509Certificate has only the text form). */
const expiryOf = (x: NodeX509) => new Date(x.validTo).getTime();
/** A certificate's serial as the CRL and the issuance records key it (hex, lower case). */
const serialOf = (x: NodeX509) => x.serialNumber.toLowerCase();

/** A certificate the tenant CA signed: to be recorded with the version it goes into (`recordIssuance`). */
export interface Issuance {
  generation: number;
  serial: string;
}

/** A certificate (DER) to revoke; `at`, the version a purge removes it from (absent for the explicit revoke). */
export interface RevocationCandidate {
  der: Buffer;
  at?: IssuancePlace;
}

/** PEM of a DER certificate. */
export const certificatePem = (der: Buffer) =>
  `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;

/** One generation of a tenant's CA, as `latchkey ca show` lists it. */
export interface CaGeneration {
  generation: number;
  current: boolean;
  subject: string;
  notBefore: string;
  notAfter: string;
  sha256: string;
  created: string;
  retired: string | null;
  /** Until when it stays in the published bundle (the latest expiry of what it signed). */
  publishedUntil: string;
  /** Its CRL, path below the server's base URL. */
  crlPath: string;
}

/**
 * Each tenant's own certificate authority (issuer `Latchkey`), as a series of generations: the
 * highest signs, the older ones stay published until the certificates they signed expire. A
 * generation is an EC P-384 key sealed under the installation's data key (AAD
 * `certificate-ca|{tenant}`, `|{generation}` from the second on; never served, never exported)
 * and a self-signed CA certificate (`CN=Latchkey CA {tenant}[ G{n}], O=Latchkey`, basic
 * constraints CA, keyCertSign and cRLSign). Certificates with issuer `Latchkey` are signed by
 * the current generation at creation: the policy's subject, SANs, key usages and EKUs, its
 * validity (never past the CA's), an authority key identifier, basic constraints `CA:FALSE`,
 * and a CRL distribution point (`{base}/{tenant}/pki/crl/{generation}`). Where it issued each
 * certificate (vault, name, version) is recorded with the version; a certificate it signed is
 * revoked when that version is purged; each generation signs its CRL (on demand, kept an hour).
 * The published chain is `GET /{tenant}/pki/ca.pem`.
 */
export function createCertificateAuthority(deps: {
  db: Database;
  clock: Clock;
  sealer: Sealer;
  /** The server's public base URL (`https://host[:port]`), for the CRL distribution point. */
  publicBase?: () => string;
}) {
  const { db, clock, sealer } = deps;
  const aad = (tenantId: string, generation: number) =>
    generation === 1 ? `certificate-ca|${tenantId}` : `certificate-ca|${tenantId}|${generation}`;
  const crlPath = (tenantId: string, generation: number) => `/${tenantId}/pki/crl/${generation}`;
  const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;

  const make = async (tenantId: string, generation: number): Promise<CertificateAuthorityRecord> => {
    const x509 = await loadX509();
    const material = await generateMaterial({ kty: 'EC', curve: 'P-384' });
    const { alg, keys } = await signingKeys(material.privateJwk);
    const start = seconds(clock.now());
    // Each generation its own name, so that a client picks a generation's CRL by its issuer.
    const name = `CN=Latchkey CA ${tenantId}${generation === 1 ? '' : ` G${generation}`}, O=Latchkey`;
    // duplicate-ok: a CA certificate's three extensions are the X.509 definition of a CA, as in the dev TLS CA (tls/dev-ca.ts); keys, names, lifetimes and storage differ
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name,
      notBefore: new Date(start),
      notAfter: new Date(addMonths(start, CA_YEARS * 12)),
      signingAlgorithm: alg,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return {
      tenantId,
      generation,
      cer: Buffer.from(cert.rawData),
      sealedKey: sealer.seal(JSON.stringify(material.privateJwk), aad(tenantId, generation)),
      created: clock.now(),
      retired: null,
      issuedUntil: start,
      crlNumber: 0,
      crl: null,
      crlThisUpdate: null,
    };
  };

  /** The tenant's current CA, its first generation made on first use (two nodes racing keep the first stored). */
  const ensure = async (tenantId: string): Promise<CertificateAuthorityRecord> => {
    const found = await store.current(db, tenantId);
    if (found) return found;
    await store.insertIfAbsent(db, await make(tenantId, 1));
    const stored = await store.current(db, tenantId);
    if (!stored) throw new LatchkeyError('InternalError', 'The tenant CA could not be stored.');
    return stored;
  };

  const caKeyOf = (ca: CertificateAuthorityRecord) =>
    signingKeys(
      JSON.parse(sealer.open(ca.sealedKey, aad(ca.tenantId, ca.generation)).toString('utf8')) as PrivateJwk,
    );

  /** Until when a generation is published: the current always; an older one until what it signed expires. */
  const publishedUntil = (ca: CertificateAuthorityRecord) =>
    Math.min(ca.issuedUntil, expiryOf(new NodeX509(ca.cer)));

  /** Whether the generation's stored CRL may be served as it is (made less than an hour ago). */
  const fresh = (
    ca: CertificateAuthorityRecord,
    now: number,
  ): ca is CertificateAuthorityRecord & { crl: Buffer } =>
    ca.crl !== null &&
    ca.crlThisUpdate !== null &&
    now - ca.crlThisUpdate < CRL_REFRESH_MS &&
    now >= ca.crlThisUpdate;

  /** A new CRL of the generation, numbered after `ca.crlNumber`, from the revocations stored now. */
  const makeCrl = async (ca: CertificateAuthorityRecord, now: number) => {
    const x509 = await loadX509();
    const asn1js = await import('asn1js');
    const caCert = new x509.X509Certificate(ca.cer);
    const signer = await caKeyOf(ca);
    const thisUpdate = seconds(now);
    const number = ca.crlNumber + 1;
    const revoked = await store.revoked(db, ca.tenantId, ca.generation, now);
    const crl = await x509.X509CrlGenerator.create({
      issuer: caCert.subjectName,
      thisUpdate: new Date(thisUpdate),
      nextUpdate: new Date(thisUpdate + CRL_VALIDITY_MS),
      signingAlgorithm: signer.alg,
      signingKey: signer.keys.privateKey,
      entries: revoked.map((r) => ({
        serialNumber: r.serial,
        revocationDate: new Date(r.revoked),
        reason: x509.X509CrlReason[r.reason as RevocationReason],
      })),
      extensions: [
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
        new x509.Extension(CRL_NUMBER_OID, false, new asn1js.Integer({ value: number }).toBER(false)),
      ],
    });
    return { der: Buffer.from(crl.rawData), number, thisUpdate };
  };

  /**
   * The generation's CRL (DER): the stored one while fresh, else a new one with the next number.
   * A CRL is stored only if its number is still the next one: another node stored one first, or
   * a revocation came in while it was made (a revocation takes a number, certificate-authority-store.ts),
   * and then what is stored now is read again, and made again if stale. One CRL is made at a time
   * per generation on this node: concurrent requests for a stale CRL (anonymous ones included)
   * wait for it rather than each signing one.
   */
  const making = new Map<string, Promise<Buffer>>();
  const crlOf = (ca: CertificateAuthorityRecord): Promise<Buffer> => {
    const now = clock.now();
    if (fresh(ca, now)) return Promise.resolve(ca.crl);
    const key = `${ca.tenantId}|${ca.generation}`;
    const pending = making.get(key);
    if (pending) return pending;
    const p = (async () => {
      let cur = ca;
      for (let attempt = 0; attempt < 5; attempt++) {
        const made = await makeCrl(cur, clock.now());
        if (await store.putCrl(db, cur.tenantId, cur.generation, made)) return made.der;
        const stored = await store.find(db, cur.tenantId, cur.generation);
        if (!stored) break;
        if (fresh(stored, clock.now())) return stored.crl;
        cur = stored;
      }
      throw new LatchkeyError(
        'ServiceUnavailable',
        "The CA's revocation list is changing; try again shortly.",
        { headers: { 'retry-after': '1' } },
      );
    })().finally(() => making.delete(key));
    making.set(key, p);
    return p;
  };

  /** Every generation of the tenant's CA, the newest first (`latchkey ca show`). */
  const generations = async (tenantId: string): Promise<CaGeneration[]> => {
    const all = await store.all(db, tenantId);
    const iso = (ms: number) => new Date(ms).toISOString();
    return all.map((ca, i) => {
      const x = new NodeX509(ca.cer);
      return {
        generation: ca.generation,
        current: i === 0,
        subject: x.subject.replace(/\n/g, ', '),
        notBefore: new Date(x.validFrom).toISOString(),
        notAfter: new Date(x.validTo).toISOString(),
        sha256: x.fingerprint256,
        created: iso(ca.created),
        retired: ca.retired === null ? null : iso(ca.retired),
        publishedUntil: iso(i === 0 ? expiryOf(x) : publishedUntil(ca)),
        crlPath: crlPath(tenantId, ca.generation),
      };
    });
  };

  return {
    generations,

    /**
     * A certificate for `publicJwk` signed by the tenant's current CA, as the policy asks;
     * returns the leaf and the chain after it (the CA certificate), DER, and its issuance, to be
     * recorded with the version it is stored as (`recordIssuance`).
     */
    async issue(
      tenantId: string,
      policy: CertificatePolicy,
      keyPair: PrivateJwk,
    ): Promise<{ der: Buffer; chain: Buffer[]; issuance: Issuance }> {
      const ca = await ensure(tenantId);
      const x509 = await loadX509();
      const caCert = new x509.X509Certificate(ca.cer);
      const signer = await caKeyOf(ca);
      const subject = await signingKeys(keyPair);
      const start = seconds(clock.now());
      const notAfter = Math.min(
        addMonths(start, policy.x509_props.validity_months),
        caCert.notAfter.getTime(),
      );
      const base = deps.publicBase?.();
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: subjectOf(x509, policy.x509_props.subject),
        issuer: caCert.subjectName,
        notBefore: new Date(start),
        notAfter: new Date(notAfter),
        signingAlgorithm: signer.alg,
        publicKey: subject.keys.publicKey,
        signingKey: signer.keys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          ...policyExtensions(x509, policy),
          await x509.SubjectKeyIdentifierExtension.create(subject.keys.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
          ...(base
            ? [new x509.CRLDistributionPointsExtension([`${base}${crlPath(tenantId, ca.generation)}`])]
            : []),
        ],
      });
      // The generation stays published until this certificate expires (also if the write that
      // follows fails: publishing a CA a while longer is harmless).
      await store.issuedUntil(db, tenantId, ca.generation, notAfter);
      const der = Buffer.from(cert.rawData);
      return {
        der,
        chain: [ca.cer],
        issuance: { generation: ca.generation, serial: serialOf(new NodeX509(der)) },
      };
    },

    /**
     * The published chain (PEM): the current CA, then every older generation while a
     * certificate it signed is unexpired; undefined before the tenant's first CA.
     */
    async chainPem(tenantId: string): Promise<string | undefined> {
      const all = await store.all(db, tenantId);
      if (!all.length) return undefined;
      const now = clock.now();
      return all
        .filter((ca, i) => i === 0 || publishedUntil(ca) > now)
        .map((ca) => certificatePem(ca.cer))
        .join('');
    },

    /**
     * A generation's CRL (DER), or the current one's when `generation` is undefined; undefined
     * when there is no such generation.
     */
    async crl(tenantId: string, generation?: number): Promise<Buffer | undefined> {
      const ca =
        generation === undefined
          ? await store.current(db, tenantId)
          : await store.find(db, tenantId, generation);
      return ca && crlOf(ca);
    },

    /** The CRLs (DER) of every published generation, the newest first (for `crl.pem`). */
    async publishedCrls(tenantId: string): Promise<Buffer[]> {
      const now = clock.now();
      const all = (await store.all(db, tenantId)).filter((ca, i) => i === 0 || publishedUntil(ca) > now);
      const out: Buffer[] = [];
      for (const ca of all) out.push(await crlOf(ca));
      return out;
    },

    /**
     * A new generation: a new key and CA certificate sign from now on; the previous generation is
     * retired (still published while what it signed is valid, its CRL still served). A tenant
     * without a CA gets its first. Two rotations at once: one wins, the other is 409.
     */
    async rotate(tenantId: string): Promise<CaGeneration> {
      const cur = await store.current(db, tenantId);
      const next = await make(tenantId, (cur?.generation ?? 0) + 1);
      await db.transaction(async (tx) => {
        if (!(await store.insertIfAbsent(tx, next)))
          throw new LatchkeyError(
            'Conflict',
            "The tenant's CA was rotated at the same time; show it and try again.",
          );
        if (cur) await store.retire(tx, tenantId, cur.generation, next.created);
      });
      const shown = (await generations(tenantId)).find((g) => g.generation === next.generation);
      if (!shown) throw new LatchkeyError('InternalError', 'The new CA generation could not be read back.');
      return shown;
    },

    /**
     * Revokes the given certificates (DER) that one of the tenant's CA generations signed, in the
     * caller's transaction (see {@link revokeIssuedCertificates}).
     */
    revokeIssued: (
      q: Queryable,
      tenantId: string,
      certificates: readonly RevocationCandidate[],
      reason: RevocationReason,
    ) => revokeIssuedCertificates(q, clock.now(), tenantId, certificates, reason),
  };
}
export type CertificateAuthority = ReturnType<typeof createCertificateAuthority>;

/**
 * Revokes the given certificates (DER) that one of the tenant's CA generations signed (checked
 * by issuer name and signature; others, and expired ones, are ignored), in the caller's
 * transaction; each goes into the CRL of the generation that signed it (a certificate already
 * revoked keeps its first date and reason). Returns how many were the CA's and unexpired, and
 * how many of those were newly revoked. A certificate's purge, its vault's purge and the
 * explicit revoke call it.
 *
 * A purge (`at` given) revokes a certificate only from the version it was issued into (its
 * issuance record, migration 0021), whatever copies exist: purging a copy imported or restored
 * into another vault or name revokes nothing, and purging the original revokes it even while
 * copies are held elsewhere, so a copy never keeps a certificate valid past its owner's purge
 * (certificates.ca-attack). A certificate issued before 0021 has no record: any purge of it
 * revokes. The explicit revoke (`at` absent) revokes whichever copy is shown.
 */
export async function revokeIssuedCertificates(
  q: Queryable,
  now: number,
  tenantId: string,
  certificates: readonly RevocationCandidate[],
  reason: RevocationReason,
): Promise<{ ours: number; revoked: number }> {
  const none = { ours: 0, revoked: 0 };
  if (!certificates.length) return none;
  const cas = (await store.all(q, tenantId)).map((ca) => ({ ca, x: new NodeX509(ca.cer) }));
  if (!cas.length) return none;
  let ours = 0;
  let n = 0;
  for (const { der, at } of certificates) {
    let leaf: NodeX509;
    try {
      leaf = new NodeX509(der);
    } catch {
      continue; // not a certificate (never stored so): nothing to revoke
    }
    const by = cas.find(({ x }) => leaf.checkIssued(x) && leaf.verify(x.publicKey));
    const notAfter = expiryOf(leaf);
    if (!by || notAfter <= now) continue; // not the tenant CA's, or expired: no CRL needs it
    ours++;
    const serial = serialOf(leaf);
    if (at) {
      const issued = await store.issuance(q, tenantId, by.ca.generation, serial);
      if (issued && !samePlace(issued, at)) continue; // a copy: only the original's purge revokes
    }
    const revoked = await store.revoke(q, tenantId, by.ca.generation, {
      serial,
      notAfter,
      revoked: Math.floor(now / 1000) * 1000,
      reason,
    });
    if (revoked) n++;
  }
  return { ours, revoked: n };
}

const samePlace = (a: IssuancePlace, b: IssuancePlace) =>
  a.vaultId === b.vaultId && a.nameLower === b.nameLower && a.version === b.version;

/** Records where the tenant CA issued a certificate: the version it is stored as, in its transaction. */
export const recordIssuance = (
  q: Queryable,
  tenantId: string,
  issuance: Issuance,
  at: IssuancePlace,
): Promise<void> => store.recordIssuance(q, tenantId, issuance.generation, issuance.serial, at);
