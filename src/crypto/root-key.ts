import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

/** The root key: 32 random bytes. Everything else is derived from or wrapped under it. */
export interface RootKey {
  /** Derives a purpose-bound 32-byte subkey (HKDF-SHA256). */
  derive(purpose: string): Buffer;
  /** A public, non-secret check value used to detect a wrong key at start-up. */
  checkValue(): string;
}

export function rootKeyFromBytes(bytes: Buffer): RootKey {
  if (bytes.length !== 32)
    throw new Error('the root key must be exactly 32 bytes (base64 of 32 random bytes)');
  const key = Buffer.from(bytes);
  return {
    derive(purpose: string) {
      return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `latchkey/v1/${purpose}`, 32));
    },
    checkValue() {
      return createHmac('sha256', key).update('latchkey/v1/root-key-check').digest('base64url').slice(0, 16);
    },
  };
}

/** Parses a root key given as base64 / base64url text (a file's content or an environment variable). */
export function parseRootKey(text: string): RootKey {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    throw new Error(
      'the root key must be base64 of 32 random bytes (generate one with: latchkey root-key generate)',
    );
  }
  return rootKeyFromBytes(Buffer.from(trimmed, 'base64'));
}

export function generateRootKeyText(): string {
  return randomBytes(32).toString('base64');
}

/** Dev mode: reads the root key file, creating it (0600) if absent. Returns whether it was created. */
export function loadOrCreateRootKeyFile(path: string): { key: RootKey; created: boolean } {
  if (existsSync(path)) return { key: parseRootKey(readFileSync(path, 'utf8')), created: false };
  writeFileSync(path, `${generateRootKeyText()}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return { key: parseRootKey(readFileSync(path, 'utf8')), created: true };
}
