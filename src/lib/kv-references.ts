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

/** The SecretUri shape, as messages state it. */
const SECRET_URI_SHAPE = 'https://{vault}.{vault domain}[:port]/secrets/{name}[/{version}]';

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
      throw new KeyVaultReferenceError(`SecretUri is not a URL: ${SECRET_URI_SHAPE}`);
    }
    if (u.protocol !== 'https:' || u.username || u.password || u.search || u.hash || /[?#@\\]/.test(uri))
      throw new KeyVaultReferenceError(`SecretUri must be a plain https URL: ${SECRET_URI_SHAPE}`);
    const vaultName = u.hostname.split('.')[0]!;
    if (!VAULT_NAME_RE.test(vaultName) || !u.hostname.includes('.'))
      throw new KeyVaultReferenceError(`the vault name in SecretUri is invalid: ${SECRET_URI_SHAPE}`);
    // Exactly /secrets/{name}[/{version}], one trailing slash tolerated (App Service accepts it).
    const p = /^\/secrets\/([^/]+)(?:\/([^/]+))?\/?$/i.exec(u.pathname);
    if (!p) throw new KeyVaultReferenceError(`SecretUri must look like ${SECRET_URI_SHAPE}`);
    const [, name, version] = p;
    if (!SECRET_NAME_RE.test(name!))
      throw new KeyVaultReferenceError('the secret name in SecretUri is invalid');
    if (version !== undefined && !VERSION_RE.test(version))
      throw new KeyVaultReferenceError('the secret version in SecretUri is invalid');
    return {
      vaultName: vaultName.toLowerCase(),
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
 * `https://{name}.{vaultDomain}[:port]`. A SecretUri must name exactly a vault
 * of that domain on that port (no port when it is 443), or it is refused: the
 * app's token is sent to this installation's vault origin and nowhere else.
 */
export function referenceUrl(ref: KeyVaultReference, vaultUrlTemplate: string): string {
  if (!VAULT_NAME_RE.test(ref.vaultName)) throw new KeyVaultReferenceError('the vault name is invalid');
  // A function replacer: a replacement string would expand `$&`, `` $` `` and `$'`.
  const expected = new URL(vaultUrlTemplate.replace('{name}', () => ref.vaultName));
  if (ref.origin !== null) {
    let given: URL | undefined;
    try {
      given = new URL(ref.origin);
    } catch {
      given = undefined;
    }
    if (given?.origin !== expected.origin)
      throw new KeyVaultReferenceError(
        `SecretUri is not a vault of this installation: use ${expected.protocol}//{vault}.${expected.host.slice(expected.host.indexOf('.') + 1)}/secrets/{name}[/{version}]`,
      );
  }
  return `${expected.origin}/secrets/${encodeURIComponent(ref.secretName)}${ref.version ? `/${ref.version}` : ''}`;
}
