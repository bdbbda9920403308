import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import { checkIssuerUrl } from '../authority/federation.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { newGuid } from '../lib/ids.js';
import {
  federatedCredentialStore,
  type StoredFederatedCredential,
} from '../storage/management/federated-credential-store.js';
import type { Database } from '../storage/port.js';
import type { UserIdentities, UserIdentity } from './identities.js';
import { auditOf, checkName, resourceNotFound, UAI_TYPE } from './identity-common.js';

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

/** Validates the properties as Azure does, and the issuer against the operator's allow-list. */
function checkInput(input: FederatedCredentialInput, isAllowed: (issuer: string) => boolean) {
  const issuerProblem = checkIssuerUrl(input.issuer);
  if (issuerProblem) throw bad(issuerProblem);
  if (!isAllowed(input.issuer))
    throw bad(
      `The issuer '${input.issuer}' is not on this server's list of allowed federation issuers; an operator adds it to federation.allowedIssuers (LATCHKEY_FEDERATION_ALLOWED_ISSUERS).`,
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
  isAllowedIssuer: (issuer: string) => boolean;
}) {
  const { db, clock, access, audit, userIdentities } = deps;
  const view = (u: UserIdentity, c: StoredFederatedCredential): FederatedCredential => ({
    ...c,
    armId: `${u.armId}/federatedIdentityCredentials/${c.name}`,
  });
  /** The identity, after checking `action` on it (a missing identity is a 404 either way). */
  const identity = async (caller: Caller, sub: string, rg: string, name: string, action: string) => {
    const u = await userIdentities.find(caller.tenantId, sub, rg, name);
    if (!u) throw resourceNotFound(UAI_TYPE, name);
    await access.require(caller, action, u.armId);
    return u;
  };

  return {
    async createOrUpdate(
      caller: Caller,
      meta: RequestMeta,
      path: { sub: string; rg: string; identity: string; name: string },
      input: FederatedCredentialInput,
    ): Promise<{ credential: FederatedCredential; created: boolean }> {
      checkName(
        FIC_NAME_RE,
        path.name,
        'federated identity credential',
        '3–120 letters, digits, hyphens and underscores, starting with a letter or digit.',
      );
      const u = await identity(caller, path.sub, path.rg, path.identity, FIC_ACTIONS.write);
      checkInput(input, deps.isAllowedIssuer);
      const fields = {
        issuer: input.issuer,
        subject: input.subject,
        audiences: [...input.audiences],
        description: input.description ?? '',
      };
      return db.transaction(async (tx) => {
        const existing = await federatedCredentialStore.find(tx, u.rowId, path.name.toLowerCase());
        const now = clock.now();
        const details = { issuer: fields.issuer, subject: fields.subject.slice(0, 200) };
        if (existing) {
          await federatedCredentialStore.update(tx, existing.rowId, { ...fields, updatedAt: now });
          await audit.append(
            tx,
            auditOf(caller, meta, 'FederatedIdentityCredentialUpdate', view(u, existing).armId, details),
          );
          return { credential: view(u, { ...existing, ...fields, updatedAt: now }), created: false };
        }
        if ((await federatedCredentialStore.countByIdentity(tx, u.rowId)) >= MAX_FEDERATED_CREDENTIALS)
          throw bad(`An identity has at most ${MAX_FEDERATED_CREDENTIALS} federated identity credentials.`);
        // Two credentials of one identity with the same issuer and subject would be ambiguous (Azure refuses it too).
        const same = (await federatedCredentialStore.listByIdentity(tx, u.rowId)).find(
          (c) => c.issuer === fields.issuer && c.subject === fields.subject,
        );
        if (same)
          throw bad(`The federated identity credential '${same.name}' already has this issuer and subject.`);
        const stored: StoredFederatedCredential = {
          rowId: newGuid(),
          tenantId: u.tenantId,
          identityId: u.rowId,
          principalId: u.principalId,
          name: path.name,
          ...fields,
          createdAt: now,
          updatedAt: now,
        };
        await federatedCredentialStore.insert(tx, stored);
        await audit.append(
          tx,
          auditOf(caller, meta, 'FederatedIdentityCredentialCreate', view(u, stored).armId, details),
        );
        return { credential: view(u, stored), created: true };
      });
    },
    async get(
      caller: Caller,
      path: { sub: string; rg: string; identity: string; name: string },
    ): Promise<FederatedCredential> {
      const u = await identity(caller, path.sub, path.rg, path.identity, FIC_ACTIONS.read);
      const c = await federatedCredentialStore.find(db, u.rowId, path.name.toLowerCase());
      if (!c) throw resourceNotFound(FIC_TYPE, `${path.identity}/${path.name}`);
      return view(u, c);
    },
    async list(
      caller: Caller,
      path: { sub: string; rg: string; identity: string },
    ): Promise<FederatedCredential[]> {
      const u = await identity(caller, path.sub, path.rg, path.identity, FIC_ACTIONS.read);
      return (await federatedCredentialStore.listByIdentity(db, u.rowId)).map((c) => view(u, c));
    },
    /** False when there was none (ARM answers 204). */
    async delete(
      caller: Caller,
      meta: RequestMeta,
      path: { sub: string; rg: string; identity: string; name: string },
    ): Promise<boolean> {
      const u = await identity(caller, path.sub, path.rg, path.identity, FIC_ACTIONS.delete);
      return db.transaction(async (tx) => {
        const c = await federatedCredentialStore.find(tx, u.rowId, path.name.toLowerCase());
        if (!c) return false;
        await federatedCredentialStore.delete(tx, c.rowId);
        await audit.append(
          tx,
          auditOf(caller, meta, 'FederatedIdentityCredentialDelete', view(u, c).armId, { issuer: c.issuer }),
        );
        return true;
      });
    },
  };
}
export type FederatedCredentials = ReturnType<typeof createFederatedCredentials>;
