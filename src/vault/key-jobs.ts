import type { Job } from '../jobs/runner.js';
import type { KeyPolicies } from './key-policies.js';
import type { Keys } from './keys.js';

/** A job that runs `task` every `intervalMs` (default: a minute). */
const periodic = (
  name: string,
  intervalMs: number | undefined,
  task: (now: number) => Promise<unknown>,
): Job => ({
  name,
  intervalMs: intervalMs ?? 60_000,
  async run(now) {
    await task(now);
  },
});

/** Rotation policies carried out on schedule (rotate, notify near expiry). */
export const keyRotationJob = (deps: { policies: Pick<KeyPolicies, 'runDue'>; intervalMs?: number }): Job =>
  periodic('key-rotation', deps.intervalMs, (now) => deps.policies.runDue(now));

/** Soft-deleted keys whose retention has ended are purged for good (a bounded batch per run). */
export const keyPurgeJob = (deps: { keys: Pick<Keys, 'purgeDue'>; intervalMs?: number }): Job =>
  periodic('key-purge', deps.intervalMs, (now) => deps.keys.purgeDue(now));
