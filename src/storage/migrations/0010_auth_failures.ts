import type { Migration } from '../port.js';

/**
 * Failed authentications counted across every node (src/authority/throttle.ts):
 * one row per throttle key (`c:{tenant}:{client}`, `u:{tenant}:{user}`,
 * `ip:{address}`) with the failures of its current window. Rows whose window
 * has ended are pruned by a job; a new failure after the window starts it again.
 */
export const m0010: Migration = {
  version: 10,
  name: 'auth_failures',
  sql: `
CREATE TABLE auth_failures (
  key TEXT PRIMARY KEY,
  count BIGINT NOT NULL,
  window_start BIGINT NOT NULL
);
CREATE INDEX auth_failures_window ON auth_failures (window_start);
`,
};
