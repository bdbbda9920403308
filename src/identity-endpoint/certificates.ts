import { createHash, createPrivateKey, type KeyObject, webcrypto } from 'node:crypto';
import { signClientAssertion } from '../lib/client-assertion.js';

/** @peculiar/x509, loaded when a certificate is first made (not at start-up: it is slow to load). */
async function loadX509() {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  return x509;
}

/** A key pair and its self-signed certificate, as the endpoint keeps it (PEM, private key never leaves the host). */
export interface KeyCertificate {
  keyPem: string;
  certPem: string;
  /** base64url SHA-256 of the certificate's DER (`x5t#S256`). */
  x5tS256: string;
  notBefore: number;
  notAfter: number;
}

const RSA = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
} as const;
/** Clock skew the certificate tolerates at its start (the authority checks notBefore). */
const SKEW_MS = 5 * 60_000;

const pem = (label: string, der: Buffer) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;

/** A fresh RSA-2048 key and a self-signed certificate valid from now (minus skew) for `lifetimeMs`. */
export async function generateKeyCertificate(subject: string, lifetimeMs: number, now = Date.now()) {
  const x509 = await loadX509();
  const keys = (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const notBefore = Math.floor((now - SKEW_MS) / 1000) * 1000;
  const notAfter = Math.floor((now + lifetimeMs) / 1000) * 1000;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `01${Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString('hex')}`,
    name: `CN=${subject.replace(/[,=+<>#;"\\]/g, '_').slice(0, 60)}`,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    signingAlgorithm: RSA,
    keys,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  const der = Buffer.from(cert.rawData);
  const out: KeyCertificate = {
    keyPem: pem('PRIVATE KEY', Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))),
    certPem: pem('CERTIFICATE', der),
    x5tS256: createHash('sha256').update(der).digest('base64url'),
    notBefore,
    notAfter,
  };
  return out;
}

const keyCache = new WeakMap<KeyCertificate, KeyObject>();

/** The host's client assertion (RFC 7523, PS256: its keys are RSA), signed by lib/client-assertion.ts. */
export async function signHostAssertion(
  cred: KeyCertificate,
  clientId: string,
  tokenUrl: string,
  now = Date.now(),
): Promise<string> {
  let key = keyCache.get(cred);
  if (!key) {
    key = createPrivateKey(cred.keyPem);
    keyCache.set(cred, key);
  }
  return signClientAssertion({ key, alg: 'PS256', x5tS256: cred.x5tS256 }, clientId, tokenUrl, now);
}
