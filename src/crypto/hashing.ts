import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Hashes for high-entropy secrets (client secrets, provisioning keys, refresh
 * tokens): HMAC-SHA256 under a key derived from the root key, so a stolen
 * database alone cannot even test guesses. Compared in constant time.
 */
export function createSecretHasher(key: Buffer) {
  return {
    hash(secret: string): Buffer {
      return createHmac('sha256', key).update(secret, 'utf8').digest();
    },
    equals(secret: string, expected: Buffer): boolean {
      const actual = createHmac('sha256', key).update(secret, 'utf8').digest();
      return expected.length === actual.length && timingSafeEqual(actual, expected);
    },
  };
}
export type SecretHasher = ReturnType<typeof createSecretHasher>;

/** A random, URL-safe secret with a readable prefix, e.g. `lks~` + 40 chars. */
export function generateSecret(prefix: string, bytes = 30): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

// Passwords (low entropy): scrypt, N=2^15, r=8, p=1 (~64 MiB, tens of ms).
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 96 * 1024 * 1024 };

const scryptAsync = (password: string, salt: Buffer): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    scrypt(password, salt, 32, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))),
  );

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  // Always spend the same work, even for an unknown user, so timing reveals nothing.
  const parts = (stored ?? '').split('$');
  const salt = parts.length === 6 ? Buffer.from(parts[4]!, 'base64url') : randomBytes(16);
  const expected = parts.length === 6 ? Buffer.from(parts[5]!, 'base64url') : randomBytes(32);
  const actual = await scryptAsync(password, salt);
  return parts.length === 6 && expected.length === actual.length && timingSafeEqual(actual, expected);
}
