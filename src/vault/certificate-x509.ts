import {
  createHash,
  createPrivateKey,
  type KeyObject,
  randomBytes,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import type * as Asn1js from 'asn1js';
import type * as Pkijs from 'pkijs';
import { LatchkeyError } from '../errors/index.js';
import { pemBlocks } from '../lib/pem.js';
import { kdfBudget, parsePfx, pbes2Iterations, strictly } from './certificate-pfx-checks.js';
import type { CertificatePolicy, KeyUsage } from './certificate-policy.js';
import { PEM, type SecretContentType } from './certificate-policy.js';
import type { PrivateJwk } from './key-material.js';

/**
 * X.509 and PKCS#12 for certificates: issuing a self-signed certificate from a policy
 * (@peculiar/x509), the certificate's secret as PEM or PFX, and reading an imported PFX
 * (with or without a password) or PEM (pkijs, node:crypto). No ASN.1 is written by hand.
 */

const bad = (message: string, cause?: unknown) =>
  new LatchkeyError('BadParameter', message, cause === undefined ? {} : { cause });

/** @peculiar/x509, loaded on first use (as src/tls/dev-ca.ts does). */
export async function loadX509() {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  return x509;
}
type X509 = Awaited<ReturnType<typeof loadX509>>;

/**
 * pkijs and asn1js (PKCS#12), loaded on first use: about 50 modules that only a PFX secret or
 * a PFX import needs, kept off the server's start (docs/performance.md, cold start).
 */
export async function loadPkcs12(): Promise<{ asn1js: typeof Asn1js; pkijs: typeof Pkijs }> {
  const [asn1js, pkijs] = await Promise.all([import('asn1js'), import('pkijs')]);
  return { asn1js, pkijs };
}
type GeneratorKeys = Parameters<X509['X509CertificateGenerator']['createSelfSigned']>[0]['keys'];

const HASH_FOR_CURVE: Record<string, string> = { 'P-256': 'SHA-256', 'P-384': 'SHA-384', 'P-521': 'SHA-512' };

/** Adds whole calendar months (UTC), clamping to the month's last day. */
export function addMonths(ms: number, months: number): number {
  const d = new Date(ms);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d.getTime();
}

/** A positive 16-byte serial number (hex). */
export const serial = () => {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
};

/**
 * The signing algorithm for a key (RSA: SHA-256 PKCS#1 v1.5; EC: the curve's hash) and the key
 * as WebCrypto keys (private: sign only, not extractable; public: verify).
 */
export async function signingKeys(privateJwk: PrivateJwk) {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = privateJwk;
  const alg =
    privateJwk.kty === 'RSA'
      ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
      : { name: 'ECDSA', namedCurve: privateJwk.crv!, hash: HASH_FOR_CURVE[privateJwk.crv!]! };
  const keys = {
    privateKey: await webcrypto.subtle.importKey('jwk', privateJwk, alg, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('jwk', pub, alg, true, ['verify']),
  };
  return { alg, keys: keys as unknown as GeneratorKeys };
}

/** The policy's subject as an X.500 name; a 400 naming the field when it does not parse. */
export function subjectOf(x509: X509, subject: string) {
  try {
    return new x509.Name(subject);
  } catch (e) {
    throw bad("x509_props.subject is not a valid X.500 name (e.g. 'CN=example.com, O=Contoso').", e);
  }
}

/** The extensions a policy asks for: key usage (critical), EKUs, SANs (DNS, email, UPN). */
export function policyExtensions(x509: X509, policy: CertificatePolicy) {
  const x = policy.x509_props;
  const usageFlags = x.key_usage.reduce((f, u: KeyUsage) => f | x509.KeyUsageFlags[u], 0);
  const names = [
    ...(x.sans?.dns_names ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(x.sans?.emails ?? []).map((value) => ({ type: 'email' as const, value })),
    ...(x.sans?.upns ?? []).map((value) => ({ type: 'upn' as const, value })),
  ];
  return [
    ...(usageFlags ? [new x509.KeyUsagesExtension(usageFlags, true)] : []),
    ...(x.ekus.length ? [new x509.ExtendedKeyUsageExtension(x.ekus, false)] : []),
    ...(names.length ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
  ];
}

/**
 * A self-signed certificate for the key `privateJwk` as the policy asks: subject, SANs
 * (DNS, email, UPN), key usages, EKUs, validity in months from `now` (whole seconds).
 * RSA certificates are signed with SHA-256 (PKCS#1 v1.5), EC ones with the curve's hash.
 */
export async function issueSelfSigned(
  policy: CertificatePolicy,
  privateJwk: PrivateJwk,
  now: number,
): Promise<Buffer> {
  const x509 = await loadX509();
  const { alg, keys } = await signingKeys(privateJwk);
  const name = subjectOf(x509, policy.x509_props.subject);
  const start = Math.floor(now / 1000) * 1000;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore: new Date(start),
    notAfter: new Date(addMonths(start, policy.x509_props.validity_months)),
    signingAlgorithm: alg,
    keys,
    extensions: [
      ...policyExtensions(x509, policy),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return Buffer.from(cert.rawData);
}

/** Base64url SHA-1 thumbprint, as Key Vault's `x5t`. */
export const thumbprint = (der: Buffer): string => createHash('sha1').update(der).digest('base64url');

/** The validity window of a certificate (epoch ms). */
export function validityOf(der: Buffer): { nbf: number; exp: number } {
  const c = new X509Certificate(der);
  return { nbf: Date.parse(c.validFrom), exp: Date.parse(c.validTo) };
}

const pemBlock = (label: string, der: Buffer) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;

const ID_DATA = '1.2.840.113549.1.7.1';
const KEY_BAG = '1.2.840.113549.1.12.10.1.1';
const SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const X509_CERT = '1.2.840.113549.1.9.22.1';
const LOCAL_KEY_ID = '1.2.840.113549.1.9.21';

const dataInfo = ({ asn1js, pkijs }: Awaited<ReturnType<typeof loadPkcs12>>, der: ArrayBuffer) =>
  new pkijs.ContentInfo({ contentType: ID_DATA, content: new asn1js.OctetString({ valueHex: der }) });

/**
 * The certificate's secret value as Key Vault serves it: PEM (private key, PKCS#8, then the
 * certificate) or PFX, base64, without a password (as Azure's), key and certificate in clear bags
 * paired by `localKeyId`. `pkcs8` absent (non-exportable key): the certificate alone.
 */
export async function secretValue(
  contentType: SecretContentType,
  der: Buffer,
  pkcs8?: Buffer,
  chain: readonly Buffer[] = [],
): Promise<string> {
  if (contentType === PEM)
    return `${pkcs8 ? pemBlock('PRIVATE KEY', pkcs8) : ''}${[der, ...chain].map((c) => pemBlock('CERTIFICATE', c)).join('')}`;
  const lib = await loadPkcs12();
  const { asn1js, pkijs } = lib;
  const toAb = (b: Buffer) => new Uint8Array(b).buffer;
  const localKeyId = () =>
    new pkijs.Attribute({
      type: LOCAL_KEY_ID,
      values: [new asn1js.OctetString({ valueHex: toAb(createHash('sha1').update(der).digest()) })],
    });
  const bags = [
    ...(pkcs8
      ? [
          new pkijs.SafeBag({
            bagId: KEY_BAG,
            bagValue: pkijs.PrivateKeyInfo.fromBER(toAb(pkcs8)),
            bagAttributes: [localKeyId()],
          }),
        ]
      : []),
    ...[der, ...chain].map(
      (c, i) =>
        new pkijs.SafeBag({
          bagId: CERT_BAG,
          bagValue: new pkijs.CertBag({
            certId: X509_CERT,
            certValue: new asn1js.OctetString({ valueHex: toAb(c) }),
          }),
          ...(i === 0 ? { bagAttributes: [localKeyId()] } : {}),
        }),
    ),
  ];
  const contents = new pkijs.SafeContents({ safeBags: bags });
  const safe = new pkijs.AuthenticatedSafe({
    safeContents: [dataInfo(lib, contents.toSchema().toBER(false))],
  });
  const pfx = new pkijs.PFX({ authSafe: dataInfo(lib, safe.toSchema().toBER(false)) });
  return Buffer.from(pfx.toSchema().toBER(false)).toString('base64');
}

/** PKCS#8 DER of a private JWK. */
export const pkcs8Of = (p: PrivateJwk): Buffer =>
  createPrivateKey({ key: { ...p }, format: 'jwk' }).export({ type: 'pkcs8', format: 'der' });

/** What an import brings: the leaf certificate (DER), the chain after it, its private key. */
export interface ImportedCertificate {
  der: Buffer;
  chain: Buffer[];
  key: KeyObject;
}

/** A PEM import: certificates (leaf first) and one private key (PKCS#8, PKCS#1 or SEC1; never encrypted). */
function readPem(text: string): ImportedCertificate {
  const certs: Buffer[] = [];
  let key: KeyObject | undefined;
  for (const block of pemBlocks(text)) {
    const { label } = block;
    if (label === 'CERTIFICATE') certs.push(Buffer.from(block.body.replace(/\s/g, ''), 'base64'));
    else if (label === 'ENCRYPTED PRIVATE KEY')
      throw bad(
        'An encrypted PEM private key cannot be imported: import it unencrypted, or as a PFX with a password.',
      );
    else if (/PRIVATE KEY$/.test(label)) {
      if (key) throw bad('The PEM holds more than one private key.');
      try {
        key = createPrivateKey(block.text);
      } catch (e) {
        throw bad('The PEM private key could not be read.', e);
      }
    }
  }
  if (!key) throw bad('The PEM holds no private key: import the certificate with its private key.');
  const leaf = leafFor(certs, key);
  return { der: leaf, chain: certs.filter((c) => c !== leaf), key };
}

/** The certificate that belongs to the key (the leaf), checked. */
function leafFor(certs: Buffer[], key: KeyObject): Buffer {
  if (certs.length === 0) throw bad('The certificate to import holds no X.509 certificate.');
  if (certs.length > 10) throw bad('The certificate to import holds more than 10 certificates.');
  for (const der of certs) {
    let c: X509Certificate;
    try {
      c = new X509Certificate(der);
    } catch (e) {
      throw bad('A certificate in the import could not be read.', e);
    }
    if (c.checkPrivateKey(key)) return der;
  }
  throw bad('The private key does not belong to any certificate in the import.');
}

/**
 * A PFX import: its shape and the key-derivation work it asks for checked (certificate-pfx-checks),
 * then its MAC checked with `password` (empty when absent), its safe contents decrypted, the key
 * and its certificate found.
 */
async function readPfx(der: Buffer, password: string): Promise<ImportedCertificate> {
  const pwd = new Uint8Array(Buffer.from(password, 'utf8')).buffer;
  const lib = await loadPkcs12();
  const { pkijs } = lib;
  const kdf = kdfBudget();
  const { pfx, safes } = parsePfx(lib, new Uint8Array(der).buffer, kdf);
  if (pfx.macData) {
    try {
      await pfx.parseInternalValues({ password: pwd, checkIntegrity: true });
    } catch (e) {
      throw bad('The PFX could not be read: it is malformed, or the password is wrong.', e);
    }
  }
  const certs: Buffer[] = [];
  let pkcs8: ArrayBuffer | undefined;
  try {
    for (const [i, safe] of safes.entries()) {
      const contents =
        'contents' in safe
          ? safe.contents
          : strictly(
              lib,
              pkijs.SafeContents,
              await safe.encrypted.decrypt({ password: pwd }),
              `its safe contents #${i + 1}`,
            );
      for (const bag of contents.safeBags) {
        if (bag.bagId === CERT_BAG) {
          const cb = bag.bagValue as Pkijs.CertBag;
          if (cb.certId === X509_CERT)
            certs.push(Buffer.from((cb.certValue as Asn1js.OctetString).getValue()));
        } else if (bag.bagId === KEY_BAG || bag.bagId === SHROUDED_KEY_BAG) {
          if (pkcs8) throw bad('The PFX holds more than one private key.');
          if (bag.bagId === SHROUDED_KEY_BAG) {
            // pkijs declares the decryption step protected, but it is the documented way to open
            // a shrouded key bag (pkijs' own PKCS#12 examples call it).
            const shrouded = bag.bagValue as unknown as Pkijs.PKCS8ShroudedKeyBag & {
              parseInternalValues(p: { password: ArrayBuffer }): Promise<void>;
            };
            // Checked just before its derivation: inside an EncryptedData it was unseen until now.
            kdf.spend(pbes2Iterations(pkijs, shrouded.encryptionAlgorithm));
            await shrouded.parseInternalValues({ password: pwd });
            pkcs8 = shrouded.parsedValue!.toSchema().toBER(false);
          } else pkcs8 = (bag.bagValue as Pkijs.PrivateKeyInfo).toSchema().toBER(false);
        }
      }
    }
  } catch (e) {
    if (e instanceof LatchkeyError) throw e;
    throw bad(
      'The PFX could not be decrypted: the password is wrong, or its encryption is not supported.',
      e,
    );
  }
  if (!pkcs8) throw bad('The PFX holds no private key: import the certificate with its private key.');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw bad('The private key in the PFX could not be read.', e);
  }
  const leaf = leafFor(certs, key);
  return { der: leaf, chain: certs.filter((c) => c !== leaf), key };
}

/**
 * An imported certificate (`value` of `POST /certificates/{name}/import`): PEM text when
 * it looks like PEM or `contentType` says so, else base64 PFX.
 */
export async function readImport(
  value: string,
  password: string | undefined,
  contentType?: string,
): Promise<ImportedCertificate> {
  if (contentType === PEM || value.includes('-----BEGIN ')) return readPem(value);
  const der = Buffer.from(value.replace(/\s/g, ''), 'base64');
  if (der.length === 0) throw bad('The certificate to import is empty.');
  return readPfx(der, password ?? '');
}

/** What an imported certificate says of itself, for the policy Key Vault derives from it. */
export function describe(der: Buffer): {
  subject: string;
  dns: string[];
  emails: string[];
  validityMonths: number;
} {
  const c = new X509Certificate(der);
  const sans = (c.subjectAltName ?? '').split(', ').filter(Boolean);
  const months = Math.max(
    1,
    Math.round((Date.parse(c.validTo) - Date.parse(c.validFrom)) / (30.4375 * 86_400_000)),
  );
  return {
    subject: c.subject.split('\n').join(', '),
    dns: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    emails: sans.filter((s) => s.startsWith('email:')).map((s) => s.slice(6)),
    validityMonths: Math.min(months, 1200),
  };
}
