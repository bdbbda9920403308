import type { Queryable } from '../port.js';

/** The SQL behind apps (src/management/apps.ts, app-identity.ts); `appRowId` is the row id. */
export const appStore = {
  /** Sets (or with null clears) the app's system-assigned identity. */
  async setSystemPrincipal(q: Queryable, appRowId: string, principalId: string | null): Promise<void> {
    if (principalId === null)
      await q.run('UPDATE apps SET system_principal_id = NULL WHERE id = $1', [appRowId]);
    else await q.run('UPDATE apps SET system_principal_id = $1 WHERE id = $2', [principalId, appRowId]);
  },
  async linkIdentity(q: Queryable, appRowId: string, identityRowId: string, now: number): Promise<void> {
    await q.run('INSERT INTO app_identities (app_id, identity_id, created_at) VALUES ($1, $2, $3)', [
      appRowId,
      identityRowId,
      now,
    ]);
  },
  async unlinkIdentity(q: Queryable, appRowId: string, identityRowId: string): Promise<void> {
    await q.run('DELETE FROM app_identities WHERE app_id = $1 AND identity_id = $2', [
      appRowId,
      identityRowId,
    ]);
  },
};
