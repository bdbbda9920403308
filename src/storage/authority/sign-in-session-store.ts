import type { Queryable } from '../port.js';

/**
 * Ending a principal's sign-in sessions (Graph's `revokeSignInSessions`): what a sign-in left
 * behind in storage, the refresh tokens issued to the principal and its console sessions.
 */
export const signInSessionStore = {
  async endAllOf(q: Queryable, principalId: string): Promise<void> {
    await q.run('DELETE FROM refresh_tokens WHERE principal_id = $1', [principalId]);
    await q.run('DELETE FROM console_sessions WHERE principal_id = $1', [principalId]);
  },
};
