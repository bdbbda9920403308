import type { Clock } from '../lib/clock.js';
import type { Database } from './port.js';

/** How often readiness may try a probe write while the store is unwritable (a probe is a small real commit). */
export const WRITE_PROBE_INTERVAL_MS = 5_000;

/**
 * Whether the store can write, for readiness. A write refused for lack of space marks the store
 * unwritable (`Database.writable`); any later write that commits clears the mark. While marked,
 * `check()` tries a probe write (`Database.probeWrite`) at most once per `intervalMs` of monotonic
 * time, so a node that a load balancer took out of rotation (no requests, so no writes) still
 * notices when space is back and turns ready by itself. A store that was never refused a write
 * costs nothing: no probe runs.
 */
export function createWriteHealth(opts: {
  db: Pick<Database, 'writable' | 'probeWrite'>;
  clock: Clock;
  intervalMs?: number;
}) {
  const interval = opts.intervalMs ?? WRITE_PROBE_INTERVAL_MS;
  let lastProbe: number | undefined;
  let probing: Promise<boolean> | undefined;
  return {
    /** True when the store can write (as far as the last write or probe shows). */
    async check(): Promise<boolean> {
      if (opts.db.writable) return true;
      const now = opts.clock.monotonic();
      if (probing) return probing;
      if (lastProbe !== undefined && now - lastProbe < interval) return false;
      lastProbe = now;
      probing = opts.db.probeWrite().finally(() => {
        probing = undefined;
      });
      return probing;
    },
  };
}

export type WriteHealth = ReturnType<typeof createWriteHealth>;
