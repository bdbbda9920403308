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

/**
 * A password for a user (the bootstrap admin, a new user, a reset): 24 base64url characters, shown
 * once, the first a letter or digit. One draw in 32 would otherwise start with `-` or `_`, and a
 * password that starts with `-` is read as an option by `az login -p` and other command lines.
 * Drawn again until it does not (uniform over the passwords kept: 143.9 of 144 random bits).
 */
export function generatePassword(): string {
  for (;;) {
    const password = randomBytes(18).toString('base64url');
    if (/^[A-Za-z0-9]/.test(password)) return password;
  }
}

/** A random, URL-safe secret with a readable prefix, e.g. `lks~` + 40 chars. */
export function generateSecret(prefix: string, bytes = 30): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

// Passwords (low entropy): scrypt, N=2^15, r=8, p=1 (~64 MiB, tens of ms).
export const PASSWORD_COST = { N: 1 << 15, r: 8, p: 1 } as const;
// The test runner (scripts/run-tests.mjs) sets LATCHKEY_TEST=1, and only then are passwords hashed
// at N=2^10 (~1 MiB, ~2 ms): the suite signs in thousands of times. Besides this, only the audit
// log's lock-order check reads LATCHKEY_TEST (audit/log.ts); without it a test-cost hash is
// refused, so it cannot weaken a real installation (docs/security.md). The hash string records N, r and p.
export const TEST_PASSWORD_COST = { N: 1 << 10, r: 8, p: 1 } as const;
type Cost = typeof PASSWORD_COST | typeof TEST_PASSWORD_COST;
const MAXMEM = 96 * 1024 * 1024;

/** The cost new password hashes get: the production cost unless the test runner's LATCHKEY_TEST=1 is set. */
export function passwordCost(env: NodeJS.ProcessEnv = process.env): Cost {
  return env.LATCHKEY_TEST === '1' ? TEST_PASSWORD_COST : PASSWORD_COST;
}

const scryptAsync = (password: string, salt: Buffer, cost: Cost): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    scrypt(password, salt, 32, { ...cost, maxmem: MAXMEM }, (err, key) => (err ? reject(err) : resolve(key))),
  );

export async function hashPassword(password: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const cost = passwordCost(env);
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, cost);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** The cost a stored hash records, if it is one this installation accepts (the production cost, or the test cost under the test runner). */
function storedCost(parts: string[], env: NodeJS.ProcessEnv): Cost | null {
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const accepted: Cost[] = env.LATCHKEY_TEST === '1' ? [PASSWORD_COST, TEST_PASSWORD_COST] : [PASSWORD_COST];
  return (
    accepted.find((c) => parts[1] === String(c.N) && parts[2] === String(c.r) && parts[3] === String(c.p)) ??
    null
  );
}

export async function verifyPassword(
  password: string,
  stored: string | null,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  // Always spend the same work, even for an unknown user, so timing reveals nothing.
  const parts = (stored ?? '').split('$');
  const cost = storedCost(parts, env);
  const salt = cost ? Buffer.from(parts[4]!, 'base64url') : randomBytes(16);
  const expected = cost ? Buffer.from(parts[5]!, 'base64url') : randomBytes(32);
  const actual = await scryptAsync(password, salt, cost ?? passwordCost(env));
  return cost !== null && expected.length === actual.length && timingSafeEqual(actual, expected);
}
