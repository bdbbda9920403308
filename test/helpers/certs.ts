import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const DAY = 86_400_000;

export interface TestCertificate {
  /** The public certificate, PEM. */
  certPem: string;
  /** The private key, PKCS#8 PEM. */
  keyPem: string;
  /** Private key + certificate in one PEM (what ClientCertificateCredential's `certificate` takes). */
  combinedPem: string;
  /** DER of the certificate. */
  der: Buffer;
  /** base64url SHA-256 of the DER (`x5t#S256`). */
  x5tS256: string;
  /** base64url SHA-1 of the DER (`x5t`). */
  x5t: string;
}

/** A self-signed RSA-2048 certificate for client authentication (valid from yesterday for `days`). */
export function selfSignedRsaCert(cn = 'latchkey-test-client', days = 30): Promise<TestCertificate> {
  return selfSigned(
    {
      name: 'RSASSA-PKCS1-v1_5',
      hash: 'SHA-256',
      publicExponent: new Uint8Array([1, 0, 1]),
      modulusLength: 2048,
    },
    cn,
    days,
  );
}

/** A self-signed P-256 certificate for client authentication (ES256 assertions, as the bench sends). */
export function selfSignedEcCert(cn = 'latchkey-test-client', days = 30): Promise<TestCertificate> {
  return selfSigned({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }, cn, days);
}

async function selfSigned(
  alg: webcrypto.RsaHashedKeyGenParams | (webcrypto.EcKeyGenParams & { hash: string }),
  cn: string,
  days: number,
): Promise<TestCertificate> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `01${Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex')}`,
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + days * DAY),
    signingAlgorithm: alg,
    keys,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  const certPem = `${cert.toString('pem')}\n`;
  const der = Buffer.from(cert.rawData);
  return {
    certPem,
    keyPem,
    combinedPem: `${keyPem}${certPem}`,
    der,
    x5tS256: createHash('sha256').update(der).digest('base64url'),
    x5t: createHash('sha1').update(der).digest('base64url'),
  };
}
