import type { Migration } from '../port.js';

/**
 * Browser sign-in: OAuth 2.0 authorization codes (RFC 6749 §4.1 with PKCE,
 * RFC 7636) and the web console's server-side sessions.
 *
 * A code is stored only as its HMAC (`code_hash`), bound to everything the
 * token request must repeat (client, redirect URI, PKCE challenge) and to what
 * it grants (tenant, user, scope, nonce). `used_at` marks it spent rather than
 * deleting it, so a second presentation is recognised as a replay and can
 * revoke the refresh token the first one issued (`refresh_token_id`).
 *
 * A console session is keyed by the HMAC of its cookie value; it holds the
 * per-session CSRF secret, its idle (`last_seen_at`) and absolute
 * (`expires_at`) limits, and one pending flash message. Deleting a user
 * deletes its codes and sessions.
 */
export const m0008: Migration = {
  version: 8,
  name: 'console',
  sql: `
CREATE TABLE authorization_codes (
  id TEXT PRIMARY KEY,
  code_hash {{blob}} NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  scope TEXT NOT NULL,
  nonce TEXT,
  auth_time BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  refresh_token_id TEXT,
  created_at BIGINT NOT NULL
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);
CREATE TABLE console_sessions (
  id_hash {{blob}} PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  csrf_secret {{blob}} NOT NULL,
  flash TEXT,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_principal ON console_sessions (principal_id);
`,
};
