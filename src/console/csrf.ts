import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mac, safeEqual } from './security.js';

/**
 * Synchronizer tokens: each form carries HMAC(session's CSRF secret, form
 * action path). A token is good for one session and one action URL, so a
 * token leaked from one form does not authorize another.
 */
export const csrfToken = (secret: Buffer, action: string): string => mac(secret, 'console-form', action);

export const csrfValid = (secret: Buffer, action: string, presented: unknown): boolean =>
  typeof presented === 'string' && presented.length <= 100 && safeEqual(presented, csrfToken(secret, action));

/** What the console remembers between sending the browser to sign in and the callback. */
export interface LoginState {
  /** Tenant segment the sign-in is for. */
  tenant: string;
  state: string;
  nonce: string;
  verifier: string;
  /** Console path to return to. */
  returnTo: string;
  /** Epoch ms after which the sign-in must start over. */
  expires: number;
}

/**
 * Seals the login state into a cookie value: AES-256-GCM under a key derived
 * from the root key, so the browser holds it but can neither read the PKCE
 * verifier nor change anything.
 */
export function sealLoginState(key: Buffer, s: LoginState): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([c.update(JSON.stringify(s), 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url');
}

export function openLoginState(key: Buffer, value: string | undefined): LoginState | undefined {
  if (!value || value.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(value)) return undefined;
  const raw = Buffer.from(value, 'base64url');
  if (raw.length < 29) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    const text = Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    const s = JSON.parse(text) as LoginState;
    return typeof s.state === 'string' && typeof s.verifier === 'string' && typeof s.nonce === 'string'
      ? s
      : undefined;
  } catch {
    return undefined;
  }
}
