import { type Caller, callerEvent, type RequestMeta } from '../access/caller.js';
import type { AuditInput } from '../audit/log.js';
import { isLatchkeyError } from '../errors/index.js';

/** One audit record for a vault operation: ids and metadata only, never a value. */
export function vaultEvent(
  caller: Caller,
  meta: RequestMeta,
  operation: string,
  target: string | null,
  vaultNameLower: string | null,
  status: number,
  details?: AuditInput['details'],
): AuditInput {
  return callerEvent(caller, meta, { operation, target, vault: vaultNameLower, status, details });
}

/** The HTTP status an error will be answered with (500 for anything unexpected). */
export const statusOf = (e: unknown): number => (isLatchkeyError(e) ? e.status : 500);
