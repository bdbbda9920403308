import { randomUUID } from 'node:crypto';
import { randomBytesPooled } from './random.js';

export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const newGuid = (): string => randomUUID();
/**
 * A Key Vault object version: 32 lower-case hex characters, as Azure's. The first 12 are the
 * version's creation time (`createdMs`, epoch ms, 48 bits), the other 20 are random (80 bits), so
 * a new version's index entries go at the end of its object's range instead of anywhere in it: a
 * batch of writes then dirties a few tail pages of each index rather than a random leaf page per
 * write (docs/performance.md, "Secret SET, session 12"). The creation time is no secret from
 * anyone who may read the version (its `created` attribute); docs/vault.md says what the id shows.
 */
export const newVersionId = (createdMs: number): string => {
  const ms = Number.isSafeInteger(createdMs) ? Math.min(Math.max(createdMs, 0), 0xffff_ffff_ffff) : 0;
  return ms.toString(16).padStart(12, '0') + randomBytesPooled(10).toString('hex');
};
export const isGuid = (s: string): boolean => GUID_RE.test(s);
