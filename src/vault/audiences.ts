/**
 * The audiences a vault token may carry. The vault's resource is `https://{vaultDomain}`; its
 * challenge names it with the public port unless that is 443, because the Python and Go Key Vault
 * clients require the challenge's host *and port* to be a suffix of the vault URL's (JS and .NET
 * compare host names). A token for either form is a vault token. Computed once per bound port
 * (`port()` changes once, after listening).
 */
export function createVaultAudiences(vaultDomain: string, port: () => number) {
  const resource = `https://${vaultDomain}`;
  let cached: { port: number; challenge: string; list: readonly string[] } | undefined;
  const current = () => {
    const p = port();
    if (cached?.port !== p) {
      const challenge = p === 443 ? resource : `${resource}:${p}`;
      cached = { port: p, challenge, list: Object.freeze([...new Set([resource, challenge])]) };
    }
    return cached;
  };
  return {
    /** `https://{vaultDomain}`. */
    resource,
    /** The resource the vault's challenge names (`https://{vaultDomain}[:{public port}]`). */
    challengeResource: (): string => current().challenge,
    /** The audiences the vault accepts: `https://{vaultDomain}`, and with the public port. */
    list: (): readonly string[] => current().list,
  };
}
