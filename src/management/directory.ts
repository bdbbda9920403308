import { randomBytes } from 'node:crypto';
import { type Caller, callerEvent, type RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import { DIRECTORY_ACTIONS } from '../access/roles.js';
import type { AuditLog } from '../audit/log.js';
import type { CredentialInfo, Credentials } from '../authority/credentials.js';
import type { Principal, Principals } from '../authority/principals.js';
import type { Tenants } from '../authority/tenants.js';
import type { TokenEndpoint } from '../authority/token-endpoint.js';
import { LatchkeyError } from '../errors/index.js';
import type { Database } from '../storage/port.js';

/** The directory's actions (defined with the roles, in access/); re-exported for the directory's routes. */
export { DIRECTORY_ACTIONS };

export interface ServicePrincipalView {
  id: string;
  appId: string;
  displayName: string;
  servicePrincipalType: 'Application' | 'ManagedIdentity';
  accountEnabled: boolean;
  appOwnerOrganizationId: string;
  identifierUris: string[];
  alternativeNames: string[];
  /** A native app: browser sign-in of users to a loopback redirect URI, no client secret. */
  publicClient: boolean;
  createdDateTime: string;
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

export interface UserView {
  id: string;
  userPrincipalName: string;
  displayName: string;
  accountEnabled: boolean;
  createdDateTime: string;
}

export const userView = (p: Principal): UserView => ({
  id: p.id,
  userPrincipalName: p.userName ?? '',
  displayName: p.displayName,
  accountEnabled: p.enabled,
  createdDateTime: new Date(p.createdAt).toISOString(),
});

/** A password for a new user or a reset: 24 characters from 192 random bits (shown once). */
const generatePassword = () => randomBytes(18).toString('base64url');

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
  const findSp = async (caller: Caller, idOrAppId: string): Promise<Principal> => {
    const p = await principals.resolve(caller.tenantId, idOrAppId);
    if (!p || p.kind === 'user') {
      throw new LatchkeyError(
        'PrincipalNotFound',
        `Service principal '${idOrAppId.slice(0, 64)}' was not found.`,
      );
    }
    return p;
  };

  const findUser = async (caller: Caller, idOrName: string): Promise<Principal> => {
    const p =
      (await principals.resolve(caller.tenantId, idOrName)) ??
      (await principals.byUserName(caller.tenantId, idOrName))?.principal;
    if (p?.kind !== 'user')
      throw new LatchkeyError('PrincipalNotFound', `User '${idOrName.slice(0, 64)}' was not found.`);
    return p;
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
      await access.require(caller, DIRECTORY_ACTIONS.usersRead, '/');
      return userView(await findUser(caller, idOrName));
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
      await access.require(caller, DIRECTORY_ACTIONS.users, '/');
      const u = await findUser(caller, idOrName);
      if (!enabled) notSelf(caller, u, 'disable');
      return db.transaction(async (tx) => {
        const p = await principals.setEnabled(caller.tenantId, u.id, enabled, tx);
        await audit.append(tx, record(caller, meta, enabled ? 'UserEnable' : 'UserDisable', u.id));
        return userView(p);
      });
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
      await access.require(caller, DIRECTORY_ACTIONS.users, '/');
      const u = await findUser(caller, idOrName);
      const next = password ?? generatePassword();
      await db.transaction(async (tx) => {
        await principals.setPassword(caller.tenantId, u.id, next, tx);
        await audit.append(tx, record(caller, meta, 'UserPasswordReset', u.id));
      });
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
      await db.transaction(async (tx) => {
        await principals.revokeSignInSessions(caller.tenantId, u.id, tx);
        await audit.append(tx, record(caller, meta, 'UserRevokeSignInSessions', u.id));
      });
    },
    async delete(caller: Caller, meta: RequestMeta, idOrName: string): Promise<void> {
      await access.require(caller, DIRECTORY_ACTIONS.usersDelete, '/');
      const u = await findUser(caller, idOrName);
      notSelf(caller, u, 'delete');
      await db.transaction(async (tx) => {
        await principals.delete(caller.tenantId, u.id, tx);
        await audit.append(tx, record(caller, meta, 'UserDelete', u.id));
      });
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
      await access.require(caller, DIRECTORY_ACTIONS.read, '/');
      return spView(await findSp(caller, idOrAppId));
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
      await access.require(caller, DIRECTORY_ACTIONS.write, '/');
      const sp = await findSp(caller, idOrAppId);
      return db.transaction(async (tx) => {
        const p = await principals.setEnabled(caller.tenantId, sp.id, enabled, tx);
        await audit.append(
          tx,
          record(caller, meta, enabled ? 'ServicePrincipalEnable' : 'ServicePrincipalDisable', sp.id),
        );
        return spView(p);
      });
    },
    async delete(caller: Caller, meta: RequestMeta, idOrAppId: string): Promise<void> {
      await access.require(caller, DIRECTORY_ACTIONS.delete, '/');
      const sp = await findSp(caller, idOrAppId);
      if (sp.kind === 'managedIdentity') {
        throw new LatchkeyError(
          'BadRequest',
          'A managed identity is deleted with its resource, not directly.',
        );
      }
      await db.transaction(async (tx) => {
        await principals.delete(caller.tenantId, sp.id, tx);
        await audit.append(tx, record(caller, meta, 'ServicePrincipalDelete', sp.id));
      });
    },
    async listCredentials(caller: Caller, idOrAppId: string): Promise<CredentialInfo[]> {
      await access.require(caller, DIRECTORY_ACTIONS.read, '/');
      const sp = await findSp(caller, idOrAppId);
      return credentials.list(caller.tenantId, sp.id);
    },
    /** `az ad sp credential reset`: adds a credential, replacing the others unless `append`. */
    async resetCredential(
      caller: Caller,
      meta: RequestMeta,
      idOrAppId: string,
      input: CredentialInput & { append?: boolean },
    ): Promise<CredentialInfo & { secretText?: string }> {
      await access.require(caller, DIRECTORY_ACTIONS.credentials, '/');
      const sp = await findSp(caller, idOrAppId);
      if (sp.kind === 'managedIdentity') {
        throw new LatchkeyError(
          'BadRequest',
          'The credentials of a managed identity are managed by the platform.',
        );
      }
      return db.transaction(async (tx) => {
        if (!input.append) await credentials.deleteAll(caller.tenantId, sp.id, tx);
        const c =
          input.type === 'Password'
            ? await credentials.addSecret(caller.tenantId, sp.id, input, tx)
            : await credentials.addCertificate(caller.tenantId, sp.id, input.certificate, input, tx);
        await audit.append(tx, {
          ...record(caller, meta, 'ServicePrincipalCredentialReset', sp.id),
          details: { keyId: c.keyId, type: c.type, append: !!input.append },
        });
        return c;
      });
    },
    async deleteCredential(
      caller: Caller,
      meta: RequestMeta,
      idOrAppId: string,
      keyId: string,
    ): Promise<void> {
      await access.require(caller, DIRECTORY_ACTIONS.credentials, '/');
      const sp = await findSp(caller, idOrAppId);
      await db.transaction(async (tx) => {
        await credentials.delete(caller.tenantId, sp.id, keyId, tx);
        await audit.append(tx, {
          ...record(caller, meta, 'ServicePrincipalCredentialDelete', sp.id),
          details: { keyId },
        });
      });
    },
  };
}
export type Directory = ReturnType<typeof createDirectory>;
