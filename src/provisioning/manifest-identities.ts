import { type CredentialKey, FIC_ACTIONS } from '../management/federated-credentials.js';
import { UAI_ACTIONS } from '../management/identity-common.js';
import {
  type Planner,
  planCredentialWrite,
  sameCredential,
  uaiArmId,
  wantedCredential,
} from './manifest-plan.js';
import { checkedAt, type ManifestFederatedCredential, type ManifestIdentity } from './manifest-schema.js';

/** User-assigned identities: created when missing, deleted when `absent`; then their federated credentials. */
export async function planIdentities(p: Planner, identities: readonly ManifestIdentity[]): Promise<void> {
  const { deps, caller, meta, refs } = p;
  const { sub, rg } = refs;
  for (const [index, i] of identities.entries()) {
    await p.need(UAI_ACTIONS.read, uaiArmId(refs, i.name));
    const cur = await refs.existing.identity(i.name);
    if (i.state === 'absent') {
      if (!cur) continue;
      const run = async () => void (await deps.userIdentities.delete(caller, meta, sub, rg, i.name));
      await p.remove({ kind: 'identity', name: i.name, run }, UAI_ACTIONS.delete, cur.armId);
      continue;
    }
    if (cur) p.add({ action: 'unchanged', kind: 'identity', name: i.name });
    else {
      await p.need(UAI_ACTIONS.write, uaiArmId(refs, i.name));
      p.add({
        action: 'create',
        kind: 'identity',
        name: i.name,
        run: async () =>
          void (await deps.userIdentities.createOrUpdate(caller, meta, {
            subscriptionId: sub,
            resourceGroup: rg,
            name: i.name,
          })),
      });
    }
    const fics = i.federatedCredentials ?? [];
    // The credentials as they will be when each write runs (planCredentialWrite).
    if (cur && fics.length) await p.need(FIC_ACTIONS.read, uaiArmId(refs, i.name));
    const planned: CredentialKey[] =
      cur && fics.length ? await deps.federatedCredentials.list(caller, { sub, rg, identity: i.name }) : [];
    for (const [n, f] of fics.entries())
      await planFederatedCredential(p, i.name, !!cur, f, planned, [
        'identities',
        index,
        'federatedCredentials',
        n,
      ]);
  }
}

/** One declared credential of an identity: compared with the stored one, created, updated or deleted. */
async function planFederatedCredential(
  p: Planner,
  identity: string,
  identityExists: boolean,
  f: ManifestFederatedCredential,
  planned: CredentialKey[],
  at: (string | number)[],
): Promise<void> {
  const { deps, caller, meta, refs } = p;
  const path = { sub: refs.sub, rg: refs.rg, identity, name: f.name };
  const name = `${identity}/${f.name}`;
  const scope = uaiArmId(refs, identity);
  let cur: Awaited<ReturnType<typeof deps.federatedCredentials.get>> | undefined;
  if (identityExists) {
    await p.need(FIC_ACTIONS.read, scope);
    try {
      cur = await deps.federatedCredentials.get(caller, path);
    } catch (e) {
      if ((e as { status?: number }).status !== 404) throw e;
    }
  }
  if (f.state === 'absent') {
    if (!cur) return;
    const run = async () => void (await deps.federatedCredentials.delete(caller, meta, path));
    await p.remove({ kind: 'federatedCredential', name, run }, FIC_ACTIONS.delete, scope);
    return;
  }
  const want = wantedCredential(f, at);
  if (sameCredential(cur, want)) return p.add({ action: 'unchanged', kind: 'federatedCredential', name });
  // The write's own checks (the issuer allow-lists, the name, at most 20, no two with one issuer and
  // subject) at plan time, so a dry run refuses what the apply would refuse, with the same error.
  await checkedAt(at, () => deps.federatedCredentials.check(caller.tenantId, f.name, want, planned));
  await p.need(FIC_ACTIONS.write, scope);
  planCredentialWrite(planned, f.name, want);
  p.add({
    action: cur ? 'update' : 'create',
    kind: 'federatedCredential',
    name,
    run: async () => void (await deps.federatedCredentials.createOrUpdate(caller, meta, path, want)),
  });
}
