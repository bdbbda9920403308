import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { findRole } from '../access/roles.js';
import { generatePassword } from '../crypto/hashing.js';
import { installationStore } from '../storage/server/installation-store.js';
import type { Services } from './services.js';

export const DEFAULT_TENANT_DOMAIN = 'latchkey.localhost';

export interface BootstrapResult {
  tenantId: string;
  subscriptionId: string;
  adminUserName: string;
  /** Only on first start: the admin password (also written to the credentials file). */
  adminPassword?: string;
}

/**
 * First start: a default tenant (domain latchkey.localhost), its default
 * subscription and resource group, and an admin user with Owner at the tenant
 * root. The admin password is written once to a 0600 file and never again.
 */
export async function bootstrapDefaults(
  s: Services,
  opts: {
    adminCredentialsPath?: string;
    authority?: string;
    tenantDomain?: string;
    /** `latchkey server`: refuse to create the tenant if the credentials file already exists. */
    requireNewCredentialsFile?: boolean;
  } = {},
): Promise<BootstrapResult> {
  const domain = opts.tenantDomain ?? DEFAULT_TENANT_DOMAIN;
  return s.db.transaction(async (tx) => {
    // The audit log's lock first: it appends below (lock order, audit/log.ts `hold`).
    await s.audit.hold(tx);
    await tx.lock('latchkey:bootstrap');
    const existing = await installationStore.defaultTenant(tx);
    if (existing) {
      const tenantId = existing;
      const sub = await s.scopes.defaultSubscription(tenantId, tx);
      const admin = await installationStore.adminUser(tx);
      return { tenantId, subscriptionId: sub.subscriptionId, adminUserName: admin ?? '' };
    }
    // Checked under the lock: of several nodes starting at once with the same flags, the one that
    // creates the tenant writes the file; the others find the tenant and leave the file alone.
    if (opts.requireNewCredentialsFile && opts.adminCredentialsPath && existsSync(opts.adminCredentialsPath))
      throw new Error(`--bootstrap-admin ${opts.adminCredentialsPath} already exists; name a new file`);
    const tenant = await s.tenants.create({ displayName: 'Default Directory', domain }, tx);
    const sub = await s.scopes.defaultSubscription(tenant.id, tx);
    const password = generatePassword();
    const userName = `admin@${domain}`;
    const admin = await s.principals.createUser(
      tenant.id,
      { userName, displayName: 'Administrator', password },
      tx,
    );
    await s.access.create(
      tenant.id,
      { principalId: admin.id, role: findRole('Owner')!, scope: '/', createdBy: 'bootstrap' },
      tx,
    );
    await installationStore.recordBootstrap(tx, tenant.id, userName);
    await s.audit.append(tx, {
      tenantId: tenant.id,
      operation: 'TenantBootstrap',
      target: tenant.id,
      status: 200,
      details: { admin: userName },
    });
    if (opts.adminCredentialsPath && !existsSync(opts.adminCredentialsPath)) {
      writeFileSync(
        opts.adminCredentialsPath,
        `${JSON.stringify({ tenantId: tenant.id, userName, password, authority: opts.authority ?? null }, null, 2)}\n`,
        { mode: 0o600, flag: 'wx' },
      );
      chmodSync(opts.adminCredentialsPath, 0o600);
    }
    return {
      tenantId: tenant.id,
      subscriptionId: sub.subscriptionId,
      adminUserName: userName,
      adminPassword: password,
    };
  });
}
