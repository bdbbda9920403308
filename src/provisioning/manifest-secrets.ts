import { randomBytes } from 'node:crypto';
import type { Caller, RequestMeta } from '../access/caller.js';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';
import type { SecretCallContext } from '../vault/secrets.js';
import type { Step } from './manifest-apply.js';
import type { ManifestDeps, Refs } from './manifest-refs.js';
import { type ManifestSecret, manifestError } from './manifest-schema.js';

const GEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const generate = (length: number): string => {
  const bytes = randomBytes(length * 2);
  let out = '';
  for (const b of bytes) {
    if (b >= 248) continue; // 248 = 4 * 62: unbiased
    out += GEN_ALPHABET[b % 62];
    if (out.length === length) return out;
  }
  return out + generate(length - out.length);
};

/** The step for one secret: compares value and metadata; `generate` only when it does not exist. */
export async function planSecret(
  deps: ManifestDeps,
  caller: Caller,
  meta: RequestMeta,
  refs: Refs,
  s: ManifestSecret,
  idx: number,
): Promise<Step | undefined> {
  const name = `${s.vault}/${s.name}`;
  await refs.checkVault(s.vault, ['secrets', idx, 'vault']);
  const ctx = async (): Promise<SecretCallContext> => {
    const vault = await deps.vaults.get(caller, {
      subscriptionId: refs.sub,
      resourceGroup: refs.rg,
      name: s.vault,
    });
    return { caller, meta, vault, baseUrl: deps.vaultBaseUrl(vault.nameLower) };
  };
  const vaultExists = !!(await refs.existing.vault(s.vault));
  let cur: { value?: string; contentType: string | null; exp: number | null } | undefined;
  if (vaultExists) {
    try {
      cur = await deps.secrets.get(await ctx(), s.name);
    } catch (e) {
      if (!(isLatchkeyError(e) && e.code === 'SecretNotFound')) throw e;
    }
  }
  if (s.state === 'absent')
    return cur
      ? {
          action: 'delete',
          kind: 'secret',
          name,
          run: async () => void (await deps.secrets.delete(await ctx(), s.name)),
        }
      : undefined;
  const v = s.value;
  if (!v) throw manifestError('ManifestInvalid', ['secrets', idx, 'value'], 'A present secret needs a value');
  if ('fromFile' in v || 'fromEnv' in v)
    throw manifestError(
      'ManifestInvalid',
      ['secrets', idx, 'value'],
      'fromFile and fromEnv are resolved by the client (latchkey apply) before sending',
    );
  const exp = s.expires ? Date.parse(s.expires) : null;
  const contentType = s.contentType ?? null;
  const value = 'resolved' in v ? v.resolved : cur?.value;
  if (cur && cur.value === value && cur.contentType === contentType && cur.exp === exp)
    return { action: 'unchanged', kind: 'secret', name };
  // Authorize up front where the vault exists already (a new vault's data is checked as it is written).
  if (vaultExists) {
    const { vault } = await ctx();
    await deps.access.requireVaultData(caller, vault.access, {
      dataAction: 'Microsoft.KeyVault/vaults/secrets/setSecret/action',
      objectScope: `${vault.armId}/secrets/${s.name}`,
      policy: { kind: 'secrets', permission: 'set' },
    });
  }
  return {
    action: cur ? 'update' : 'create',
    kind: 'secret',
    name,
    run: async () => {
      const fresh = value ?? ('generate' in v ? generate(v.generate.length) : undefined);
      if (fresh === undefined) throw new LatchkeyError('ManifestInvalid', 'No secret value.');
      await deps.secrets.set(await ctx(), s.name, { value: fresh, contentType, exp });
    },
  };
}
