import type { Job } from '../jobs/runner.js';
import type { KeyPolicies } from './key-policies.js';
import type { Keys } from './keys.js';

/** Rotation policies carried out on schedule (rotate, notify near expiry). */
export function keyRotationJob(deps: { policies: Pick<KeyPolicies, 'runDue'>; intervalMs?: number }): Job {
  return {
    name: 'key-rotation',
    intervalMs: deps.intervalMs ?? 60_000,
    async run(now) {
      await deps.policies.runDue(now);
    },
  };
}

/** Soft-deleted keys whose retention has ended are purged for good (a bounded batch per run). */
export function keyPurgeJob(deps: { keys: Pick<Keys, 'purgeDue'>; intervalMs?: number }): Job {
  return {
    name: 'key-purge',
    intervalMs: deps.intervalMs ?? 60_000,
    async run(now) {
      await deps.keys.purgeDue(now);
    },
  };
}
