import { randomUUID } from 'node:crypto';
import { randomBytesPooled } from './random.js';

export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const newGuid = (): string => randomUUID();
/** A Key Vault object version: 32 lower-case hex characters. */
export const newVersionId = (): string => randomBytesPooled(16).toString('hex');
export const isGuid = (s: string): boolean => GUID_RE.test(s);
