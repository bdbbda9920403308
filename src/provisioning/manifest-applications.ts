import { DIRECTORY_ACTIONS } from '../access/roles.js';
import type { ApplicationRef, CredentialKey } from '../management/federated-credentials.js';
import { type Planner, planCredentialWrite, sameCredential, wantedCredential } from './manifest-plan.js';
import {
  checkedAt,
  type JsonPath,
  type ManifestApplication,
  type ManifestFederatedCredential,
  manifestError,
} from './manifest-schema.js';

type Stored = Awaited<ReturnType<Planner['deps']['appFederatedCredentials']['list']>>[number];

/**
 * Existing application registrations' federated credentials (the Graph route's service and
 * permissions: the directory read action at `/` to find the application, the directory
 * credentials action at `/` to change any of its credentials). Credentials the manifest does not
 * name are left alone; the application itself is never created nor deleted.
 */
export async function planApplications(p: Planner, applications: readonly ManifestApplication[]) {
  const { deps, caller } = p;
  const seen = new Set<string>();
  for (const [index, a] of applications.entries()) {
    const at: JsonPath = ['applications', index];
    const appId = a.appId.toLowerCase();
    if (seen.has(appId))
      throw manifestError('ManifestInvalid', [...at, 'appId'], 'The application is declared twice');
    seen.add(appId);
    // Read first, whether or not it exists: a caller who may not read the directory learns nothing.
    await p.need(DIRECTORY_ACTIONS.read, '/');
    const app = await deps.principals.byAppId(caller.tenantId, appId);
    if (app?.kind !== 'servicePrincipal')
      throw manifestError(
        'InvalidReference',
        [...at, 'appId'],
        `No application registration with application (client) id '${appId}' in this tenant`,
      );
    // The credentials as they will be when each write runs (planCredentialWrite).
    const current = await deps.appFederatedCredentials.list(app);
    const planned: CredentialKey[] = [...current];
    const names = new Set<string>();
    for (const [n, f] of a.federatedCredentials.entries()) {
      const path = [...at, 'federatedCredentials', n];
      if (names.has(f.name.toLowerCase()))
        throw manifestError('ManifestInvalid', [...path, 'name'], 'The credential is declared twice');
      names.add(f.name.toLowerCase());
      const stored = current.find((c) => c.name.toLowerCase() === f.name.toLowerCase());
      await planCredential(p, app, `${appId}/${f.name}`, f, { stored, planned }, path);
    }
  }
}

/** One declared credential of an application: compared with the stored one, created, updated or deleted. */
async function planCredential(
  p: Planner,
  app: ApplicationRef,
  name: string,
  f: ManifestFederatedCredential,
  { stored, planned }: { stored: Stored | undefined; planned: CredentialKey[] },
  at: JsonPath,
): Promise<void> {
  const { deps, caller, meta } = p;
  const service = deps.appFederatedCredentials;
  const kind = 'applicationFederatedCredential';
  if (f.state === 'absent') {
    if (!stored) return;
    const run = async () => void (await service.delete(caller, meta, app, stored.rowId));
    await p.remove({ kind, name, run }, DIRECTORY_ACTIONS.credentials, '/');
    return;
  }
  const want = wantedCredential(f, at);
  if (sameCredential(stored, want)) return p.add({ action: 'unchanged', kind, name });
  // Everything the write checks (the issuer allow-lists, the name, at most 20, no two with one
  // issuer and subject), at plan time: a dry run refuses what the apply would, with the same error.
  await checkedAt(at, () => service.check(app, f.name, want, planned));
  await p.need(DIRECTORY_ACTIONS.credentials, '/');
  planCredentialWrite(planned, f.name, want);
  p.add({
    action: stored ? 'update' : 'create',
    kind,
    name,
    run: stored
      ? async () => void (await service.update(caller, meta, app, stored.rowId, want))
      : async () => void (await service.create(caller, meta, app, f.name, want)),
  });
}
