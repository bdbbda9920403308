import type { Access } from '../access/decision.js';
import { isLatchkeyError, LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database, Queryable, Transaction } from '../storage/port.js';
import {
  type CertificateIssuerRecord,
  certificateIssuerStore as store,
} from '../storage/vault/certificate-issuer-store.js';
import { type CertificateGuard, CERTIFICATE_OPERATIONS as OPS } from './certificate-guard.js';
import { isObjectName } from './model.js';
import type { ObjectCallContext, ObjectOperation } from './object-guard.js';

/** Azure's IssuerBundle as it comes in (the wire's snake_case). */
export interface IssuerInput {
  provider?: string | undefined;
  credentials?:
    | { account_id?: string | null | undefined; pwd?: string | null | undefined }
    | null
    | undefined;
  org_details?:
    | {
        id?: string | null | undefined;
        admin_details?:
          | Array<{
              first_name?: string | null | undefined;
              last_name?: string | null | undefined;
              email?: string | null | undefined;
              phone?: string | null | undefined;
            }>
          | null
          | undefined;
      }
    | null
    | undefined;
  attributes?: { enabled?: boolean | undefined } | null | undefined;
}

/** What is kept of an issuer besides its provider: never a password. */
export interface IssuerDetails {
  account_id?: string;
  org_details?: {
    id?: string;
    admin_details?: Array<{ first_name?: string; last_name?: string; email?: string; phone?: string }>;
  };
}
export interface CertificateIssuer {
  name: string;
  provider: string;
  details: IssuerDetails;
  enabled: boolean;
  created: number;
  updated: number;
}

/** The issuer providers this vault signs with: its tenant's own CA. */
export const PROVIDERS = ['Latchkey'] as const;
/** Issuer names every vault has without an issuer object. */
export const BUILT_IN_ISSUERS = ['Self', 'Unknown', 'Latchkey'] as const;
export const ISSUER_LIMITS = { perVault: 100, chars: 255, admins: 10 } as const;

/** A write's result: no `name`, so the audit target stays the issuers collection. */
type Written = { issuer: CertificateIssuer; name?: never };

const bad = (message: string) => new LatchkeyError('BadParameter', message);
const issuerNotFound = (name: string) =>
  new LatchkeyError('CertificateNotFound', `Issuer not found: ${name.slice(0, 127)}`);

const fromRecord = (r: CertificateIssuerRecord): CertificateIssuer => ({
  name: r.name,
  provider: r.provider,
  details: JSON.parse(r.doc) as IssuerDetails,
  enabled: r.enabled,
  created: r.created,
  updated: r.updated,
});

function checkIssuerName(name: string): string {
  if (!isObjectName(name)) throw bad('The issuer name is invalid: use 1–127 letters, digits and hyphens.');
  if (/^(self|unknown)$/i.test(name)) throw bad(`'${name}' is a built-in issuer name and cannot be set.`);
  return name;
}

const str = (field: string, v: string | null | undefined): string | undefined => {
  if (v === null || v === undefined) return undefined;
  if (v.length > ISSUER_LIMITS.chars) throw bad(`${field} is longer than ${ISSUER_LIMITS.chars} characters.`);
  return v;
};

/** The details of a PUT (or a PATCH over `prev`), validated; `credentials.pwd` is never kept. */
function detailsOf(input: IssuerInput, prev?: IssuerDetails): IssuerDetails {
  // (The SDK's updateIssuer always sends `credentials`, empty unless given: an absent account id
  // keeps the previous one; null, or `credentials: null`, clears it.)
  const given = input.credentials === null ? null : input.credentials?.account_id;
  const accountId = given === undefined ? prev?.account_id : str('credentials.account_id', given);
  let org = prev?.org_details;
  if (input.org_details !== undefined) {
    const admins = input.org_details?.admin_details ?? [];
    if (admins.length > ISSUER_LIMITS.admins)
      throw bad(`org_details.admin_details holds at most ${ISSUER_LIMITS.admins} administrators.`);
    const id = str('org_details.id', input.org_details?.id);
    org =
      input.org_details === null
        ? undefined
        : {
            ...(id !== undefined ? { id } : {}),
            admin_details: admins.map((a, i) => {
              const f = (k: 'first_name' | 'last_name' | 'email' | 'phone') => {
                const v = str(`org_details.admin_details[${i}].${k}`, a[k]);
                return v !== undefined ? { [k]: v } : {};
              };
              return { ...f('first_name'), ...f('last_name'), ...f('email'), ...f('phone') };
            }),
          };
  }
  return {
    ...(accountId !== undefined ? { account_id: accountId } : {}),
    ...(org ? { org_details: org } : {}),
  };
}

function providerOf(raw: string | undefined): string {
  const p = PROVIDERS.find((x) => x.toLowerCase() === raw?.trim().toLowerCase());
  if (!p)
    throw bad(
      `The issuer provider '${(raw ?? '').slice(0, 40)}' is not supported by this vault: use ${PROVIDERS.join(', ')} (the tenant's own certificate authority).`,
    );
  return p;
}

/**
 * Certificate issuers (Azure's `/certificates/issuers/{name}`): a vault's named issuers with
 * their provider, as the official clients manage them. The one provider is `Latchkey`, the
 * tenant's own CA (certificate-ca.ts); `Self`, `Unknown` and `Latchkey` need no issuer object.
 * Authorized as Azure: RBAC `certificatecas/read|write|delete`, or the access policy's
 * `getissuers`, `listissuers`, `setissuers`, `deleteissuers` — or `manageissuers`, which allows
 * all four.
 */
export function createCertificateIssuers(deps: {
  db: Database;
  clock: Clock;
  access: Access;
  guard: CertificateGuard;
}) {
  const { db, clock, guard } = deps;

  /** On an access-policy vault, `manageissuers` stands in for the operation's own permission. */
  const opFor = async (ctx: ObjectCallContext, op: ObjectOperation): Promise<ObjectOperation> => {
    if (ctx.vault.enableRbacAuthorization) return op;
    try {
      await deps.access.requireVaultData(ctx.caller, ctx.vault.access, {
        dataAction: op.action,
        objectScope: ctx.vault.armId,
        policy: { kind: 'certificates', permission: 'manageissuers' },
      });
      return { ...op, perm: 'manageissuers' };
    } catch (e) {
      if (isLatchkeyError(e) && e.status === 403) return op;
      throw e;
    }
  };

  /** A change to one issuer: authorized (with `manageissuers` standing in), audited, in one transaction. */
  const write = async (
    ctx: ObjectCallContext,
    op: ObjectOperation,
    fn: (tx: Transaction) => Promise<CertificateIssuer>,
  ): Promise<CertificateIssuer> =>
    (
      await guard.write(
        ctx,
        await opFor(ctx, op),
        null,
        async (tx): Promise<Written> => ({ issuer: await fn(tx) }),
      )
    ).issuer;

  const find = async (q: Queryable, vaultId: string, name: string) => {
    const r = await store.find(q, vaultId, name.toLowerCase());
    if (!r) throw issuerNotFound(name);
    return fromRecord(r);
  };

  return {
    async list(ctx: ObjectCallContext): Promise<CertificateIssuer[]> {
      return guard.read(ctx, await opFor(ctx, OPS.listIssuers), null, async () =>
        (await store.list(db, ctx.vault.id, ISSUER_LIMITS.perVault)).map(fromRecord),
      );
    },

    async get(ctx: ObjectCallContext, rawName: string): Promise<CertificateIssuer> {
      const name = checkIssuerName(rawName);
      return guard.read(ctx, await opFor(ctx, OPS.getIssuer), null, () => find(db, ctx.vault.id, name));
    },

    /** `PUT`: creates or replaces the issuer (`provider` required). */
    async set(ctx: ObjectCallContext, rawName: string, input: IssuerInput): Promise<CertificateIssuer> {
      const name = checkIssuerName(rawName);
      const provider = providerOf(input.provider);
      const details = detailsOf(input);
      return write(ctx, OPS.setIssuer, async (tx) => {
        const prev = await store.find(tx, ctx.vault.id, name.toLowerCase());
        if (!prev && (await store.count(tx, ctx.vault.id)) >= ISSUER_LIMITS.perVault)
          throw bad(`A vault holds at most ${ISSUER_LIMITS.perVault} certificate issuers.`);
        const now = clock.now();
        const rec: CertificateIssuerRecord = {
          name: prev?.name ?? name,
          provider,
          doc: JSON.stringify(details),
          enabled: input.attributes?.enabled ?? true,
          created: prev?.created ?? now,
          updated: now,
        };
        await store.put(tx, ctx.vault.id, rec);
        return fromRecord(rec);
      });
    },

    /** `PATCH`: the fields given replace the issuer's. */
    async update(ctx: ObjectCallContext, rawName: string, input: IssuerInput): Promise<CertificateIssuer> {
      const name = checkIssuerName(rawName);
      const provider = input.provider === undefined ? undefined : providerOf(input.provider);
      return write(ctx, OPS.updateIssuer, async (tx) => {
        const cur = await find(tx, ctx.vault.id, name);
        const rec: CertificateIssuerRecord = {
          name: cur.name,
          provider: provider ?? cur.provider,
          doc: JSON.stringify(detailsOf(input, cur.details)),
          enabled: input.attributes?.enabled ?? cur.enabled,
          created: cur.created,
          updated: clock.now(),
        };
        await store.put(tx, ctx.vault.id, rec);
        return fromRecord(rec);
      });
    },

    async delete(ctx: ObjectCallContext, rawName: string): Promise<CertificateIssuer> {
      const name = checkIssuerName(rawName);
      return write(ctx, OPS.deleteIssuer, async (tx) => {
        const cur = await find(tx, ctx.vault.id, name);
        await store.delete(tx, ctx.vault.id, name.toLowerCase());
        return cur;
      });
    },

    /**
     * How a policy's `issuer.name` issues: a built-in name, or an enabled issuer object of the
     * vault (its provider). Unknown or disabled issuers are 400 naming the fix.
     */
    async resolve(vaultId: string, issuerName: string): Promise<'Self' | 'Unknown' | 'Latchkey'> {
      const builtIn = BUILT_IN_ISSUERS.find((b) => b.toLowerCase() === issuerName.toLowerCase());
      if (builtIn) return builtIn;
      const r = isObjectName(issuerName)
        ? await store.find(db, vaultId, issuerName.toLowerCase())
        : undefined;
      if (!r)
        throw bad(
          `The issuer '${issuerName.slice(0, 40)}' is not known in this vault: use 'Self', 'Unknown', 'Latchkey', or create it (PUT /certificates/issuers/{name}).`,
        );
      if (!r.enabled) throw bad(`The issuer '${r.name}' is disabled.`);
      return 'Latchkey';
    },
  };
}
export type CertificateIssuers = ReturnType<typeof createCertificateIssuers>;
