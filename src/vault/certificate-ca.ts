import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import {
  type CertificateAuthorityRecord,
  certificateAuthorityStore as store,
} from '../storage/vault/certificate-authority-store.js';
import type { CertificatePolicy } from './certificate-policy.js';
import { addMonths, loadX509, policyExtensions, serial, signingKeys, subjectOf } from './certificate-x509.js';
import { generateMaterial, type PrivateJwk } from './key-material.js';

/** How long a tenant's CA certificate is valid (its leaves never outlive it). */
const CA_YEARS = 20;

/** PEM of a DER certificate. */
export const certificatePem = (der: Buffer) =>
  `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;

/**
 * Each tenant's own certificate authority (issuer `Latchkey`): an EC P-384 key made on first use,
 * sealed under the installation's data key (AAD `certificate-ca|{tenant}`; never served, never
 * exported) and a self-signed CA certificate (`CN=Latchkey CA {tenant}`, basic constraints CA,
 * keyCertSign and cRLSign). Certificates with issuer `Latchkey` are signed by it at creation: the
 * policy's subject, SANs, key usages and EKUs, its validity (never past the CA's), an authority
 * key identifier, and basic constraints `CA:FALSE`. The CA certificate is public
 * (`GET /{tenant}/pki/ca.pem`).
 */
export function createCertificateAuthority(deps: { db: Database; clock: Clock; sealer: Sealer }) {
  const { db, clock, sealer } = deps;
  const aad = (tenantId: string) => `certificate-ca|${tenantId}`;

  const make = async (tenantId: string): Promise<CertificateAuthorityRecord> => {
    const x509 = await loadX509();
    const material = await generateMaterial({ kty: 'EC', curve: 'P-384' });
    const { alg, keys } = await signingKeys(material.privateJwk);
    const start = Math.floor(clock.now() / 1000) * 1000;
    // duplicate-ok: a CA certificate's three extensions are the X.509 definition of a CA, as in the dev TLS CA (tls/dev-ca.ts); keys, names, lifetimes and storage differ
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=Latchkey CA ${tenantId}, O=Latchkey`,
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
      cer: Buffer.from(cert.rawData),
      sealedKey: sealer.seal(JSON.stringify(material.privateJwk), aad(tenantId)),
      created: clock.now(),
    };
  };

  /** The tenant's CA, made and stored on first use (two nodes racing keep the first one stored). */
  const ensure = async (tenantId: string): Promise<CertificateAuthorityRecord> => {
    const found = await store.find(db, tenantId);
    if (found) return found;
    await store.insertIfAbsent(db, await make(tenantId));
    const stored = await store.find(db, tenantId);
    if (!stored) throw new LatchkeyError('InternalError', 'The tenant CA could not be stored.');
    return stored;
  };

  return {
    /**
     * A certificate for `publicJwk` signed by the tenant's CA, as the policy asks; returns the
     * leaf and the chain after it (the CA certificate), DER.
     */
    async issue(
      tenantId: string,
      policy: CertificatePolicy,
      keyPair: PrivateJwk,
    ): Promise<{ der: Buffer; chain: Buffer[] }> {
      const ca = await ensure(tenantId);
      const caKey = JSON.parse(sealer.open(ca.sealedKey, aad(tenantId)).toString('utf8')) as PrivateJwk;
      const x509 = await loadX509();
      const caCert = new x509.X509Certificate(ca.cer);
      const signer = await signingKeys(caKey);
      const subject = await signingKeys(keyPair);
      const start = Math.floor(clock.now() / 1000) * 1000;
      const notAfter = Math.min(
        addMonths(start, policy.x509_props.validity_months),
        caCert.notAfter.getTime(),
      );
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
        ],
      });
      return { der: Buffer.from(cert.rawData), chain: [ca.cer] };
    },

    /** The tenant's CA certificate (PEM), if it has issued anything yet. */
    async chainPem(tenantId: string): Promise<string | undefined> {
      const ca = await store.find(db, tenantId);
      return ca && certificatePem(ca.cer);
    },
  };
}
export type CertificateAuthority = ReturnType<typeof createCertificateAuthority>;
