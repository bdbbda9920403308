import { createPublicKey, type KeyObject } from 'node:crypto';
import { CryptographyClient, KeyClient, type KeyVaultKey } from '@azure/keyvault-keys';
import type { TestServer } from './server.js';
import type { VaultTestPrincipal } from './vault.js';

/** The official KeyClient with default options (challenge resource verification on). */
export const keyClient = (s: TestServer, vault: string, p: VaultTestPrincipal) =>
  new KeyClient(s.vaultUrl(vault), p.credential, { agent: s.agent } as never);

/** The official CryptographyClient for a key (or key id), with the test agent. */
export const cryptoClient = (s: TestServer, key: KeyVaultKey | string, p: VaultTestPrincipal) =>
  new CryptographyClient(key as KeyVaultKey, p.credential, { agent: s.agent } as never);

const b64u = (u: Uint8Array | undefined) => Buffer.from(u ?? []).toString('base64url');

/** An independent Node public key from the key the vault returned (JWK import). */
export function nodePublicKey(k: KeyVaultKey): KeyObject {
  const j = k.key!;
  if (j.kty === 'RSA')
    return createPublicKey({ key: { kty: 'RSA', n: b64u(j.n), e: b64u(j.e) }, format: 'jwk' });
  const crv = j.crv === 'P-256K' ? 'secp256k1' : j.crv;
  return createPublicKey({ key: { kty: 'EC', crv, x: b64u(j.x), y: b64u(j.y) }, format: 'jwk' });
}

/** How many audit records of an operation there are (after flushing the batched ones). */
export async function auditCount(s: TestServer, operation: string): Promise<number> {
  await s.services.audit.drain();
  const r = await s.services.db.get<{ n: number }>(
    'SELECT COUNT(*) AS n FROM audit_events WHERE operation = $1',
    [operation],
  );
  return Number(r?.n ?? 0);
}
