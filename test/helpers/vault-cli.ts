import assert from 'node:assert/strict';
import { type CliResult, type CliUser, cliUser } from './cli.js';
import type { TestServer } from './server.js';
import { grant, putVault } from './vault.js';

/** A CLI result that must have succeeded: exit 0, else the assertion names `what` and stderr. */
export const cliOk = (r: CliResult, what = ''): CliResult => {
  assert.equal(r.code, 0, `${what} exit 0 expected; stderr: ${r.stderr}`);
  return r;
};

/** The CLI signed in as the test server's admin, who holds `role` on a new vault `vaultName`. */
export interface VaultCli {
  user: CliUser;
  /** `latchkey --server … --ca-file … <args>` as that user. */
  run: (...args: string[]) => Promise<CliResult>;
}

export async function vaultAdminCli(s: TestServer, vaultName: string, role: string): Promise<VaultCli> {
  const vault = await putVault(s, vaultName);
  const adminUser = await s.services.principals.byUserName(s.admin.tenantId, s.admin.userName);
  assert.ok(adminUser, 'the test server has its admin user');
  await grant(s, adminUser.principal.id, role, vault.id);
  const user = cliUser();
  const g = ['--server', s.info.authority, '--ca-file', s.info.caCertPath];
  const run = (...args: string[]) => user.run(...g, ...args);
  const login = ['login', '-u', s.admin.userName, '-p', s.admin.password, '-t', s.admin.tenantId];
  cliOk(await run(...login, '-o', 'none'), 'login');
  return { user, run };
}
