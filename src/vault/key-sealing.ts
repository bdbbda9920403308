import type { Sealer } from '../crypto/envelope.js';
import type { PrivateJwk } from './key-material.js';

/** The vault a key lives in, as sealing and storage need it. */
export interface KeyVaultRef {
  id: string;
  tenantId: string;
}

/**
 * Private keys at rest: the private JWK sealed with AES-256-GCM under the
 * installation's data key, the AAD `key|{tenant}|{vault id}|{name}|{version}`
 * binding the ciphertext to its row (a copied ciphertext does not open).
 */
export function createKeySealing(sealer: Sealer) {
  const aad = (v: KeyVaultRef, nameLower: string, version: string) =>
    `key|${v.tenantId}|${v.id}|${nameLower}|${version}`;
  return {
    seal: (v: KeyVaultRef, nameLower: string, version: string, p: PrivateJwk): Buffer =>
      sealer.seal(JSON.stringify(p), aad(v, nameLower, version)),
    unseal: (v: KeyVaultRef, nameLower: string, version: string, blob: Buffer): PrivateJwk =>
      JSON.parse(sealer.open(blob, aad(v, nameLower, version)).toString('utf8')) as PrivateJwk,
  };
}
export type KeySealing = ReturnType<typeof createKeySealing>;
