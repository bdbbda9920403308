import type { ConsoleRouter } from '../routes.js';
import { registerAppRegistrationPages } from './app-registrations.js';
import { registerAppPages } from './apps.js';
import { registerAuditPages } from './audit.js';
import { registerIamPages } from './iam.js';
import { registerIdentityPages } from './identities.js';
import { registerMemberSearch } from './member-picker.js';
import { overviewPage } from './overview.js';
import { registerProvisioningPages } from './provisioning.js';
import { registerTenantSettingsPages } from './tenant-settings.js';
import { registerUserPages } from './users.js';
import { registerAccessPages } from './vault-access.js';
import { registerCertificateSettingsPages } from './vault-certificate-settings.js';
import { registerCertificatePages } from './vault-certificates.js';
import { registerKeyPages } from './vault-keys.js';
import { registerSecretPages } from './vault-secrets.js';
import { registerVaultPages } from './vaults.js';

/** Every page and action of the console. */
export function registerPages(r: ConsoleRouter): void {
  r.page('/', overviewPage);
  registerIdentityPages(r);
  registerAppPages(r);
  registerVaultPages(r);
  registerSecretPages(r);
  registerKeyPages(r);
  registerCertificateSettingsPages(r);
  registerCertificatePages(r);
  registerAccessPages(r);
  registerIamPages(r);
  registerMemberSearch(r);
  registerUserPages(r);
  registerAppRegistrationPages(r);
  registerProvisioningPages(r);
  registerTenantSettingsPages(r);
  registerAuditPages(r);
}
