import { type KeyObject, sign } from 'node:crypto';
import type { SigningAlg } from './signing-keys.js';

/**
 * JWS compact serialization (RFC 7515) of a JSON payload, signed with
 * node:crypto: ES256 as the raw r‖s signature JOSE requires (`ieee-p1363`),
 * RS256 as RSASSA-PKCS1-v1_5 with SHA-256. The tokens the authority issues
 * are signed here rather than through jose's WebCrypto path, which costs four
 * to five times as much per signature; jose still verifies them (src/authority/
 * tokens.ts, and every client through JWKS).
 */
export function signCompact(
  header: { alg: SigningAlg; typ: 'JWT'; kid: string },
  payload: object,
  key: KeyObject,
): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature =
    header.alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
      : sign('sha256', Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}
