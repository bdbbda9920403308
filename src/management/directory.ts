import { type Caller, callerEvent, type RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import { DIRECTORY_ACTIONS } from '../access/roles.js';
import type { AuditInput, AuditLog } from '../audit/log.js';
import type { CredentialInfo, Credentials } from '../authority/credentials.js';
import type { Principal, Principals } from '../authority/principals.js';
import type { Tenants } from '../authority/tenants.js';
import type { TokenEndpoint } from '../authority/token-endpoint.js';
import { generatePassword } from '../crypto/hashing.js';
import { LatchkeyError } from '../errors/index.js';
import type { Database, Transaction } from '../storage/port.js';

/** The directory's actions (defined with the roles, in access/); re-exported for the directory's routes. */
export { DIRECTORY_ACTIONS };

/** What Graph's users and service principals both show. */
interface DirectoryObjectView {
  id: string;
  displayName: string;
  accountEnabled: boolean;
  createdDateTime: string;
}

export interface ServicePrincipalView extends DirectoryObjectView {
  appId: string;
  servicePrincipalType: 'Application' | 'ManagedIdentity';
  appOwnerOrganizationId: string;
  identifierUris: string[];
  alternativeNames: string[];
  /** A native app: browser sign-in of users to a loopback redirect URI, no client secret. */
  publicClient: boolean;
}

export const spView = (p: Principal): ServicePrincipalView => ({
  id: p.id,
  appId: p.appId ?? '',
  displayName: p.displayName,
  servicePrincipalType: p.kind === 'managedIdentity' ? 'ManagedIdentity' : 'Application',
  accountEnabled: p.enabled,
  appOwnerOrganizationId: p.tenantId,
  identifierUris: p.identifierUri ? [p.identifierUri] : [],
  alternativeNames: p.resourceId ? [p.resourceId] : [],
  publicClient: p.publicClient,
  createdDateTime: new Date(p.createdAt).toISOString(),
});

export interface UserView extends DirectoryObjectView {
  userPrincipalName: string;
}

export const userView = (p: Principal): UserView => ({
  id: p.id,
  userPrincipalName: p.userName ?? '',
  displayName: p.displayName,
  accountEnabled: p.enabled,
  createdDateTime: new Date(p.createdAt).toISOString(),
});

type CredentialInput =
  | { type: 'Password'; displayName?: string; years?: number; days?: number }
  | { type: 'AsymmetricX509Cert'; certificate: string; displayName?: string };

/** Service principals and their credentials, for administrators (management API and CLI). */
export function createDirectory(deps: {
  db: Database;
  tenants: Tenants;
  principals: Principals;
  credentials: Credentials;
  access: Access;
  audit: AuditLog;
  tokenEndpoint: TokenEndpoint;
}) {
  const { db, principals, credentials, access, audit } = deps;
  const record = (
    caller: Caller,
    meta: RequestMeta,
    operation: string,
    target: string | null,
    status = 200,
  ) => callerEvent(caller, meta, { operation, target, status });
  /** Runs `change` and appends the caller's audit record of it, in one transaction. */
  const audited = <T>(
    caller: Caller,
    meta: RequestMeta,
    what: { operation: string; target: string; details?: (r: T) => AuditInput['details'] },
    change: (tx: Transaction) => Promise<T>,
  ): Promise<T> =>
    db.transaction(async (tx) => {
      await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
      const r = await change(tx);
      await audit.append(tx, {
        ...record(caller, meta, what.operation, what.target),
        ...(what.details ? { details: what.details(r) } : {}),
      });
      return r;
    });
  /** The service principal, once the caller may do `action` in the directory; 404 for none (or a user). */
  const findSp = async (caller: Caller, idOrAppId: string, action: string): Promise<Principal> => {
    await access.require(caller, action, '/');
    const p = await principals.resolve(caller.tenantId, idOrAppId);
    if (!p || p.kind === 'user') {
      throw new LatchkeyError(
        'PrincipalNotFound',
        `Service principal '${idOrAppId.slice(0, 64)}' was not found.`,
      );
    }
    return p;
  };

  /** A managed identity's principal is the platform's: `why` refuses changing it directly. */
  const notManaged = (sp: Principal, why: string): void => {
    if (sp.kind === 'managedIdentity') throw new LatchkeyError('BadRequest', why);
  };

  /** The user, by object id or user name (no access check: the caller does it first). */
  const findUser = async (caller: Caller, idOrName: string): Promise<Principal> => {
    const p =
      (await principals.resolve(caller.tenantId, idOrName)) ??
      (await principals.byUserName(caller.tenantId, idOrName))?.principal;
    if (p?.kind !== 'user')
      throw new LatchkeyError('PrincipalNotFound', `User '${idOrName.slice(0, 64)}' was not found.`);
    return p;
  };
  /** The user, once the caller may do `action` in the directory (decided before the lookup). */
  const userFor = async (caller: Caller, idOrName: string, action: string): Promise<Principal> => {
    await access.require(caller, action, '/');
    return findUser(caller, idOrName);
  };
  /** Nobody disables or deletes their own account (a console or CLI session would lock its owner out). */
  const notSelf = (caller: Caller, p: Principal, what: string) => {
    if (caller.oid === p.id)
      throw new LatchkeyError(
        'BadRequest',
        `You cannot ${what} your own account; ask another administrator.`,
      );
  };

  const users = {
    async list(caller: Caller): Promise<UserView[]> {
      await access.require(caller, DIRECTORY_ACTIONS.usersRead, '/');
      return (await principals.list(caller.tenantId, 'user')).map(userView);
    },
    async show(caller: Caller, idOrName: string): Promise<UserView> {
      return userView(await userFor(caller, idOrName, DIRECTORY_ACTIONS.usersRead));
    },
    /** Creates a user; without a password one is generated and returned (shown once). */
    async create(
      caller: Caller,
      meta: RequestMeta,
      input: { userName: string; displayName: string; password?: string },
    ): Promise<{ user: UserView; password?: string }> {
      await access.require(caller, DIRECTORY_ACTIONS.users, '/');
      const password = input.password ?? generatePassword();
      return db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        const p = await principals.createUser(
          caller.tenantId,
          { userName: input.userName, displayName: input.displayName, password },
          tx,
        );
        await audit.append(tx, record(caller, meta, 'UserCreate', p.id));
        return { user: userView(p), ...(input.password === undefined ? { password } : {}) };
      });
    },
    async setEnabled(
      caller: Caller,
      meta: RequestMeta,
      idOrName: string,
      enabled: boolean,
    ): Promise<UserView> {
      const u = await userFor(caller, idOrName, DIRECTORY_ACTIONS.users);
      if (!enabled) notSelf(caller, u, 'disable');
      const operation = enabled ? 'UserEnable' : 'UserDisable';
      return audited(caller, meta, { operation, target: u.id }, async (tx) =>
        userView(await principals.setEnabled(caller.tenantId, u.id, enabled, tx)),
      );
    },
    /**
     * Sets a new password (generated and returned when none is given) and ends the user's sign-in
     * sessions (refresh tokens, console sessions). Access tokens already issued stay valid until
     * they expire, as in Entra ID.
     */
    async resetPassword(
      caller: Caller,
      meta: RequestMeta,
      idOrName: string,
      password?: string,
    ): Promise<{ password?: string }> {
      const u = await userFor(caller, idOrName, DIRECTORY_ACTIONS.users);
      const next = password ?? generatePassword();
      await audited(caller, meta, { operation: 'UserPasswordReset', target: u.id }, (tx) =>
        principals.setPassword(caller.tenantId, u.id, next, tx),
      );
      return password === undefined ? { password: next } : {};
    },
    /**
     * Graph's `revokeSignInSessions`: ends the user's refresh tokens and console sessions, and
     * refuses codes from an earlier sign-in. Users may revoke their own; anyone else needs
     * `users/write` (what a password reset needs).
     */
    async revokeSignInSessions(caller: Caller, meta: RequestMeta, idOrName: string): Promise<void> {
      // Access is decided before the user is looked up, so a refusal tells nothing about who exists.
      const own = caller.kind === 'user' ? await principals.get(caller.tenantId, caller.oid) : undefined;
      const self =
        own !== undefined && (own.id === idOrName.toLowerCase() || own.userName === idOrName.toLowerCase());
      if (!self) await access.require(caller, DIRECTORY_ACTIONS.users, '/');
      const u = self ? own : await findUser(caller, idOrName);
      await audited(caller, meta, { operation: 'UserRevokeSignInSessions', target: u.id }, (tx) =>
        principals.revokeSignInSessions(caller.tenantId, u.id, tx),
      );
    },
    async delete(caller: Caller, meta: RequestMeta, idOrName: string): Promise<void> {
      const u = await userFor(caller, idOrName, DIRECTORY_ACTIONS.usersDelete);
      notSelf(caller, u, 'delete');
      await audited(caller, meta, { operation: 'UserDelete', target: u.id }, (tx) =>
        principals.delete(caller.tenantId, u.id, tx),
      );
    },
  };

  return {
    users,
    /**
     * Principals whose display name, user name, object id or client id contains
     * `term` (case-insensitive), at most `limit`, of the kinds the caller may
     * read: users with `users/read`, applications and managed identities with
     * `servicePrincipals/read`. Refused (403, naming `users/read`) when the caller
     * may read neither, so no name is ever shown to someone who may not see it.
     */
    /**
     * The principals of these object ids that the caller may read in the directory (users with
     * `users/read`, applications and identities with `servicePrincipals/read`; always the caller
     * itself); the others are left out, as if they did not exist. At most `limit` ids are looked up.
     */
    async readable(caller: Caller, ids: Iterable<string>, limit = 200): Promise<Principal[]> {
      const may = {
        users: await access.allows(caller, DIRECTORY_ACTIONS.usersRead, '/'),
        others: await access.allows(caller, DIRECTORY_ACTIONS.read, '/'),
      };
      const out: Principal[] = [];
      for (const id of [...new Set(ids)].slice(0, limit)) {
        const p = await principals.get(caller.tenantId, id);
        if (p && (p.id === caller.oid || (p.kind === 'user' ? may.users : may.others))) out.push(p);
      }
      return out;
    },
    async search(
      caller: Caller,
      term: string,
      limit = 20,
    ): Promise<{ principals: Principal[]; kinds: { users: boolean; servicePrincipals: boolean } }> {
      const kinds = {
        users: await access.allows(caller, DIRECTORY_ACTIONS.usersRead, '/'),
        servicePrincipals: await access.allows(caller, DIRECTORY_ACTIONS.read, '/'),
      };
      if (!kinds.users && !kinds.servicePrincipals)
        await access.require(caller, DIRECTORY_ACTIONS.usersRead, '/');
      const needle = term.trim().toLowerCase().slice(0, 100);
      const max = Math.min(Math.max(limit, 1), 50);
      const out: Principal[] = [];
      if (!needle) return { principals: out, kinds };
      for (const p of await principals.list(caller.tenantId)) {
        if (p.kind === 'user' ? !kinds.users : !kinds.servicePrincipals) continue;
        const hay = [p.displayName, p.userName, p.id, p.appId].filter((x): x is string => !!x);
        if (!hay.some((x) => x.toLowerCase().includes(needle))) continue;
        out.push(p);
        if (out.length >= max) break;
      }
      return { principals: out, kinds };
    },
    async list(caller: Caller): Promise<ServicePrincipalView[]> {
      await access.require(caller, DIRECTORY_ACTIONS.read, '/');
      const all = await principals.list(caller.tenantId);
      return all.filter((p) => p.kind !== 'user').map(spView);
    },
    async show(caller: Caller, idOrAppId: string): Promise<ServicePrincipalView> {
      return spView(await findSp(caller, idOrAppId, DIRECTORY_ACTIONS.read));
    },
    /** Creates a service principal and (by default) its first client secret, shown once. */
    async create(
      caller: Caller,
      meta: RequestMeta,
      input: {
        displayName: string;
        identifierUri?: string | null;
        /** A native app (no secret): signs users in through the browser to a loopback redirect URI. */
        publicClient?: boolean;
        credential?: CredentialInput | null;
      },
    ): Promise<{
      servicePrincipal: ServicePrincipalView;
      credential: (CredentialInfo & { secretText?: string }) | null;
    }> {
      await access.require(caller, DIRECTORY_ACTIONS.write, '/');
      return db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        const sp = await principals.createServicePrincipal(
          caller.tenantId,
          {
            displayName: input.displayName,
            identifierUri: input.identifierUri ?? null,
            publicClient: input.publicClient ?? false,
          },
          tx,
        );
        let credential: (CredentialInfo & { secretText?: string }) | null = null;
        // A public client gets no secret unless one is asked for (it could not keep it).
        const c: CredentialInput | null =
          input.credential === undefined
            ? input.publicClient
              ? null
              : { type: 'Password' }
            : input.credential;
        if (c?.type === 'Password') credential = await credentials.addSecret(caller.tenantId, sp.id, c, tx);
        else if (c?.type === 'AsymmetricX509Cert') {
          credential = await credentials.addCertificate(caller.tenantId, sp.id, c.certificate, c, tx);
        }
        await audit.append(tx, record(caller, meta, 'ServicePrincipalCreate', sp.id));
        return { servicePrincipal: spView(sp), credential };
      });
    },
    async setEnabled(
      caller: Caller,
      meta: RequestMeta,
      idOrAppId: string,
      enabled: boolean,
    ): Promise<ServicePrincipalView> {
      const sp = await findSp(caller, idOrAppId, DIRECTORY_ACTIONS.write);
      const operation = enabled ? 'ServicePrincipalEnable' : 'ServicePrincipalDisable';
      return audited(caller, meta, { operation, target: sp.id }, async (tx) =>
        spView(await principals.setEnabled(caller.tenantId, sp.id, enabled, tx)),
      );
    },
    async delete(caller: Caller, meta: RequestMeta, idOrAppId: string): Promise<void> {
      const sp = await findSp(caller, idOrAppId, DIRECTORY_ACTIONS.delete);
      notManaged(sp, 'A managed identity is deleted with its resource, not directly.');
      await audited(caller, meta, { operation: 'ServicePrincipalDelete', target: sp.id }, (tx) =>
        principals.delete(caller.tenantId, sp.id, tx),
      );
    },
    async listCredentials(caller: Caller, idOrAppId: string): Promise<CredentialInfo[]> {
      const sp = await findSp(caller, idOrAppId, DIRECTORY_ACTIONS.read);
      return credentials.list(caller.tenantId, sp.id);
    },
    /** `az ad sp credential reset`: adds a credential, replacing the others unless `append`. */
    async resetCredential(
      caller: Caller,
      meta: RequestMeta,
      idOrAppId: string,
      input: CredentialInput & { append?: boolean },
    ): Promise<CredentialInfo & { secretText?: string }> {
      const sp = await findSp(caller, idOrAppId, DIRECTORY_ACTIONS.credentials);
      notManaged(sp, 'The credentials of a managed identity are managed by the platform.');
      const reset = {
        operation: 'ServicePrincipalCredentialReset',
        target: sp.id,
        details: (c: CredentialInfo) => ({ keyId: c.keyId, type: c.type, append: !!input.append }),
      };
      return audited(caller, meta, reset, async (tx) => {
        if (!input.append) await credentials.deleteAll(caller.tenantId, sp.id, tx);
        return input.type === 'Password'
          ? credentials.addSecret(caller.tenantId, sp.id, input, tx)
          : credentials.addCertificate(caller.tenantId, sp.id, input.certificate, input, tx);
      });
    },
    async deleteCredential(
      caller: Caller,
      meta: RequestMeta,
      idOrAppId: string,
      keyId: string,
    ): Promise<void> {
      const sp = await findSp(caller, idOrAppId, DIRECTORY_ACTIONS.credentials);
      // A host's or an app identity's certificates are the platform's, as for a reset: deleting a
      // host's own would cut it off for good (it renews them with them).
      notManaged(sp, 'The credentials of a managed identity are managed by the platform.');
      const operation = 'ServicePrincipalCredentialDelete';
      await audited(caller, meta, { operation, target: sp.id, details: () => ({ keyId }) }, (tx) =>
        credentials.delete(caller.tenantId, sp.id, keyId, tx),
      );
    },
  };
}
export type Directory = ReturnType<typeof createDirectory>;
