// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/** Installation metadata, data keys, tenants, principals, credentials, signing keys. */
export const m0001: Migration = {
  version: 1,
  name: 'core',
  sql: `
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE data_keys (
  id TEXT PRIMARY KEY,
  wrapped {{blob}} NOT NULL,
  active INTEGER NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  domain TEXT UNIQUE,
  display_name TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE principals (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  app_id TEXT,
  display_name TEXT NOT NULL,
  user_name TEXT,
  password_hash TEXT,
  identifier_uri TEXT,
  enabled INTEGER NOT NULL,
  public_client INTEGER NOT NULL DEFAULT 0,
  resource_id TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX principals_app_id ON principals (tenant_id, app_id);
CREATE UNIQUE INDEX principals_user_name ON principals (tenant_id, user_name);
CREATE UNIQUE INDEX principals_identifier_uri ON principals (tenant_id, identifier_uri);
CREATE INDEX principals_app_id_global ON principals (app_id);
CREATE TABLE credentials (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  display_name TEXT NOT NULL,
  hint TEXT,
  secret_hash {{blob}},
  thumbprint_sha1 TEXT,
  thumbprint_sha256 TEXT,
  certificate_pem TEXT,
  start_at BIGINT NOT NULL,
  end_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX credentials_principal ON credentials (principal_id);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  private_sealed {{blob}} NOT NULL,
  state TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  retire_at BIGINT
);
CREATE TABLE used_assertions (
  jti_hash TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE INDEX used_assertions_expiry ON used_assertions (expires_at);
CREATE TABLE refresh_tokens (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  client_id TEXT NOT NULL,
  token_hash {{blob}} NOT NULL UNIQUE,
  scope TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
`,
};
