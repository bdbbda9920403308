import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Caller } from '../../src/access/caller.js';
import { findRole } from '../../src/access/roles.js';
import type { Clock } from '../../src/lib/clock.js';
import { bootstrapDefaults } from '../../src/server/bootstrap.js';
import { loadDevConfig } from '../../src/server/dev.js';
import { createServices, type Services } from '../../src/server/services.js';
import type { ObjectCallContext } from '../../src/vault/object-guard.js';

export const testMeta = { requestId: 'test', clientIp: '127.0.0.1' };

/** Services on a fresh SQLite data dir (no HTTP), with one vault where the admin holds `role`. */
export interface ServiceVault {
  dir: string;
  services: Services;
  /** The admin's call context on the vault. */
  ctx: ObjectCallContext;
  /** The audit events of one operation, after draining the read buffer. */
  events(
    operation: string,
  ): Promise<{ target: string; caller_kind: string | null; details: string | null }[]>;
  close(): Promise<void>;
}

export async function startServiceVault(opts: {
  clock: Clock;
  vaultName: string;
  role: string;
  dirPrefix: string;
}): Promise<ServiceVault> {
  const dir = mkdtempSync(join(tmpdir(), opts.dirPrefix));
  const { config } = await loadDevConfig({ dataDir: dir, host: '127.0.0.1', port: 0, logLevel: 'silent' });
  const services = await createServices(config, { clock: opts.clock });
  const boot = await bootstrapDefaults(services);
  const user = await services.principals.byUserName(boot.tenantId, boot.adminUserName);
  if (!user) throw new Error('the bootstrap made no admin user');
  const caller: Caller = { tenantId: boot.tenantId, oid: user.principal.id, appId: null, kind: 'user' };
  const { vault } = await services.vaults.createOrUpdate(
    caller,
    testMeta,
    { subscriptionId: boot.subscriptionId, resourceGroup: 'default', name: opts.vaultName },
    // The ARM body as the route would hand it on (only these two properties matter here).
    { location: 'local', softDeleteRetentionInDays: 7 } as never,
  );
  const role = findRole(opts.role);
  if (!role) throw new Error(`no built-in role ${opts.role}`);
  await services.access.create(boot.tenantId, { principalId: caller.oid, role, scope: vault.armId });
  return {
    dir,
    services,
    ctx: { caller, meta: testMeta, vault, baseUrl: services.vaultBaseUrl(vault.nameLower) },
    async events(operation) {
      await services.audit.drain();
      return services.db.all(
        'SELECT target, caller_kind, details FROM audit_events WHERE operation = $1 ORDER BY seq',
        [operation],
      );
    },
    async close() {
      await services.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
