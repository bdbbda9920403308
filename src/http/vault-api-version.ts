import { LatchkeyError } from '../errors/index.js';

/**
 * The Key Vault data plane's api-versions and the policy for versions newer than Latchkey knows.
 *
 * - A known version is served as itself: 2016-10-01, 7.0–7.6 (and their `-preview[.n]`
 *   forms), 2025-07-01 (and `-preview`), 2026-04-01 (the default of `@azure/keyvault-secrets` 4.12).
 * - A well-formed date-form version (`YYYY-MM-DD`, optionally `-preview`) newer than the newest
 *   known one is served as the newest known one; the response's `x-latchkey-served-api-version`
 *   header names it. An SDK released after this Latchkey keeps working for what both know.
 * - Anything else (missing, malformed, an unknown older date, 7.7+) is 400 `BadParameter` with
 *   Key Vault's own message.
 *
 * Every validated response carries the header, so a client can always see what it got.
 */
export const LATEST_VAULT_API_VERSION = '2026-04-01';

/** The response header naming the api-version a data-plane request was served as. */
export const SERVED_API_VERSION_HEADER = 'x-latchkey-served-api-version';

const KNOWN_RE = /^(7\.[0-6](-preview(\.\d{1,2})?)?|2016-10-01|2025-07-01(-preview)?|2026-04-01)$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})(-preview)?$/;

/** Whether `v` is a real calendar date in `YYYY-MM-DD` form (with an optional `-preview`). */
function isDateForm(v: string): boolean {
  const m = DATE_RE.exec(v);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, mo, 0)).getUTCDate();
}

/** The api-version a client asked for and the one its request is served as. */
export interface VaultApiVersion {
  requested: string;
  served: string;
}

/**
 * The api-version a data-plane request is served as, or a 400 as Key Vault answers.
 *
 * @example
 * vaultApiVersion('7.4');        // { requested: '7.4', served: '7.4' }
 * vaultApiVersion('2027-01-01'); // served '2026-04-01' (newer than known: served as the newest)
 * vaultApiVersion('7.9');        // throws BadParameter
 */
export function vaultApiVersion(requested: string | undefined): VaultApiVersion {
  if (requested === undefined)
    throw new LatchkeyError('BadParameter', 'The api-version query parameter is required.');
  if (KNOWN_RE.test(requested)) return { requested, served: requested };
  // Dates of one form compare in calendar order as strings (the -preview suffix is not compared).
  if (isDateForm(requested) && requested.slice(0, 10) > LATEST_VAULT_API_VERSION)
    return { requested, served: LATEST_VAULT_API_VERSION };
  throw new LatchkeyError(
    'BadParameter',
    `The specified version (${requested.slice(0, 20)}) is not recognized. Consider using the latest supported version (${LATEST_VAULT_API_VERSION}).`,
  );
}
