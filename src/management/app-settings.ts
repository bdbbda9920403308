import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import { KeyVaultReferenceError, parseKeyVaultReference, referenceUrl } from '../lib/kv-references.js';

/** App settings become environment variables: names like shell variables (App Service also allows dots and hyphens). */
export const SETTING_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
export const MAX_SETTINGS = 200;
export const MAX_SETTING_VALUE = 16 * 1024;
export const MAX_SETTINGS_BYTES = 128 * 1024;

export type AppSettings = Record<string, string>;

/** Validates a full set of settings; messages name the setting, never its value. */
export function checkSettings(settings: AppSettings): AppSettings {
  const entries = Object.entries(settings);
  if (entries.length > MAX_SETTINGS)
    throw new LatchkeyError('BadParameter', `An app may have at most ${MAX_SETTINGS} settings.`);
  let total = 0;
  const seen = new Set<string>();
  for (const [k, v] of entries) {
    if (!SETTING_NAME_RE.test(k))
      throw new LatchkeyError(
        'BadParameter',
        `Invalid app setting name '${k.slice(0, 64)}': 1–128 letters, digits, '_', '.', '-', not starting with a digit.`,
      );
    if (seen.has(k.toUpperCase()))
      throw new LatchkeyError(
        'BadParameter',
        `App setting '${k}' is given twice (names are case-insensitive).`,
      );
    seen.add(k.toUpperCase());
    if (typeof v !== 'string' || v.length > MAX_SETTING_VALUE)
      throw new LatchkeyError(
        'BadParameter',
        `App setting '${k}' must be a string of at most ${MAX_SETTING_VALUE} characters.`,
      );
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a NUL cannot be passed in an environment variable
    if (/\u0000/.test(v))
      throw new LatchkeyError('BadParameter', `App setting '${k}' contains a NUL character.`);
    total += k.length + v.length;
  }
  if (total > MAX_SETTINGS_BYTES)
    throw new LatchkeyError(
      'BadParameter',
      `App settings may total at most ${MAX_SETTINGS_BYTES} characters.`,
    );
  return Object.fromEntries(entries);
}

/**
 * Refuses a Key Vault reference that would not resolve against this
 * installation's vaults (`vaultUrlTemplate`: `https://{name}.{vaultDomain}[:port]`),
 * or is malformed: a SecretUri to any other host, scheme or port never becomes
 * a setting. The endpoint checks again when it resolves (`latchkey run`).
 */
export function checkReferences(settings: AppSettings, vaultUrlTemplate: string): void {
  for (const [k, v] of Object.entries(settings)) {
    try {
      const ref = parseKeyVaultReference(v);
      if (ref) referenceUrl(ref, vaultUrlTemplate);
    } catch (e) {
      if (!(e instanceof KeyVaultReferenceError)) throw e;
      const domain = new URL(vaultUrlTemplate.replace('{name}', () => 'vault')).host.replace(/^vault\./, '');
      throw new LatchkeyError(
        'InvalidKeyVaultReference',
        `App setting '${k}' is not a valid Key Vault reference (${e.message}). Use @Microsoft.KeyVault(SecretUri=https://{vault}.${domain}/secrets/{name}[/{version}]) or @Microsoft.KeyVault(VaultName={vault};SecretName={name}[;SecretVersion={version}]).`,
        { cause: e },
      );
    }
  }
}

/** The AAD that binds an app's sealed settings to the app row. */
const aad = (tenantId: string, appRowId: string) => `appsettings|${tenantId}|${appRowId}`;

export function sealSettings(
  sealer: Sealer,
  tenantId: string,
  appRowId: string,
  settings: AppSettings,
): Buffer {
  return sealer.seal(JSON.stringify(settings), aad(tenantId, appRowId));
}

export function openSettings(
  sealer: Sealer,
  tenantId: string,
  appRowId: string,
  blob: Buffer | null | undefined,
): AppSettings {
  if (!blob || blob.length === 0) return {};
  return JSON.parse(sealer.open(Buffer.from(blob), aad(tenantId, appRowId)).toString('utf8')) as AppSettings;
}
