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

interface Row {
  id: string;
  tenant_id: string;
  display_name: string;
  scopes: string;
  key_hash: Buffer;
  expires_at: number;
  max_uses: number | null;
  uses: number;
  allowed_cidrs: string | null;
  resource_group: string | null;
  state: 'active' | 'rotated' | 'revoked';
  grace_until: number | null;
  successor_id: string | null;
  predecessor_id: string | null;
  created_at: number;
  created_by: string | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

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
      Number(r.expires_at) <= now ||
      (r.state === 'rotated' && r.grace_until !== null && Number(r.grace_until) <= now);
    return {
      id: r.id,
      tenantId: r.tenant_id,
      displayName: r.display_name,
      scopes: JSON.parse(r.scopes) as string[],
      expiresOn: iso(r.expires_at)!,
      maxUses: r.max_uses === null ? null : Number(r.max_uses),
      uses: Number(r.uses),
      allowedCidrs: r.allowed_cidrs ? (JSON.parse(r.allowed_cidrs) as string[]) : [],
      resourceGroup: r.resource_group,
      state: r.state === 'revoked' ? 'revoked' : expired ? 'expired' : r.state,
      graceUntil: iso(r.grace_until),
      successorId: r.successor_id,
      predecessorId: r.predecessor_id,
      createdOn: iso(r.created_at)!,
      createdBy: r.created_by,
      revokedOn: iso(r.revoked_at),
      lastUsedOn: iso(r.last_used_at),
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
    await q.run(
      `INSERT INTO provisioning_keys (id, tenant_id, display_name, scopes, key_hash, expires_at, max_uses, uses, allowed_cidrs,
         resource_group, state, predecessor_id, created_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, 'active', $10, $11, $12)`,
      [
        id,
        tenantId,
        (input.displayName ?? id).slice(0, 120),
        JSON.stringify([...new Set(input.scopes)]),
        hasher.hash(value),
        now + input.expiresInSeconds * 1000,
        input.maxUses ?? null,
        input.allowedCidrs?.length ? JSON.stringify(input.allowedCidrs) : null,
        input.resourceGroup ?? null,
        predecessor,
        now,
        createdBy,
      ],
    );
    return { id, value };
  };

  const rowOf = async (tenantId: string, id: string, q: Queryable = db) => {
    const r = ID_RE.test(id)
      ? await q.get<Row>('SELECT * FROM provisioning_keys WHERE id = $1 AND tenant_id = $2', [id, tenantId])
      : undefined;
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
      const rows = await db.all<Row>(
        'SELECT * FROM provisioning_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id',
        [caller.tenantId],
      );
      return rows.map(view);
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
        const old = await rowOf(caller.tenantId, id, tx);
        const v = view(old);
        if (v.state !== 'active')
          throw new LatchkeyError('Conflict', `Only an active key can be rotated (this one is ${v.state}).`);
        const input: CreateKeyInput = {
          displayName: old.display_name,
          scopes: JSON.parse(old.scopes) as string[],
          expiresInSeconds:
            opts.expiresInSeconds ??
            Math.max(60, Math.round((Number(old.expires_at) - Number(old.created_at)) / 1000)),
          maxUses: old.max_uses === null ? null : Number(old.max_uses),
          allowedCidrs: old.allowed_cidrs ? (JSON.parse(old.allowed_cidrs) as string[]) : [],
          resourceGroup: old.resource_group,
        };
        validate(input);
        const next = await insert(caller.tenantId, input, caller.oid, tx, old.id);
        const graceUntil = Math.min(clock.now() + opts.graceSeconds * 1000, Number(old.expires_at));
        await tx.run(
          "UPDATE provisioning_keys SET state = 'rotated', grace_until = $1, successor_id = $2 WHERE id = $3",
          [graceUntil, next.id, old.id],
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
        const old = await rowOf(caller.tenantId, id, tx);
        if (old.state !== 'revoked') {
          await tx.run("UPDATE provisioning_keys SET state = 'revoked', revoked_at = $1 WHERE id = $2", [
            clock.now(),
            old.id,
          ]);
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
            tenantId: row.tenant_id,
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
      const row = await db.get<Row>('SELECT * FROM provisioning_keys WHERE id = $1', [m[1]!]);
      if (!row || !hasher.equals(presented, Buffer.from(row.key_hash))) {
        throw await refuse('ProvisioningKeyInvalid', 'The provisioning key is not valid.');
      }
      const now = clock.now();
      if (row.state === 'revoked')
        throw await refuse(
          'ProvisioningKeyRevoked',
          `Provisioning key ${row.id} was revoked; create a new one.`,
          row,
        );
      if (Number(row.expires_at) <= now)
        throw await refuse(
          'ProvisioningKeyExpired',
          `Provisioning key ${row.id} has expired; create a new one.`,
          row,
        );
      if (row.state === 'rotated' && row.grace_until !== null && Number(row.grace_until) <= now) {
        throw await refuse(
          'ProvisioningKeyExpired',
          `Provisioning key ${row.id} was rotated and its grace period has ended; use its successor ${row.successor_id}.`,
          row,
        );
      }
      if (row.allowed_cidrs) {
        const list = new BlockList();
        for (const c of JSON.parse(row.allowed_cidrs) as string[]) addCidr(list, c);
        const ip = normalizeIp(meta.clientIp);
        if (!inCidrList(list, ip)) {
          throw await refuse(
            'ProvisioningKeyAddressNotAllowed',
            `Provisioning key ${row.id} may not be used from ${ip.slice(0, 64)}.`,
            row,
          );
        }
      }
      const used = await db.run(
        'UPDATE provisioning_keys SET uses = uses + 1, last_used_at = $1 WHERE id = $2 AND (max_uses IS NULL OR uses < max_uses)',
        [now, row.id],
      );
      if (used.changes === 0)
        throw await refuse(
          'ProvisioningKeyExhausted',
          `Provisioning key ${row.id} has reached its maximum number of uses.`,
          row,
        );
      return {
        tenantId: row.tenant_id,
        oid: row.id,
        appId: null,
        kind: 'app',
        provisioningKeyId: row.id,
        provisioningScopes: JSON.parse(row.scopes) as string[],
        ...(row.resource_group ? { provisioningResourceGroup: row.resource_group } : {}),
      };
    },
    /** Background job: audits keys that have expired since the last run (once each). */
    async auditExpired(): Promise<number> {
      const now = clock.now();
      const rows = await db.all<Row>(
        'SELECT * FROM provisioning_keys WHERE expiry_audited = 0 AND (expires_at <= $1 OR (grace_until IS NOT NULL AND grace_until <= $1))',
        [now],
      );
      for (const r of rows) {
        await db.transaction(async (tx) => {
          const claimed = await tx.run(
            'UPDATE provisioning_keys SET expiry_audited = 1 WHERE id = $1 AND expiry_audited = 0',
            [r.id],
          );
          if (claimed.changes === 0) return;
          await audit.append(tx, {
            tenantId: r.tenant_id,
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
