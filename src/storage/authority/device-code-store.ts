import type { Queryable } from '../port.js';

export type DeviceCodeStatus = 'pending' | 'approved' | 'denied' | 'redeemed';

/** A device authorization request as stored: its codes only as hashes (times in epoch ms). */
export interface DeviceCodeRecord {
  id: string;
  tenantId: string;
  clientId: string;
  scope: string;
  status: DeviceCodeStatus;
  principalId: string | null;
  authTime: number | null;
  intervalMs: number;
  lastPollAt: number | null;
  expiresAt: number;
}

interface Row {
  id: string;
  tenant_id: string;
  client_id: string;
  scope: string;
  status: DeviceCodeStatus;
  principal_id: string | null;
  auth_time: number | null;
  interval_ms: number;
  last_poll_at: number | null;
  expires_at: number;
}

const fromRow = (r: Row): DeviceCodeRecord => ({
  id: r.id,
  tenantId: r.tenant_id,
  clientId: r.client_id,
  scope: r.scope,
  status: r.status,
  principalId: r.principal_id,
  authTime: r.auth_time === null ? null : Number(r.auth_time),
  intervalMs: Number(r.interval_ms),
  lastPollAt: r.last_poll_at === null ? null : Number(r.last_poll_at),
  expiresAt: Number(r.expires_at),
});

/**
 * The SQL behind device authorization requests (migration 0009), in the shape of oidc-provider's
 * adapter: `insert`, `find…`, `consume` (redeem an approval once), `prune`.
 */
export const deviceCodeStore = {
  /** A new pending request. A clash of user-code hashes among stored requests is a unique violation. */
  async insert(
    q: Queryable,
    d: {
      id: string;
      deviceCodeHash: Buffer;
      userCodeHash: Buffer;
      tenantId: string;
      clientId: string;
      scope: string;
      intervalMs: number;
      expiresAt: number;
      createdAt: number;
    },
  ): Promise<void> {
    await q.run(
      `INSERT INTO device_codes (id, device_code_hash, user_code_hash, tenant_id, client_id, scope, status,
         principal_id, auth_time, interval_ms, last_poll_at, expires_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'pending', NULL, NULL, $7, NULL, $8, $9)`,
      [
        d.id,
        d.deviceCodeHash,
        d.userCodeHash,
        d.tenantId,
        d.clientId,
        d.scope,
        d.intervalMs,
        d.expiresAt,
        d.createdAt,
      ],
    );
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  /** The pending request with this user-code hash that has not expired by `now`. */
  async findPendingByUserCode(
    q: Queryable,
    userCodeHash: Buffer,
    now: number,
  ): Promise<DeviceCodeRecord | undefined> {
    const r = await q.get<Row>(
      "SELECT * FROM device_codes WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2",
      [userCodeHash, now],
    );
    return r && fromRow(r);
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  /** The client's request with this device-code hash, in any state. */
  async findByDeviceCode(
    q: Queryable,
    tenantId: string,
    clientId: string,
    deviceCodeHash: Buffer,
  ): Promise<DeviceCodeRecord | undefined> {
    const r = await q.get<Row>(
      'SELECT * FROM device_codes WHERE device_code_hash = $1 AND tenant_id = $2 AND client_id = $3',
      [deviceCodeHash, tenantId, clientId],
    );
    return r && fromRow(r);
  },
  /** Approves a pending request not expired by `now`; false if it was no longer pending. */
  async approve(
    q: Queryable,
    id: string,
    principalId: string,
    authTime: number,
    now: number,
  ): Promise<boolean> {
    const r = await q.run(
      "UPDATE device_codes SET status = 'approved', principal_id = $1, auth_time = $2 WHERE id = $3 AND status = 'pending' AND expires_at > $4",
      [principalId, authTime, id, now],
    );
    return r.changes === 1;
  },
  /** Denies a request if it is still pending. */
  async deny(q: Queryable, id: string): Promise<void> {
    await q.run("UPDATE device_codes SET status = 'denied' WHERE id = $1 AND status = 'pending'", [id]);
  },
  async recordPoll(q: Queryable, id: string, now: number): Promise<void> {
    await q.run('UPDATE device_codes SET last_poll_at = $1 WHERE id = $2', [now, id]);
  },
  /** Redeems an approved request; false when it was not (any more) approved: handed out once. */
  async consume(q: Queryable, id: string): Promise<boolean> {
    const r = await q.run(
      "UPDATE device_codes SET status = 'redeemed' WHERE id = $1 AND status = 'approved'",
      [id],
    );
    return r.changes > 0;
  },
  /** Deletes requests that expired before `before`; returns how many. */
  async prune(q: Queryable, before: number): Promise<number> {
    return (await q.run('DELETE FROM device_codes WHERE expires_at < $1', [before])).changes;
  },
};
