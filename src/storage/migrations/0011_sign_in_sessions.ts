import type { Migration } from '../port.js';

/**
 * Revocable sign-in sessions (OAuth 2.0 Security BCP, RFC 9700 §4.14).
 *
 * `principals.sessions_valid_from` (ms): refresh tokens, authorization codes and
 * device codes from a sign-in before it are refused. It moves forward on a
 * password reset, a disable, a delete and `revokeSignInSessions`.
 *
 * A refresh token belongs to a family (`family_id`, the id of the family's first
 * token) that carries the sign-in time (`auth_time`, ms). Redeeming a token marks
 * it spent (`used_at`) rather than deleting it, so a second presentation is seen
 * as a replay and revokes the whole family. Rows from before this migration form
 * a family of one, signed in when they were issued.
 */
export const m0011: Migration = {
  version: 11,
  name: 'sign_in_sessions',
  sql: `
ALTER TABLE principals ADD COLUMN sessions_valid_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN family_id TEXT;
ALTER TABLE refresh_tokens ADD COLUMN auth_time BIGINT;
ALTER TABLE refresh_tokens ADD COLUMN used_at BIGINT;
UPDATE refresh_tokens SET family_id = id, auth_time = created_at;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_principal ON refresh_tokens (principal_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (tenant_id, client_id);
`,
};
