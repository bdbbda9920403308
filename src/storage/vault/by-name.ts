import type { Queryable } from '../port.js';

/**
 * Deletes a vault's row of `table` keyed by (vault_id, name_lower); whether there was one. For
 * the certificate stores' one-row documents (pending operation, request, issuer).
 */
export async function deleteByName(
  q: Queryable,
  table: 'certificate_operations' | 'certificate_requests' | 'certificate_issuers',
  vaultId: string,
  nameLower: string,
): Promise<boolean> {
  return (
    (await q.run(`DELETE FROM ${table} WHERE vault_id = $1 AND name_lower = $2`, [vaultId, nameLower]))
      .changes > 0
  );
}
