import type { Job } from '../jobs/runner.js';
import type { Secrets } from './secrets.js';
import type { Vaults } from './vaults.js';

/**
 * Scheduled purge: soft-deleted secrets and vaults whose retention has ended
 * are removed for good (with a vault go its objects and the role assignments
 * at or below it). Each run handles a bounded batch; the next run continues.
 */
export function vaultPurgeJob(deps: {
  vaults: Pick<Vaults, 'purgeDue'>;
  secrets: Pick<Secrets, 'purgeDue'>;
  intervalMs?: number;
}): Job {
  return {
    name: 'vault-purge',
    intervalMs: deps.intervalMs ?? 60_000,
    async run(now) {
      await deps.secrets.purgeDue(now);
      await deps.vaults.purgeDue(now);
    },
  };
}
