import type { Migration } from '../port.js';
import { m0001 } from './0001_core.js';
import { m0002 } from './0002_audit.js';
import { m0003 } from './0003_access.js';
import { m0004 } from './0004_vault.js';
import { m0005 } from './0005_identity.js';
import { m0006 } from './0006_provisioning.js';
import { m0007 } from './0007_keys.js';
import { m0008 } from './0008_console.js';
import { m0009 } from './0009_device_codes.js';
import { m0010 } from './0010_auth_failures.js';
import { m0011 } from './0011_sign_in_sessions.js';
import { m0012 } from './0012_audit_head_seal.js';
import { m0013 } from './0013_certificates.js';
import { m0014 } from './0014_audit_rowid.js';
import { m0015 } from './0015_federated_credentials.js';
import { m0016 } from './0016_certificate_issuance.js';
import { m0017 } from './0017_app_federated_credentials.js';
import { m0018 } from './0018_certificate_contacts.js';
import { m0019 } from './0019_tenant_settings.js';
import { m0020 } from './0020_certificate_ca_generations.js';
import { m0021 } from './0021_certificate_ca_issuances.js';
import { m0022 } from './0022_used_assertions_by_expiry.js';
import { m0023 } from './0023_role_assignment_names_per_tenant.js';

/** Every migration, in order. Add new ones at the end with the next version number. */
export const ALL_MIGRATIONS: readonly Migration[] = [
  m0001,
  m0002,
  m0003,
  m0004,
  m0005,
  m0006,
  m0007,
  m0008,
  m0009,
  m0010,
  m0011,
  m0012,
  m0013,
  m0014,
  m0015,
  m0016,
  m0017,
  m0018,
  m0019,
  m0020,
  m0021,
  m0022,
  m0023,
];
