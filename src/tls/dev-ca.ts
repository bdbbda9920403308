import { webcrypto, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * @peculiar/x509, loaded only to issue certificates (a first start, a renewal): on a restart the
 * existing ones are read with node:crypto, which keeps `latchkey up` quick to start.
 */
async function loadX509() {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  return x509;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

export interface TlsMaterial {
  cert: string;
  key: string;
  ca: string;
  caCertPath: string;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}

const serial = (): string =>
  Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');

/**
 * The dev CA: created on first start in `{dataDir}/tls`, reused afterwards.
 * Issues a server certificate for localhost, *.{vaultDomain}, 127.0.0.1 and ::1
 * (and any extra host names), re-issued when the names change or it nears expiry.
 */
export async function ensureDevTls(
  dataDir: string,
  vaultDomain: string,
  extraHosts: string[] = [],
): Promise<TlsMaterial> {
  const dir = join(dataDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCertPath = join(dir, 'ca.pem');
  const caKeyPath = join(dir, 'ca.key');
  const certPath = join(dir, 'server.pem');
  const keyPath = join(dir, 'server.key');
  const namesPath = join(dir, 'server.names');

  // The CA as PEM, and its serial (lower-case hex, no leading zeros: the same from either parser).
  let caPem: string;
  let caSerial: string;
  const serialOf = (hex: string) => hex.toLowerCase().replace(/^0+/, '');
  if (existsSync(caCertPath) && existsSync(caKeyPath)) {
    caPem = readFileSync(caCertPath, 'utf8');
    caSerial = serialOf(new X509Certificate(caPem).serialNumber);
  } else {
    const x509 = await loadX509();
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=Latchkey Dev CA ${new Date().toISOString().slice(0, 10)}, O=Latchkey (development only)`,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 3650 * DAY),
      signingAlgorithm: ALG,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writeFileSync(caKeyPath, await exportKeyPem(keys.privateKey), { mode: 0o600 });
    chmodSync(caKeyPath, 0o600);
    caPem = `${caCert.toString('pem')}\n`;
    writeFileSync(caCertPath, caPem);
    caSerial = serialOf(caCert.serialNumber);
  }

  const dns = [
    'localhost',
    `*.${vaultDomain}`,
    vaultDomain,
    ...extraHosts.filter((h) => !/^[\d.:]+$/.test(h)),
  ];
  const ips = ['127.0.0.1', '::1', ...extraHosts.filter((h) => /^[\d.:]+$/.test(h))];
  const names = JSON.stringify({
    dns: [...new Set(dns)].sort(),
    ips: [...new Set(ips)].sort(),
    ca: caSerial,
  });
  const fresh =
    existsSync(certPath) &&
    existsSync(keyPath) &&
    existsSync(namesPath) &&
    readFileSync(namesPath, 'utf8') === names &&
    new Date(new X509Certificate(readFileSync(certPath, 'utf8')).validTo).getTime() > Date.now() + 30 * DAY;
  if (!fresh) {
    const x509 = await loadX509();
    const caCert = new x509.X509Certificate(caPem);
    const caKey = await importKeyPem(readFileSync(caKeyPath, 'utf8'));
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const parsed = JSON.parse(names) as { dns: string[]; ips: string[] };
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: 'CN=localhost, O=Latchkey (development only)',
      issuer: caCert.subject,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 397 * DAY),
      signingAlgorithm: ALG,
      publicKey: keys.publicKey,
      signingKey: caKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([
          ...parsed.dns.map((value) => ({ type: 'dns' as const, value })),
          ...parsed.ips.map((value) => ({ type: 'ip' as const, value })),
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ],
    });
    writeFileSync(keyPath, await exportKeyPem(keys.privateKey), { mode: 0o600 });
    chmodSync(keyPath, 0o600);
    writeFileSync(certPath, `${cert.toString('pem')}\n${caCert.toString('pem')}\n`);
    writeFileSync(namesPath, names);
  }
  return {
    cert: readFileSync(certPath, 'utf8'),
    key: readFileSync(keyPath, 'utf8'),
    ca: readFileSync(caCertPath, 'utf8'),
    caCertPath,
  };
}
