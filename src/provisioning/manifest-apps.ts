import { identityType } from '../management/app-identity.js';
import { APP_ACTIONS } from '../management/identity-common.js';
import { appArmId, type Planner, sameJson, uaiArmId } from './manifest-plan.js';
import type { ManifestApp } from './manifest-schema.js';

type App = NonNullable<Awaited<ReturnType<Planner['refs']['existing']['app']>>>;

/** Apps: each one's identity block, then its settings; deleted when `absent`. */
export async function planApps(p: Planner, apps: readonly ManifestApp[]): Promise<void> {
  const { deps, caller, meta, refs } = p;
  for (const [idx, a] of apps.entries()) {
    await p.need(APP_ACTIONS.read, appArmId(refs, a.name));
    const cur = await refs.existing.app(a.name);
    if (a.state === 'absent') {
      const run = async () => void (await deps.apps.delete(caller, meta, refs.sub, refs.rg, a.name));
      if (cur) await p.remove({ kind: 'app', name: a.name, run }, APP_ACTIONS.delete, cur.armId);
      continue;
    }
    await planAppIdentity(p, a, idx, cur);
    if (a.settings) await planAppSettings(p, a.name, a.settings, cur);
  }
}

/** The app itself: created, or updated when its identity type or user-assigned identities differ. */
async function planAppIdentity(p: Planner, a: ManifestApp, idx: number, cur: App | undefined) {
  const { deps, caller, meta, refs } = p;
  const uais = a.identity?.userAssignedIdentities ?? [];
  for (const [j, n] of uais.entries())
    await refs.checkIdentity(n, ['apps', idx, 'identity', 'userAssignedIdentities', j]);
  const wantType = a.identity?.type ?? 'None';
  const curType = cur ? identityType(cur) : undefined;
  const sameUais =
    cur &&
    sameJson(
      cur.userIdentities.map((u) => u.name.toLowerCase()).sort(),
      uais.map((n) => n.toLowerCase()).sort(),
    );
  const identityInput = () => ({
    type: wantType,
    ...(uais.length
      ? { userAssignedIdentities: Object.fromEntries(uais.map((n) => [uaiArmId(refs, n), {}])) }
      : {}),
  });
  if (cur && curType === wantType && sameUais) {
    p.add({ action: 'unchanged', kind: 'app', name: a.name });
    return;
  }
  await p.need(APP_ACTIONS.write, appArmId(refs, a.name));
  p.add({
    action: cur ? 'update' : 'create',
    kind: 'app',
    name: a.name,
    run: async () =>
      void (await deps.apps.createOrUpdate(caller, meta, {
        subscriptionId: refs.sub,
        resourceGroup: refs.rg,
        name: a.name,
        identity: identityInput(),
      })),
  });
}

/**
 * Settings are sealed values: compared only when the caller may list them, and
 * that read is audited (AppSettingsList); otherwise written without comparing,
 * whatever they hold.
 */
async function planAppSettings(
  p: Planner,
  name: string,
  input: Record<string, string>,
  cur: App | undefined,
) {
  const { deps, caller, meta, refs } = p;
  const settings = deps.apps.validateSettings(input);
  const readable = cur && (await deps.access.allows(caller, APP_ACTIONS.listSettings, cur.armId));
  const current = readable
    ? (await deps.apps.listSettings(caller, meta, refs.sub, refs.rg, name)).settings
    : undefined;
  const sorted = (o: Record<string, string>) => Object.entries(o).sort(([x], [y]) => x.localeCompare(y));
  if (current && sameJson(sorted(current), sorted(settings))) {
    p.add({ action: 'unchanged', kind: 'appSettings', name });
    return;
  }
  await p.need(APP_ACTIONS.writeSettings, appArmId(refs, name));
  p.add({
    action: cur && (!current || Object.keys(current).length) ? 'update' : 'create',
    kind: 'appSettings',
    name,
    ...(cur && !current ? { note: 'settings not compared: the caller may not list them' } : {}),
    run: async () => void (await deps.apps.replaceSettings(caller, meta, refs.sub, refs.rg, name, settings)),
  });
}
