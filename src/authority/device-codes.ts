import { randomInt } from 'node:crypto';
import { generateSecret, type SecretHasher } from '../crypto/hashing.js';
import type { Clock } from '../lib/clock.js';
import { newGuid } from '../lib/ids.js';
import type { Database } from '../storage/port.js';

/** A device code lives this long (Entra: 15 minutes). */
export const DEVICE_CODE_TTL_MS = 15 * 60_000;
/** The polling interval the client is told to keep (RFC 8628 §3.2: default 5 s). */
export const DEVICE_CODE_INTERVAL_MS = 5_000;
/** Expired and spent requests are kept this much longer, so a late poll gets `expired_token`. */
const KEEP_AFTER_EXPIRY_MS = 15 * 60_000;

/**
 * User codes: 8 letters from an alphabet without vowels (no words) or look-alikes, shown as
 * `XXXX-XXXX` (RFC 8628 §6.1). 20⁸ ≈ 2.6 × 10¹⁰ codes: with the failed-attempt throttle on the
 * verification page, guessing a live one within its 15 minutes is out of reach.
 */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
const USER_CODE_LENGTH = 8;

/** A typed user code as stored: upper case, dashes and spaces dropped; undefined if it cannot be one. */
export function normalizeUserCode(input: string): string | undefined {
  const c = input.toUpperCase().replace(/[\s-]/g, '');
  return c.length === USER_CODE_LENGTH && [...c].every((ch) => USER_CODE_ALPHABET.includes(ch))
    ? c
    : undefined;
}

export interface DeviceRequest {
  id: string;
  tenantId: string;
  clientId: string;
  scope: string;
  expiresAt: number;
}

export type DevicePoll =
  | { kind: 'unknown' }
  | { kind: 'expired' }
  | { kind: 'pending' }
  | { kind: 'slow_down' }
  | { kind: 'denied' }
  | { kind: 'approved'; principalId: string; scope: string; authTime: number };

interface Row {
  id: string;
  tenant_id: string;
  client_id: string;
  scope: string;
  status: 'pending' | 'approved' | 'denied' | 'redeemed';
  principal_id: string | null;
  auth_time: number | null;
  interval_ms: number;
  last_poll_at: number | null;
  expires_at: number;
}

/**
 * Device authorization requests (RFC 8628): started by a client, approved or denied by a user
 * on the verification page, redeemed once by the client's polling token request.
 */
export function createDeviceCodes(deps: { db: Database; clock: Clock; hasher: SecretHasher }) {
  const { db, clock, hasher } = deps;
  const userCodeHash = (normalized: string) => hasher.hash(`user-code:${normalized}`);

  return {
    async start(input: { tenantId: string; clientId: string; scope: string }): Promise<{
      deviceCode: string;
      userCode: string;
      expiresInSeconds: number;
      intervalSeconds: number;
    }> {
      const deviceCode = generateSecret('lkd~', 32);
      const now = clock.now();
      // A clash of user codes among live requests is astronomically rare; the UNIQUE index refuses it.
      for (let attempt = 0; ; attempt++) {
        const code = Array.from(
          { length: USER_CODE_LENGTH },
          () => USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)],
        ).join('');
        try {
          await db.run(
            `INSERT INTO device_codes (id, device_code_hash, user_code_hash, tenant_id, client_id, scope, status,
               principal_id, auth_time, interval_ms, last_poll_at, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', NULL, NULL, $7, NULL, $8, $9)`,
            [
              newGuid(),
              hasher.hash(deviceCode),
              userCodeHash(code),
              input.tenantId,
              input.clientId,
              input.scope,
              DEVICE_CODE_INTERVAL_MS,
              now + DEVICE_CODE_TTL_MS,
              now,
            ],
          );
          return {
            deviceCode,
            userCode: `${code.slice(0, 4)}-${code.slice(4)}`,
            expiresInSeconds: DEVICE_CODE_TTL_MS / 1000,
            intervalSeconds: DEVICE_CODE_INTERVAL_MS / 1000,
          };
        } catch (e) {
          if (attempt >= 2) throw e;
        }
      }
    },

    /** The pending, unexpired request a typed user code names, if any. */
    async pending(userCode: string): Promise<DeviceRequest | undefined> {
      const c = normalizeUserCode(userCode);
      if (!c) return undefined;
      const row = await db.get<Row>(
        "SELECT * FROM device_codes WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2",
        [userCodeHash(c), clock.now()],
      );
      return row
        ? {
            id: row.id,
            tenantId: row.tenant_id,
            clientId: row.client_id,
            scope: row.scope,
            expiresAt: Number(row.expires_at),
          }
        : undefined;
    },

    /** A user signed in for the request: true if it was still pending (of two approvals one wins). */
    async approve(id: string, principalId: string, authTime: number): Promise<boolean> {
      const r = await db.run(
        "UPDATE device_codes SET status = 'approved', principal_id = $1, auth_time = $2 WHERE id = $3 AND status = 'pending' AND expires_at > $4",
        [principalId, authTime, id, clock.now()],
      );
      return r.changes === 1;
    },

    /** The user declined: the client's next poll gets `access_denied`. */
    async deny(id: string): Promise<void> {
      await db.run("UPDATE device_codes SET status = 'denied' WHERE id = $1 AND status = 'pending'", [id]);
    },

    /** One token request with the device code (RFC 8628 §3.4–3.5); an approval is handed out once. */
    async poll(tenantId: string, clientId: string, deviceCode: string): Promise<DevicePoll> {
      if (deviceCode.length > 200) return { kind: 'unknown' };
      const row = await db.get<Row>(
        'SELECT * FROM device_codes WHERE device_code_hash = $1 AND tenant_id = $2 AND client_id = $3',
        [hasher.hash(deviceCode), tenantId, clientId],
      );
      if (!row) return { kind: 'unknown' };
      const now = clock.now();
      if (row.status === 'redeemed') return { kind: 'unknown' };
      if (row.status === 'denied') return { kind: 'denied' };
      if (Number(row.expires_at) <= now) return { kind: 'expired' };
      if (row.status === 'pending') {
        const last = row.last_poll_at === null ? null : Number(row.last_poll_at);
        await db.run('UPDATE device_codes SET last_poll_at = $1 WHERE id = $2', [now, row.id]);
        // A little slack for network jitter; a client polling clearly faster is told to slow down.
        if (last !== null && now - last < Number(row.interval_ms) - 1000) return { kind: 'slow_down' };
        return { kind: 'pending' };
      }
      const spent = await db.run(
        "UPDATE device_codes SET status = 'redeemed' WHERE id = $1 AND status = 'approved'",
        [row.id],
      );
      if (spent.changes === 0 || row.principal_id === null) return { kind: 'unknown' };
      return {
        kind: 'approved',
        principalId: row.principal_id,
        scope: row.scope,
        authTime: Number(row.auth_time ?? now),
      };
    },

    /** Forgets requests well past their expiry. */
    async prune(): Promise<number> {
      const r = await db.run('DELETE FROM device_codes WHERE expires_at < $1', [
        clock.now() - KEEP_AFTER_EXPIRY_MS,
      ]);
      return r.changes;
    },
  };
}
export type DeviceCodes = ReturnType<typeof createDeviceCodes>;
