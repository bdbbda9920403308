import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { Sealer } from '../crypto/envelope.js';
import type { Jobs } from '../jobs/runner.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import { createKeyBackups } from './key-backup.js';
import { createKeyCache } from './key-cache.js';
import { createKeyGuard } from './key-guard.js';
import { keyPurgeJob, keyRotationJob } from './key-jobs.js';
import { createKeyOperations } from './key-operations.js';
import { createKeyPolicies } from './key-policies.js';
import { createKeySealing } from './key-sealing.js';
import { createKeys } from './keys.js';

/**
 * The keys part of the vault data plane, wired together: lifecycle
 * (`keys`), backup and restore (`keyBackups`), crypto operations and random bytes (`keyOperations`), rotation
 * policies (`keyPolicies`), and their background jobs (rotation, purge).
 */
export function createKeyDomain(deps: {
  db: Database;
  clock: Clock;
  sealer: Sealer;
  access: Access;
  audit: AuditLog;
  jobs: Pick<Jobs, 'add'>;
  baseUrlOf: (vaultNameLower: string) => string;
  onAuditError?: (e: unknown) => void;
}) {
  const { db, clock, sealer, audit, baseUrlOf } = deps;
  const guard = createKeyGuard({
    db,
    access: deps.access,
    audit,
    ...(deps.onAuditError ? { onAuditError: deps.onAuditError } : {}),
  });
  const cache = createKeyCache();
  const sealing = createKeySealing(sealer);
  const keys = createKeys({ db, clock, sealing, audit, guard, cache, baseUrlOf });
  const keyBackups = createKeyBackups({ db, clock, sealer, sealing, guard });
  const keyOperations = createKeyOperations({ db, clock, guard, cache, sealing });
  const keyPolicies = createKeyPolicies({ db, clock, audit, guard, keys, baseUrlOf });
  deps.jobs.add(keyRotationJob({ policies: keyPolicies }));
  deps.jobs.add(keyPurgeJob({ keys }));
  return { keys, keyBackups, keyOperations, keyPolicies };
}
