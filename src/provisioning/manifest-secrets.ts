import { randomBytes } from 'node:crypto';
import type { Caller, RequestMeta } from '../access/caller.js';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';
import type { SecretCallContext, SecretRecord } from '../vault/secrets.js';
import type { Planner, Step } from './manifest-plan.js';
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

const SECRETS = 'Microsoft.KeyVault/vaults/secrets';
/** The plan's note when a value is written without being compared. */
export const NOT_COMPARED = 'value not compared: the caller may not read it';

/**
 * The step for one secret. What the caller may not read never decides the
 * answer: existence, content type and expiry come from a metadata read
 * (`readMetadata`, audited; refused → the whole plan is refused, whatever the
 * secret holds); the value is compared only when the caller may read it
 * (`getSecret`, audited as a `SecretGet`), else it is written without
 * comparing (`update`, with a note). `generate` only when it does not exist.
 */
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
  /** May the caller do `action` (access-policy `permission`) on this secret? Asked of the decision point only. */
  const may = async (c: SecretCallContext, action: string, permission: string): Promise<boolean> =>
    deps.access
      .requireVaultData(caller, c.vault.access, {
        dataAction: `${SECRETS}/${action}`,
        objectScope: `${c.vault.armId}/secrets/${s.name}`,
        policy: { kind: 'secrets', permission },
      })
      .then(
        () => true,
        (e: unknown) => {
          if (isLatchkeyError(e) && e.status === 403) return false;
          throw e;
        },
      );
  const must = async (c: SecretCallContext, action: string, permission: string): Promise<void> =>
    deps.access.requireVaultData(caller, c.vault.access, {
      dataAction: `${SECRETS}/${action}`,
      objectScope: `${c.vault.armId}/secrets/${s.name}`,
      policy: { kind: 'secrets', permission },
    });
  // A vault named only in the manifest has no secrets yet (its data is checked as it is written).
  const c = (await refs.existing.vault(s.vault)) ? await ctx() : undefined;
  let cur: SecretRecord | undefined;
  if (c) {
    try {
      cur = await deps.secrets.properties(c, s.name);
    } catch (e) {
      if (!(isLatchkeyError(e) && e.code === 'SecretNotFound')) throw e;
    }
  }
  if (s.state === 'absent') {
    if (!c || !cur) return undefined;
    await must(c, 'delete', 'delete');
    return {
      action: 'delete',
      kind: 'secret',
      name,
      run: async () => void (await deps.secrets.delete(await ctx(), s.name)),
    };
  }
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
  // `generate` keeps an existing value: only its attributes can differ.
  const value = 'resolved' in v ? v.resolved : undefined;
  const sameAttributes = !!cur && cur.contentType === contentType && cur.exp === exp;
  let note: string | undefined;
  if (c && cur && value === undefined) {
    if (sameAttributes) return { action: 'unchanged', kind: 'secret', name };
    await must(c, 'update/action', 'set');
    return {
      action: 'update',
      kind: 'secret',
      name,
      run: async () => void (await deps.secrets.update(await ctx(), s.name, undefined, { contentType, exp })),
    };
  }
  if (c && cur && sameAttributes) {
    // Read permission first; only then the read (audited), and only then the comparison.
    if (await may(c, 'getSecret/action', 'get')) {
      if ((await deps.secrets.get(c, s.name)).value === value)
        return { action: 'unchanged', kind: 'secret', name };
    } else note = NOT_COMPARED;
  }
  if (c) await must(c, 'setSecret/action', 'set');
  return {
    action: cur ? 'update' : 'create',
    kind: 'secret',
    name,
    ...(note ? { note } : {}),
    run: async () => {
      const fresh = value ?? ('generate' in v ? generate(v.generate.length) : undefined);
      if (fresh === undefined) throw new LatchkeyError('ManifestInvalid', 'No secret value.');
      await deps.secrets.set(await ctx(), s.name, { value: fresh, contentType, exp });
    },
  };
}

/** Secrets, each in its vault (which may be created earlier in the same plan). */
export async function planSecrets(p: Planner, secrets: readonly ManifestSecret[]): Promise<void> {
  for (const [idx, s] of secrets.entries()) {
    const step = await planSecret(p.deps, p.caller, p.meta, p.refs, s, idx);
    if (step) p.add(step);
  }
}
