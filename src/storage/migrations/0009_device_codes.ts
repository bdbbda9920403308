import type { Migration } from '../port.js';

/**
 * The device authorization grant (RFC 8628): `az login --use-device-code`,
 * `DeviceCodeCredential`, sign-in on a machine without a browser.
 *
 * Both codes are stored only as HMACs: the device code (`device_code_hash`, a
 * 32-byte secret the client polls with) and the user code (`user_code_hash`,
 * the short code a person types on the verification page). A request is
 * `pending` until a user signs in on that page (`approved`, with the user and
 * the sign-in time) or cancels (`denied`); the token request that finds it
 * approved turns it `redeemed` (once). `last_poll_at` enforces the polling
 * interval (`slow_down`).
 */
export const m0009: Migration = {
  version: 9,
  name: 'device_codes',
  sql: `
CREATE TABLE device_codes (
  id TEXT PRIMARY KEY,
  device_code_hash {{blob}} NOT NULL UNIQUE,
  user_code_hash {{blob}} NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  status TEXT NOT NULL,
  principal_id TEXT REFERENCES principals(id) ON DELETE CASCADE,
  auth_time BIGINT,
  interval_ms BIGINT NOT NULL,
  last_poll_at BIGINT,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);
`,
};
