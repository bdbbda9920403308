import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import { DIRECTORY_ACTIONS } from '../access/roles.js';
import type { AuditLog } from '../audit/log.js';
import { checkIssuerUrl } from '../authority/federation.js';
import type { TenantIssuers } from '../authority/tenant-issuers.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { newGuid } from '../lib/ids.js';
import {
  federatedCredentialStore,
  type OwnedFederatedCredentialStore,
  type StoredFederatedCredential,
} from '../storage/management/federated-credential-store.js';
import type { Database } from '../storage/port.js';
import type { UserIdentities, UserIdentity } from './identities.js';
import { auditOf, checkName, readableAt, resourceNotFound, UAI_TYPE } from './identity-common.js';

export const FIC_TYPE = `${UAI_TYPE}/federatedIdentityCredentials`;
/** Azure: 3–120 characters, letters, digits, hyphens and underscores, starting with a letter or digit. */
export const FIC_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$/;
/** Azure's limit of federated identity credentials per identity. */
export const MAX_FEDERATED_CREDENTIALS = 20;
const MAX_FIELD = 600;
/** Azure's actions (Managed Identity Contributor has them through `userAssignedIdentities/*`; Operator only reads). */
export const FIC_ACTIONS = {
  read: `${FIC_TYPE}/read`,
  write: `${FIC_TYPE}/write`,
  delete: `${FIC_TYPE}/delete`,
} as const;

export interface FederatedCredential extends StoredFederatedCredential {
  armId: string;
}

export interface FederatedCredentialInput {
  issuer: string;
  subject: string;
  audiences: string[];
  description?: string;
}

/** Azure's limit is per owner: at most 20 on an identity, at most 20 on an application. */
const LIMIT_MESSAGE = {
  identity: `An identity has at most ${MAX_FEDERATED_CREDENTIALS} federated identity credentials.`,
  application: `An application has at most ${MAX_FEDERATED_CREDENTIALS} federated identity credentials.`,
} as const;

/** The ARM JSON of a federated identity credential (api-version 2023-01-31). */
export const federatedCredentialView = (c: FederatedCredential) => ({
  id: c.armId,
  name: c.name,
  type: FIC_TYPE,
  properties: {
    issuer: c.issuer,
    subject: c.subject,
    audiences: c.audiences,
    ...(c.description ? { description: c.description } : {}),
  },
});

/** Control characters (C0 and DEL), which no issuer, subject or audience contains. */
const hasControl = (v: string) => [...v].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);
const bad = (message: string) => new LatchkeyError('BadParameter', message);

/** Who says which issuers a tenant's credentials may name (the server's list, narrowed per tenant). */
export type IssuerPolicy = Pick<TenantIssuers, 'refusal'>;

/**
 * Validates the properties as Azure does, and the issuer against the operator's allow-list and
 * the tenant's narrowing of it.
 */
async function checkInput(input: FederatedCredentialInput, tenantId: string, issuers: IssuerPolicy) {
  const issuerProblem = checkIssuerUrl(input.issuer);
  if (issuerProblem) throw bad(issuerProblem);
  const refusal = await issuers.refusal(tenantId, input.issuer);
  if (refusal === 'server')
    throw bad(
      `The issuer '${input.issuer}' is not on this server's list of allowed federation issuers; an operator adds it to federation.allowedIssuers (LATCHKEY_FEDERATION_ALLOWED_ISSUERS).`,
    );
  if (refusal === 'tenant')
    throw bad(
      `The issuer '${input.issuer}' is not on this tenant's list of allowed federation issuers; a tenant admin adds it (latchkey tenant federation-issuers set).`,
    );
  if (input.subject.length < 1 || input.subject.length > MAX_FIELD || hasControl(input.subject))
    throw bad('The subject must be 1–600 printable characters.');
  if (input.audiences.length !== 1)
    throw bad('Exactly one audience is required (e.g. api://AzureADTokenExchange).');
  const aud = input.audiences[0]!;
  if (aud.length < 1 || aud.length > MAX_FIELD || hasControl(aud))
    throw bad('The audience must be 1–600 printable characters.');
  if ((input.description ?? '').length > MAX_FIELD)
    throw bad('The description must be at most 600 characters.');
}

/** One owner of credentials (an identity or an application), as the shared write path needs it. */
interface Owner {
  kind: 'identity' | 'application';
  store: OwnedFederatedCredentialStore;
  tenantId: string;
  principalId: string;
  identityId: string;
  /** The audit target (and ARM id) of one of its credentials. */
  target: (c: StoredFederatedCredential) => string;
}

const fieldsOf = (input: FederatedCredentialInput) => ({
  issuer: input.issuer,
  subject: input.subject,
  audiences: [...input.audiences],
  description: input.description ?? '',
});

/** The part of a credential the owner-wide rules look at. */
export type CredentialKey = Pick<StoredFederatedCredential, 'rowId' | 'name' | 'issuer' | 'subject'>;

/**
 * The rules over all of one owner's credentials a write must keep, given them as they are before
 * it (`existingRowId`: the one being replaced, if any): no two with the same issuer and subject
 * (ambiguous; Azure refuses it too), and at most 20 (a create only).
 */
function ownerRuleProblem(
  kind: 'identity' | 'application',
  current: readonly CredentialKey[],
  fields: Pick<FederatedCredentialInput, 'issuer' | 'subject'>,
  existingRowId?: string,
): LatchkeyError | undefined {
  const same = current.find(
    (c) => c.issuer === fields.issuer && c.subject === fields.subject && c.rowId !== existingRowId,
  );
  if (same)
    return bad(`The federated identity credential '${same.name}' already has this issuer and subject.`);
  if (existingRowId === undefined && current.length >= MAX_FEDERATED_CREDENTIALS)
    return bad(LIMIT_MESSAGE[kind]);
  return undefined;
}

/**
 * The write path both owners share: validation (Azure's rules, the issuer allow-list), at most 20
 * per owner, no two with the same issuer and subject, and the change audited in its transaction.
 * `existing` undefined creates; otherwise that credential is replaced by `input`.
 */
function writer(deps: { db: Database; clock: Clock; audit: AuditLog; issuers: IssuerPolicy }) {
  const { audit } = deps;
  return {
    async save(
      caller: Caller,
      meta: RequestMeta,
      owner: Owner,
      name: string,
      input: FederatedCredentialInput,
      existingName?: string,
    ): Promise<{ credential: StoredFederatedCredential; created: boolean }> {
      await checkInput(input, owner.tenantId, deps.issuers);
      const fields = fieldsOf(input);
      return deps.db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        const existing = await owner.store.find(tx, (existingName ?? name).toLowerCase());
        const now = deps.clock.now();
        const details = { issuer: fields.issuer, subject: fields.subject.slice(0, 200) };
        const problem = ownerRuleProblem(owner.kind, await owner.store.list(tx), fields, existing?.rowId);
        if (problem) throw problem;
        if (existing) {
          await owner.store.update(tx, existing.rowId, { ...fields, updatedAt: now });
          await audit.append(
            tx,
            auditOf(caller, meta, 'FederatedIdentityCredentialUpdate', owner.target(existing), details),
          );
          return { credential: { ...existing, ...fields, updatedAt: now }, created: false };
        }
        const stored: StoredFederatedCredential = {
          rowId: newGuid(),
          tenantId: owner.tenantId,
          identityId: owner.identityId,
          principalId: owner.principalId,
          name,
          ...fields,
          createdAt: now,
          updatedAt: now,
        };
        await owner.store.insert(tx, stored);
        await audit.append(
          tx,
          auditOf(caller, meta, 'FederatedIdentityCredentialCreate', owner.target(stored), details),
        );
        return { credential: stored, created: true };
      });
    },
    /** False when there was none. */
    async remove(
      caller: Caller,
      meta: RequestMeta,
      owner: Owner,
      c: StoredFederatedCredential,
    ): Promise<boolean> {
      return deps.db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        if (!(await owner.store.delete(tx, c.rowId))) return false;
        await audit.append(
          tx,
          auditOf(caller, meta, 'FederatedIdentityCredentialDelete', owner.target(c), { issuer: c.issuer }),
        );
        return true;
      });
    },
  };
}

const checkFicName = (name: string) =>
  checkName(
    FIC_NAME_RE,
    name,
    'federated identity credential',
    '3–120 letters, digits, hyphens and underscores, starting with a letter or digit.',
  );

/** Every check a write of credential `name` makes, given the owner's credentials as they will be then. */
async function checkWrite(
  kind: 'identity' | 'application',
  tenantId: string,
  name: string,
  input: FederatedCredentialInput,
  current: readonly CredentialKey[],
  issuers: IssuerPolicy,
): Promise<void> {
  checkFicName(name);
  await checkInput(input, tenantId, issuers);
  const existing = current.find((c) => c.name.toLowerCase() === name.toLowerCase());
  const problem = ownerRuleProblem(kind, current, input, existing?.rowId);
  if (problem) throw problem;
}

/**
 * Federated identity credentials of user-assigned identities
 * (`.../userAssignedIdentities/{name}/federatedIdentityCredentials/{fic}`). Reading needs read on
 * the identity, changing needs write on it (Managed Identity Contributor), as in Azure. A deleted
 * credential is gone from the next exchange: the token endpoint reads them from storage every time.
 */
export function createFederatedCredentials(deps: {
  db: Database;
  clock: Clock;
  access: Access;
  audit: AuditLog;
  userIdentities: UserIdentities;
  issuers: IssuerPolicy;
}) {
  const { db, access, userIdentities } = deps;
  const write = writer(deps);
  const view = (u: UserIdentity, c: StoredFederatedCredential): FederatedCredential => ({
    ...c,
    armId: `${u.armId}/federatedIdentityCredentials/${c.name}`,
  });
  const ownerOf = (u: UserIdentity): Owner => ({
    kind: 'identity',
    store: federatedCredentialStore.ownedBy({ kind: 'identity', identityId: u.rowId }),
    tenantId: u.tenantId,
    principalId: u.principalId,
    identityId: u.rowId,
    target: (c) => view(u, c).armId,
  });
  /**
   * The identity, after checking `action` at it as named (before the lookup: a caller who may not
   * act there hears 403 whether or not it exists); then 404 when there is none.
   */
  const identity = (caller: Caller, sub: string, rg: string, name: string, action: string) =>
    readableAt(access, caller, action, UAI_TYPE, userIdentities.find, [sub, rg, name]);

  return {
    /**
     * The checks `createOrUpdate` makes before it writes (name, Azure's rules, the issuer
     * allow-list, at most 20, no two with one issuer and subject) against `current`, the
     * identity's credentials as they will be then, without writing: a manifest's dry run refuses
     * what its apply would refuse.
     */
    check: (
      tenantId: string,
      name: string,
      input: FederatedCredentialInput,
      current: readonly CredentialKey[],
    ): Promise<void> => checkWrite('identity', tenantId, name, input, current, deps.issuers),
    async createOrUpdate(
      caller: Caller,
      meta: RequestMeta,
      path: { sub: string; rg: string; identity: string; name: string },
      input: FederatedCredentialInput,
    ): Promise<{ credential: FederatedCredential; created: boolean }> {
      checkFicName(path.name);
      const u = await identity(caller, path.sub, path.rg, path.identity, FIC_ACTIONS.write);
      const r = await write.save(caller, meta, ownerOf(u), path.name, input);
      return { credential: view(u, r.credential), created: r.created };
    },
    async get(
      caller: Caller,
      path: { sub: string; rg: string; identity: string; name: string },
    ): Promise<FederatedCredential> {
      const u = await identity(caller, path.sub, path.rg, path.identity, FIC_ACTIONS.read);
      const c = await ownerOf(u).store.find(db, path.name.toLowerCase());
      if (!c) throw resourceNotFound(FIC_TYPE, `${path.identity}/${path.name}`);
      return view(u, c);
    },
    async list(
      caller: Caller,
      path: { sub: string; rg: string; identity: string },
    ): Promise<FederatedCredential[]> {
      const u = await identity(caller, path.sub, path.rg, path.identity, FIC_ACTIONS.read);
      return (await ownerOf(u).store.list(db)).map((c) => view(u, c));
    },
    /** False when there was none (ARM answers 204). */
    async delete(
      caller: Caller,
      meta: RequestMeta,
      path: { sub: string; rg: string; identity: string; name: string },
    ): Promise<boolean> {
      const u = await identity(caller, path.sub, path.rg, path.identity, FIC_ACTIONS.delete);
      const owner = ownerOf(u);
      const c = await owner.store.find(db, path.name.toLowerCase());
      return c ? write.remove(caller, meta, owner, c) : false;
    },
  };
}
export type FederatedCredentials = ReturnType<typeof createFederatedCredentials>;

/** An application registration's principal as the application credentials need it. */
export interface ApplicationRef {
  id: string;
  tenantId: string;
}

/**
 * Federated identity credentials of application registrations (Graph
 * `/v1.0/applications/{id}/federatedIdentityCredentials`). The Graph route finds the application
 * (a 404 for one the caller may not read); changing needs the directory's credentials action at
 * `/` (as adding a password does). The application's own client id exchanges the tokens.
 */
export function createAppFederatedCredentials(deps: {
  db: Database;
  clock: Clock;
  access: Access;
  audit: AuditLog;
  issuers: IssuerPolicy;
}) {
  const { db, access } = deps;
  const write = writer(deps);
  const ownerOf = (app: ApplicationRef): Owner => ({
    kind: 'application',
    store: federatedCredentialStore.ownedBy({ kind: 'application', principalId: app.id }),
    tenantId: app.tenantId,
    principalId: app.id,
    identityId: '',
    target: (c) => `/applications/${app.id}/federatedIdentityCredentials/${c.rowId}`,
  });
  const notFound = (ref: string) =>
    new LatchkeyError(
      'Request_ResourceNotFound',
      `Resource '${ref.slice(0, 128)}' does not exist or one of its queried reference-property objects are not present.`,
    );
  /** By id (as Graph) or by name (as az's --federated-credential-id accepts). */
  const find = async (app: ApplicationRef, ref: string) => {
    const store = ownerOf(app).store;
    const c = (await store.findById(db, ref.toLowerCase())) ?? (await store.find(db, ref.toLowerCase()));
    if (!c) throw notFound(ref);
    return c;
  };
  return {
    list: (app: ApplicationRef) => ownerOf(app).store.list(db),
    get: find,
    /**
     * Every check `create` or `update` makes before it writes (the name, Azure's rules, the issuer
     * allow-list, at most 20, no two with one issuer and subject), against `current`: the
     * application's credentials as they will be when the write runs. Writes nothing, so a
     * manifest's dry run refuses what its apply would refuse, with the same error.
     */
    check: (
      app: ApplicationRef,
      name: string,
      input: FederatedCredentialInput,
      current: readonly CredentialKey[],
    ): Promise<void> => checkWrite('application', app.tenantId, name, input, current, deps.issuers),
    async create(
      caller: Caller,
      meta: RequestMeta,
      app: ApplicationRef,
      name: string,
      input: FederatedCredentialInput,
    ): Promise<StoredFederatedCredential> {
      checkFicName(name);
      await access.require(caller, DIRECTORY_ACTIONS.credentials, '/');
      const owner = ownerOf(app);
      if (await owner.store.find(db, name.toLowerCase()))
        throw new LatchkeyError(
          'Request_BadRequest',
          `A federated identity credential named '${name}' already exists on this application.`,
        );
      return (await write.save(caller, meta, owner, name, input)).credential;
    },
    /** Graph's PATCH: the given properties change; the name cannot. */
    async update(
      caller: Caller,
      meta: RequestMeta,
      app: ApplicationRef,
      ref: string,
      patch: Partial<FederatedCredentialInput>,
    ): Promise<StoredFederatedCredential> {
      await access.require(caller, DIRECTORY_ACTIONS.credentials, '/');
      const c = await find(app, ref);
      const input = {
        issuer: patch.issuer ?? c.issuer,
        subject: patch.subject ?? c.subject,
        audiences: patch.audiences ?? c.audiences,
        description: patch.description ?? c.description,
      };
      return (await write.save(caller, meta, ownerOf(app), c.name, input, c.name)).credential;
    },
    async delete(caller: Caller, meta: RequestMeta, app: ApplicationRef, ref: string): Promise<void> {
      await access.require(caller, DIRECTORY_ACTIONS.credentials, '/');
      const c = await find(app, ref);
      if (!(await write.remove(caller, meta, ownerOf(app), c))) throw notFound(ref);
    },
  };
}
export type AppFederatedCredentials = ReturnType<typeof createAppFederatedCredentials>;
