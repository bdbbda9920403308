import type { Caller, RequestMeta } from '../access/caller.js';
import { DEFAULT_FEDERATION_AUDIENCE } from '../authority/federation.js';
import type { CredentialKey } from '../management/federated-credentials.js';
import type { ManifestDeps, Refs } from './manifest-refs.js';
import { type JsonPath, type ManifestFederatedCredential, manifestError } from './manifest-schema.js';

export interface PlanItem {
  action: 'create' | 'update' | 'delete' | 'unchanged';
  kind:
    | 'identity'
    | 'federatedCredential'
    | 'applicationFederatedCredential'
    | 'vault'
    | 'app'
    | 'appSettings'
    | 'roleAssignment'
    | 'secret';
  name: string;
  /** Why the item is changed without being compared (e.g. a value the caller may not read). */
  note?: string;
}
export interface Step extends PlanItem {
  run?: () => Promise<void>;
}

/**
 * What the planning step of every kind shares: who asks, where (`refs.sub`,
 * `refs.rg`), and the plan being built. Every item is read before it is
 * compared: a caller who may not read a resource gets the same refusal
 * whether it exists and whatever it holds (no plan answer depends on what it
 * may not read).
 */
export interface Planner {
  deps: ManifestDeps;
  caller: Caller;
  meta: RequestMeta;
  refs: Refs;
  /** Refuses unless the caller may do `action` at `scope`. */
  need(action: string, scope: string): Promise<void>;
  /** A create, update or unchanged step, in manifest order. */
  add(step: Step): void;
  /**
   * The deletion of an existing item declared `absent`, which the caller must be
   * allowed (`action` at `scope`). Deletions run after every other step, the
   * last one declared first.
   */
  remove(step: Omit<Step, 'action'>, action: string, scope: string): Promise<void>;
}

export function createPlanner(
  deps: ManifestDeps,
  caller: Caller,
  meta: RequestMeta,
  refs: Refs,
): Planner & { steps(): Step[] } {
  const steps: Step[] = [];
  const deletions: Step[] = [];
  return {
    deps,
    caller,
    meta,
    refs,
    need: (action, scope) => deps.access.require(caller, action, scope),
    add: (step) => void steps.push(step),
    remove: async (step, action, scope) => {
      await deps.access.require(caller, action, scope);
      deletions.unshift({ action: 'delete', ...step });
    },
    steps: () => [...steps, ...deletions],
  };
}

export const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

type CredentialFields = { issuer: string; subject: string; audiences: string[]; description: string };

/**
 * A declared (present) federated credential, of an identity or an application, as the write
 * takes it; `ManifestInvalid` at `at` without an issuer and a subject.
 */
export function wantedCredential(f: ManifestFederatedCredential, at: JsonPath): CredentialFields {
  if (!f.issuer || !f.subject)
    throw manifestError('ManifestInvalid', at, 'A federated credential needs an issuer and a subject');
  return {
    issuer: f.issuer,
    subject: f.subject,
    audiences: f.audiences ?? [DEFAULT_FEDERATION_AUDIENCE],
    description: f.description ?? '',
  };
}

/** Whether a stored credential (if any) already is as wanted. */
export const sameCredential = (cur: CredentialFields | undefined, want: CredentialFields) =>
  !!cur &&
  sameJson(
    { issuer: cur.issuer, subject: cur.subject, audiences: cur.audiences, description: cur.description },
    want,
  );

export const uaiArmId = (refs: Pick<Refs, 'sub' | 'rg'>, name: string) =>
  `/subscriptions/${refs.sub}/resourceGroups/${refs.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
export const appArmId = (refs: Pick<Refs, 'sub' | 'rg'>, name: string) =>
  `/subscriptions/${refs.sub}/resourceGroups/${refs.rg}/providers/Microsoft.Web/sites/${name}`;

/**
 * Records a planned create or update of credential `name` in `planned` (an owner's credentials as
 * they will be when each write runs: creates and updates in manifest order, deletions after
 * everything else, so a deletion frees neither a place nor an issuer and subject).
 */
export function planCredentialWrite(planned: CredentialKey[], name: string, want: CredentialFields): void {
  const i = planned.findIndex((c) => c.name.toLowerCase() === name.toLowerCase());
  if (i >= 0) planned[i] = { ...planned[i]!, issuer: want.issuer, subject: want.subject };
  else planned.push({ rowId: `planned:${name}`, name, issuer: want.issuer, subject: want.subject });
}
