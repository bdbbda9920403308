import { type KeyObject, randomUUID } from 'node:crypto';
import { loadJose } from './jose.js';

export type AssertionAlg = 'PS256' | 'ES256' | 'ES384';

/** PS256 for RSA (as ClientCertificateCredential signs), ES256/ES384 for EC keys by curve; else undefined. */
export function assertionAlg(key: KeyObject): AssertionAlg | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'PS256';
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    if (curve === 'secp384r1') return 'ES384';
  }
  return undefined;
}

/**
 * A client assertion (RFC 7523) exactly as ClientCertificateCredential signs it: `typ: JWT`,
 * `x5t#S256`; `aud` the token endpoint, `iss = sub =` the client id, ten minutes of life, a fresh
 * `jti`. The CLI and the identity endpoint sign with this; the SDK keeps its own (it stands alone).
 */
export async function signClientAssertion(
  signer: { key: KeyObject; alg: AssertionAlg; x5tS256: string },
  clientId: string,
  tokenUrl: string,
  nowMs: number,
): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  const { SignJWT } = await loadJose();
  return new SignJWT({})
    .setProtectedHeader({ alg: signer.alg, typ: 'JWT', 'x5t#S256': signer.x5tS256 })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenUrl)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + 600)
    .setJti(randomUUID())
    .sign(signer.key);
}
