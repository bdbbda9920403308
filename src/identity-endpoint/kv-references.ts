/**
 * Key Vault references in app settings, as App Service writes them:
 *
 *   @Microsoft.KeyVault(SecretUri=https://{vault}.{domain}/secrets/{name}[/{version}])
 *   @Microsoft.KeyVault(VaultName={vault};SecretName={name}[;SecretVersion={version}])
 *
 * Parsing is pure; resolution (a token for the app's identity, then a GET of
 * the secret) lives in the endpoint.
 */

export interface KeyVaultReference {
  vaultName: string;
  secretName: string;
  version: string | null;
  /** Set when the reference gave a full URI: its origin (`https://host[:port]`). */
  origin: string | null;
}

const PREFIX_RE = /^\s*@Microsoft\.KeyVault\((.*)\)\s*$/is;
const SECRET_NAME_RE = /^[0-9A-Za-z-]{1,127}$/;
const VERSION_RE = /^[0-9a-fA-F]{32}$/;
const VAULT_NAME_RE = /^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$/;

export class KeyVaultReferenceError extends Error {
  override name = 'KeyVaultReferenceError';
}

/** True when the value is meant as a reference (so a malformed one is an error, not a literal). */
export const looksLikeReference = (value: string): boolean => /^\s*@Microsoft\.KeyVault\(/i.test(value);

/** Parses a reference; null when the value is not one; throws KeyVaultReferenceError when malformed. */
export function parseKeyVaultReference(value: string): KeyVaultReference | null {
  if (!looksLikeReference(value)) return null;
  const m = PREFIX_RE.exec(value);
  if (!m || value.length > 2048) throw new KeyVaultReferenceError('the reference is not closed by ")"');
  const fields = new Map<string, string>();
  for (const part of m[1]!.split(';')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    if (eq < 1) throw new KeyVaultReferenceError('expected Name=Value pairs separated by ";"');
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const uri = fields.get('secreturi');
  if (uri !== undefined) {
    if (fields.size > 1) throw new KeyVaultReferenceError('SecretUri cannot be combined with other fields');
    let u: URL;
    try {
      u = new URL(uri);
    } catch {
      throw new KeyVaultReferenceError('SecretUri is not a URL');
    }
    if (u.protocol !== 'https:' || u.username || u.password || u.search || u.hash)
      throw new KeyVaultReferenceError('SecretUri must be a plain https URL');
    const segs = u.pathname.split('/').filter(Boolean);
    if (segs.length < 2 || segs.length > 3 || segs[0]!.toLowerCase() !== 'secrets')
      throw new KeyVaultReferenceError(
        'SecretUri must look like https://{vault}.../secrets/{name}[/{version}]',
      );
    const [, name, version] = segs;
    if (!SECRET_NAME_RE.test(name!))
      throw new KeyVaultReferenceError('the secret name in SecretUri is invalid');
    if (version !== undefined && !VERSION_RE.test(version))
      throw new KeyVaultReferenceError('the secret version in SecretUri is invalid');
    return {
      vaultName: u.hostname.split('.')[0]!.toLowerCase(),
      secretName: name!,
      version: version ? version.toLowerCase() : null,
      origin: u.origin,
    };
  }
  const vault = fields.get('vaultname');
  const secret = fields.get('secretname');
  const version = fields.get('secretversion');
  for (const k of fields.keys())
    if (!['vaultname', 'secretname', 'secretversion'].includes(k))
      throw new KeyVaultReferenceError(`unknown field '${k.slice(0, 32)}'`);
  if (!vault || !secret)
    throw new KeyVaultReferenceError('use SecretUri=..., or VaultName=...;SecretName=...');
  if (!VAULT_NAME_RE.test(vault)) throw new KeyVaultReferenceError('VaultName is not a valid vault name');
  if (!SECRET_NAME_RE.test(secret)) throw new KeyVaultReferenceError('SecretName is not a valid secret name');
  if (version !== undefined && version !== '' && !VERSION_RE.test(version))
    throw new KeyVaultReferenceError('SecretVersion must be 32 hexadecimal characters');
  return {
    vaultName: vault.toLowerCase(),
    secretName: secret,
    version: version ? version.toLowerCase() : null,
    origin: null,
  };
}

/**
 * The URL to GET for a reference. `vaultUrlTemplate` is this installation's
 * `https://{name}.{vaultDomain}[:port]`; a SecretUri must point into that
 * vault domain, and the request always goes to this installation's vault
 * origin (the endpoint sends the app's token nowhere else).
 */
export function referenceUrl(ref: KeyVaultReference, vaultUrlTemplate: string): string {
  const base = vaultUrlTemplate.replace('{name}', ref.vaultName);
  const expected = new URL(base);
  if (ref.origin !== null) {
    const given = new URL(ref.origin);
    const domain = expected.hostname.slice(ref.vaultName.length);
    if (!given.hostname.toLowerCase().endsWith(domain) || given.hostname.split('.')[0] !== ref.vaultName)
      throw new KeyVaultReferenceError(`SecretUri is not a vault of this installation (*${domain})`);
  }
  return `${expected.origin}/secrets/${encodeURIComponent(ref.secretName)}${ref.version ? `/${ref.version}` : ''}`;
}
