import type { Migration } from '../port.js';

/**
 * The audit chain head is now sealed with a MAC (src/audit/log.ts). A database
 * that already has a head gets a marker; the first start after this migration
 * (which holds the root key) seals that head and removes the marker, and says so
 * in the operator log. SQL alone cannot compute the MAC.
 */
export const m0012: Migration = {
  version: 12,
  name: 'audit_head_seal',
  sql: `
INSERT INTO meta (key, value)
SELECT 'audit_head_seal', 'pending'
WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'audit_head')
ON CONFLICT (key) DO NOTHING;
`,
};
