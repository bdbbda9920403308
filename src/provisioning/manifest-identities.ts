import { UAI_ACTIONS } from '../management/identity-common.js';
import { type Planner, uaiArmId } from './manifest-plan.js';
import type { ManifestIdentity } from './manifest-schema.js';

/** User-assigned identities: created when missing, deleted when `absent`; they have no properties to compare. */
export async function planIdentities(p: Planner, identities: readonly ManifestIdentity[]): Promise<void> {
  const { deps, caller, meta, refs } = p;
  const { sub, rg } = refs;
  for (const i of identities) {
    await p.need(UAI_ACTIONS.read, uaiArmId(refs, i.name));
    const cur = await refs.existing.identity(i.name);
    if (i.state === 'absent') {
      if (!cur) continue;
      const run = async () => void (await deps.userIdentities.delete(caller, meta, sub, rg, i.name));
      await p.remove({ kind: 'identity', name: i.name, run }, UAI_ACTIONS.delete, cur.armId);
    } else if (cur) p.add({ action: 'unchanged', kind: 'identity', name: i.name });
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
  }
}
