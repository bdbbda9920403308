import { LatchkeyError } from '../errors/index.js';
import { VAULT_LIMITS } from './model.js';
import { objectKindRules } from './object-kind.js';

const bad = (message: string) => new LatchkeyError('BadParameter', message);

/** A secret's name and version rules and errors (object-kind.ts). */
export const SECRET_RULES = objectKindRules('secret');
/** A secret name from a URL: 1–127 letters, digits and hyphens. */
export const checkSecretName = SECRET_RULES.checkName;
/** A version from a URL: 32 hex characters (compared lower-case). */
export const checkVersion = SECRET_RULES.checkVersion;

export function checkValue(value: string): void {
  if (Buffer.byteLength(value, 'utf8') > VAULT_LIMITS.secretValueBytes)
    throw bad(
      `The secret value exceeds the maximum size of ${VAULT_LIMITS.secretValueBytes} bytes (25 KiB).`,
    );
}

export function checkContentType(ct: string | null | undefined): void {
  if (ct != null && ct.length > VAULT_LIMITS.contentTypeChars)
    throw bad(`contentType is longer than ${VAULT_LIMITS.contentTypeChars} characters.`);
}

export function checkTags(tags: Record<string, string> | null | undefined): void {
  if (tags == null) return;
  const entries = Object.entries(tags);
  if (entries.length > VAULT_LIMITS.tags) throw bad(`An object has at most ${VAULT_LIMITS.tags} tags.`);
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > VAULT_LIMITS.tagNameChars)
      throw bad(`A tag name is 1–${VAULT_LIMITS.tagNameChars} characters.`);
    if (typeof v !== 'string' || v.length > VAULT_LIMITS.tagValueChars)
      throw bad(`A tag value is a string of at most ${VAULT_LIMITS.tagValueChars} characters.`);
  }
}

/** nbf must come before exp when both are set. */
export function checkWindow(nbf: number | null, exp: number | null): void {
  if (nbf !== null && exp !== null && exp <= nbf)
    throw bad('attributes.exp must be later than attributes.nbf.');
}
