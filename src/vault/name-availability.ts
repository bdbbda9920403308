import type { Vault } from './model.js';
import { isVaultName } from './model.js';

/** Azure's `CheckNameAvailabilityResult` (vaults and managed HSMs alike). */
export interface NameAvailability {
  nameAvailable: boolean;
  reason?: 'AccountNameInvalid' | 'AlreadyExists';
  message?: string;
}

const invalid = (kind: string, name: string): NameAvailability => ({
  nameAvailable: false,
  reason: 'AccountNameInvalid',
  message: `The ${kind} name '${name.slice(0, 64)}' is invalid. A ${kind}'s name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.`,
});

/**
 * `checkNameAvailability` for `Microsoft.KeyVault/vaults` and `checkMhsmNameAvailability`.
 *
 * Vault names are unique per installation (each is a host under the one vault domain), as
 * Azure's are global DNS names: a name held by any vault, in any tenant, active or
 * soft-deleted, is `AlreadyExists`. That reveals no more than the data plane's challenge
 * already does (it names an existing vault's tenant). Latchkey has no managed HSMs, so every
 * well-formed HSM name is available.
 *
 * @example
 * const check = createNameAvailability({ vaults });
 * await check.vault('shop'); // { nameAvailable: false, reason: 'AlreadyExists', message: … }
 */
export function createNameAvailability(deps: {
  vaults: { byName(nameLower: string): Promise<Vault | undefined> };
}) {
  return {
    async vault(name: string): Promise<NameAvailability> {
      if (!isVaultName(name)) return invalid('vault', name);
      if (!(await deps.vaults.byName(name.toLowerCase()))) return { nameAvailable: true };
      return {
        nameAvailable: false,
        reason: 'AlreadyExists',
        message: `The vault name '${name}' is already in use. Vault names are unique per installation, so the name may be taken in another tenant, or by a vault that was deleted but not yet purged.`,
      };
    },
    managedHsm(name: string): NameAvailability {
      return isVaultName(name) ? { nameAvailable: true } : invalid('managed HSM', name);
    },
  };
}
