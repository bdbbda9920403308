import { randomBytes } from 'node:crypto';
import { BlockList } from 'node:net';
import { type Caller, callerEvent, type RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import { isProvisioningScope, PROVISIONING_SCOPES } from '../access/provisioning-scopes.js';
import type { AuditLog } from '../audit/log.js';
import type { SecretHasher } from '../crypto/hashing.js';
import { type ErrorCode, LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { addCidr as addCidrTo, inCidrList, normalizeIp } from '../lib/ip.js';
import type { Database, Queryable } from '../storage/port.js';
import {
  type StoredProvisioningKey,
  provisioningKeyStore as store,
} from '../storage/provisioning/provisioning-key-store.js';

export const KEY_PREFIX = 'lkp_';
const ID_RE = /^lkp_[a-z0-9]{16}$/;
const KEY_RE = /^(lkp_[a-z0-9]{16})\.([A-Za-z0-9_-]{43})$/;

export interface ProvisioningKeyView {
  id: string;
  tenantId: string;
  displayName: string;
  scopes: string[];
  expiresOn: string;
  maxUses: number | null;
  uses: number;
  allowedCidrs: string[];
  resourceGroup: string | null;
  state: 'active' | 'rotated' | 'revoked' | 'expired';
  graceUntil: string | null;
  successorId: string | null;
  predecessorId: string | null;
  createdOn: string;
  createdBy: string | null;
  revokedOn: string | null;
  lastUsedOn: string | null;
}

type Row = StoredProvisioningKey;

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

export interface CreateKeyInput {
  displayName?: string;
  scopes: string[];
  expiresInSeconds: number;
  maxUses?: number | null;
  allowedCidrs?: string[];
  resourceGroup?: string | null;
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a single address into a BlockList entry. */
function addCidr(list: BlockList, cidr: string): void {
  try {
    addCidrTo(list, cidr);
  } catch (e) {
    throw new LatchkeyError('BadParameter', (e as Error).message);
  }
}

/**
 * Provisioning keys: the one credential a pipeline or a new host holds, briefly.
 * The value (`lkp_<id>.<secret>`) is shown once; only an HMAC is stored. A key
 * is bound to one tenant, limited to its scopes (never its creator's roles),
 * expires, may be limited in uses, addresses and resource group, and can be
 * rotated with a grace period or revoked at once. Every use is audited with the
 * key's id.
 */
export function createProvisioningKeys(deps: {
  db: Database;
  clock: Clock;
  hasher: SecretHasher;
  access: Access;
  audit: AuditLog;
  bus: ChangeBus;
  maxLifetimeSeconds: number;
}) {
  const { db, clock, hasher, access, audit, bus } = deps;

  const view = (r: Row): ProvisioningKeyView => {
    const now = clock.now();
    const expired =
      r.expiresAt <= now || (r.state === 'rotated' && r.graceUntil !== null && r.graceUntil <= now);
    return {
      id: r.id,
      tenantId: r.tenantId,
      displayName: r.displayName,
      scopes: r.scopes,
      expiresOn: iso(r.expiresAt)!,
      maxUses: r.maxUses,
      uses: r.uses,
      allowedCidrs: r.allowedCidrs ?? [],
      resourceGroup: r.resourceGroup,
      state: r.state === 'revoked' ? 'revoked' : expired ? 'expired' : r.state,
      graceUntil: iso(r.graceUntil),
      successorId: r.successorId,
      predecessorId: r.predecessorId,
      createdOn: iso(r.createdAt)!,
      createdBy: r.createdBy,
      revokedOn: iso(r.revokedAt),
      lastUsedOn: iso(r.lastUsedAt),
    };
  };

  const validate = (input: CreateKeyInput) => {
    if (!Array.isArray(input.scopes) || input.scopes.length === 0) {
      throw new LatchkeyError(
        'BadParameter',
        `At least one scope is required: ${Object.keys(PROVISIONING_SCOPES).join(', ')}.`,
      );
    }
    for (const s of input.scopes) {
      if (!isProvisioningScope(s)) {
        throw new LatchkeyError(
          'BadParameter',
          `Unknown scope '${String(s).slice(0, 64)}'. Known scopes: ${Object.keys(PROVISIONING_SCOPES).join(', ')}.`,
        );
      }
    }
    if (
      !Number.isInteger(input.expiresInSeconds) ||
      input.expiresInSeconds < 60 ||
      input.expiresInSeconds > deps.maxLifetimeSeconds
    ) {
      throw new LatchkeyError(
        'BadParameter',
        `The expiry must be between 60 seconds and ${deps.maxLifetimeSeconds} seconds.`,
      );
    }
    if (
      input.maxUses !== undefined &&
      input.maxUses !== null &&
      (!Number.isInteger(input.maxUses) || input.maxUses < 1 || input.maxUses > 1_000_000)
    ) {
      throw new LatchkeyError('BadParameter', 'maxUses must be a whole number from 1 to 1000000.');
    }
    const cidrs = input.allowedCidrs ?? [];
    if (cidrs.length > 20) throw new LatchkeyError('BadParameter', 'At most 20 allowed CIDR ranges.');
    for (const c of cidrs) addCidr(new BlockList(), c);
    if (
      input.resourceGroup &&
      !/^\/subscriptions\/[0-9a-f-]{36}\/resourceGroups\/[-\w._()]{1,90}$/i.test(input.resourceGroup)
    ) {
      throw new LatchkeyError(
        'BadParameter',
        'resourceGroup must be a resource group id: /subscriptions/{id}/resourceGroups/{name}.',
      );
    }
  };

  const insert = async (
    tenantId: string,
    input: CreateKeyInput,
    createdBy: string | null,
    q: Queryable,
    predecessor: string | null,
  ) => {
    const id = `${KEY_PREFIX}${randomBytes(10).toString('hex').slice(0, 16)}`;
    const value = `${id}.${randomBytes(32).toString('base64url')}`;
    const now = clock.now();
    await store.insert(q, {
      id,
      tenantId,
      displayName: (input.displayName ?? id).slice(0, 120),
      scopes: [...new Set(input.scopes)],
      keyHash: hasher.hash(value),
      expiresAt: now + input.expiresInSeconds * 1000,
      maxUses: input.maxUses ?? null,
      allowedCidrs: input.allowedCidrs?.length ? input.allowedCidrs : null,
      resourceGroup: input.resourceGroup ?? null,
      predecessorId: predecessor,
      createdAt: now,
      createdBy,
    });
    return { id, value };
  };

  const rowOf = async (tenantId: string, id: string, q: Queryable = db) => {
    const r = ID_RE.test(id) ? await store.find(q, id, tenantId) : undefined;
    if (!r) throw new LatchkeyError('NotFound', `Provisioning key '${id.slice(0, 40)}' not found.`);
    return r;
  };

  const record = (caller: Caller, meta: RequestMeta, operation: string, target: string) =>
    callerEvent(caller, meta, { operation, target, status: 200 });

  const ACTION = 'Microsoft.Latchkey/provisioningKeys';

  return {
    async create(
      caller: Caller,
      meta: RequestMeta,
      input: CreateKeyInput,
    ): Promise<ProvisioningKeyView & { key: string }> {
      await access.require(caller, `${ACTION}/write`, '/');
      if (caller.provisioningKeyId)
        throw new LatchkeyError('Forbidden', 'A provisioning key cannot create provisioning keys.');
      validate(input);
      return db.transaction(async (tx) => {
        await audit.hold(tx); // lock order (audit/log.ts)
        const { id, value } = await insert(caller.tenantId, input, caller.oid, tx, null);
        await audit.append(tx, {
          ...record(caller, meta, 'ProvisioningKeyCreate', id),
          details: { scopes: input.scopes.join(' ') },
        });
        return { ...view(await rowOf(caller.tenantId, id, tx)), key: value };
      });
    },
    async list(caller: Caller): Promise<ProvisioningKeyView[]> {
      await access.require(caller, `${ACTION}/read`, '/');
      return (await store.listByTenant(db, caller.tenantId)).map(view);
    },
    async show(caller: Caller, id: string): Promise<ProvisioningKeyView> {
      await access.require(caller, `${ACTION}/read`, '/');
      return view(await rowOf(caller.tenantId, id));
    },
    /** Issues a successor with the same limits; the old key stays valid only for `graceSeconds`. */
    async rotate(
      caller: Caller,
      meta: RequestMeta,
      id: string,
      opts: { graceSeconds: number; expiresInSeconds?: number },
    ) {
      await access.require(caller, `${ACTION}/write`, '/');
      if (!Number.isInteger(opts.graceSeconds) || opts.graceSeconds < 0 || opts.graceSeconds > 7 * 86400) {
        throw new LatchkeyError('BadParameter', 'The grace period must be between 0 seconds and 7 days.');
      }
      return db.transaction(async (tx) => {
        await audit.hold(tx);
        // Held first, then read: a revoke committed meanwhile is seen, never written over.
        await store.hold(tx, caller.tenantId, id);
        const old = await rowOf(caller.tenantId, id, tx);
        const v = view(old);
        if (v.state !== 'active')
          throw new LatchkeyError('Conflict', `Only an active key can be rotated (this one is ${v.state}).`);
        const input: CreateKeyInput = {
          displayName: old.displayName,
          scopes: old.scopes,
          expiresInSeconds:
            opts.expiresInSeconds ?? Math.max(60, Math.round((old.expiresAt - old.createdAt) / 1000)),
          maxUses: old.maxUses,
          allowedCidrs: old.allowedCidrs ?? [],
          resourceGroup: old.resourceGroup,
        };
        validate(input);
        const next = await insert(caller.tenantId, input, caller.oid, tx, old.id);
        const graceUntil = Math.min(clock.now() + opts.graceSeconds * 1000, old.expiresAt);
        if (!(await store.markRotated(tx, old.id, graceUntil, next.id)))
          throw new LatchkeyError(
            'Conflict',
            'The key changed meanwhile (revoked or rotated): it is not rotated.',
          );
        await audit.append(tx, {
          ...record(caller, meta, 'ProvisioningKeyRotate', old.id),
          details: { successor: next.id, graceSeconds: opts.graceSeconds },
        });
        bus.publish('provisioningKey', old.id);
        return {
          ...view(await rowOf(caller.tenantId, next.id, tx)),
          key: next.value,
          previous: view(await rowOf(caller.tenantId, old.id, tx)),
        };
      });
    },
    async revoke(caller: Caller, meta: RequestMeta, id: string): Promise<ProvisioningKeyView> {
      await access.require(caller, `${ACTION}/write`, '/');
      return db.transaction(async (tx) => {
        await audit.hold(tx);
        await store.hold(tx, caller.tenantId, id); // as rotate: one after the other
        const old = await rowOf(caller.tenantId, id, tx);
        if (old.state !== 'revoked') {
          await store.markRevoked(tx, old.id, clock.now());
          await audit.append(tx, record(caller, meta, 'ProvisioningKeyRevoke', old.id));
          bus.publish('provisioningKey', old.id);
        }
        return view(await rowOf(caller.tenantId, id, tx));
      });
    },
    /**
     * Authenticates a presented key: format, hash (constant time), state, expiry
     * or grace, address, uses (counted atomically). Every refusal is audited.
     */
    async authenticate(presented: string, meta: RequestMeta): Promise<Caller> {
      const m = KEY_RE.exec(presented);
      const refuse = async (code: ErrorCode, message: string, row?: Row) => {
        if (row) {
          await audit.record({
            tenantId: row.tenantId,
            provisioningKeyId: row.id,
            operation: 'ProvisioningKeyAuthenticate',
            target: row.id,
            status: 401,
            clientIp: meta.clientIp,
            requestId: meta.requestId,
            details: { reason: code },
          });
        }
        return new LatchkeyError(code, message, { headers: { 'WWW-Authenticate': 'ProvisioningKey' } });
      };
      if (!m) throw await refuse('ProvisioningKeyInvalid', 'The provisioning key is malformed.');
      const row = await store.find(db, m[1]!);
      if (!row || !hasher.equals(presented, row.keyHash)) {
        throw await refuse('ProvisioningKeyInvalid', 'The provisioning key is not valid.');
      }
      const now = clock.now();
      if (row.state === 'revoked')
        throw await refuse(
          'ProvisioningKeyRevoked',
          `Provisioning key ${row.id} was revoked; create a new one.`,
          row,
        );
      if (row.expiresAt <= now)
        throw await refuse(
          'ProvisioningKeyExpired',
          `Provisioning key ${row.id} has expired; create a new one.`,
          row,
        );
      if (row.state === 'rotated' && row.graceUntil !== null && row.graceUntil <= now) {
        throw await refuse(
          'ProvisioningKeyExpired',
          `Provisioning key ${row.id} was rotated and its grace period has ended; use its successor ${row.successorId}.`,
          row,
        );
      }
      if (row.allowedCidrs) {
        const list = new BlockList();
        for (const c of row.allowedCidrs) addCidr(list, c);
        const ip = normalizeIp(meta.clientIp);
        if (!inCidrList(list, ip)) {
          throw await refuse(
            'ProvisioningKeyAddressNotAllowed',
            `Provisioning key ${row.id} may not be used from ${ip.slice(0, 64)}.`,
            row,
          );
        }
      }
      if (!(await store.countUse(db, row.id, now)))
        throw await refuse(
          'ProvisioningKeyExhausted',
          `Provisioning key ${row.id} has reached its maximum number of uses.`,
          row,
        );
      return {
        tenantId: row.tenantId,
        oid: row.id,
        appId: null,
        kind: 'app',
        provisioningKeyId: row.id,
        provisioningScopes: row.scopes,
        ...(row.resourceGroup ? { provisioningResourceGroup: row.resourceGroup } : {}),
      };
    },
    /** Background job: audits keys that have expired since the last run (once each). */
    async auditExpired(): Promise<number> {
      const now = clock.now();
      const rows = await store.listUnauditedExpired(db, now);
      for (const r of rows) {
        await db.transaction(async (tx) => {
          await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
          if (!(await store.claimExpiryAudit(tx, r.id))) return;
          await audit.append(tx, {
            tenantId: r.tenantId,
            provisioningKeyId: r.id,
            operation: 'ProvisioningKeyExpire',
            target: r.id,
            status: 200,
          });
        });
      }
      return rows.length;
    },
  };
}
export type ProvisioningKeys = ReturnType<typeof createProvisioningKeys>;
