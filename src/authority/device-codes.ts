import { randomInt } from 'node:crypto';
import { generateSecret, type SecretHasher } from '../crypto/hashing.js';
import type { Clock } from '../lib/clock.js';
import { newGuid } from '../lib/ids.js';
import { deviceCodeStore } from '../storage/authority/device-code-store.js';
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
          await deviceCodeStore.insert(db, {
            id: newGuid(),
            deviceCodeHash: hasher.hash(deviceCode),
            userCodeHash: userCodeHash(code),
            tenantId: input.tenantId,
            clientId: input.clientId,
            scope: input.scope,
            intervalMs: DEVICE_CODE_INTERVAL_MS,
            expiresAt: now + DEVICE_CODE_TTL_MS,
            createdAt: now,
          });
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
      const row = await deviceCodeStore.findPendingByUserCode(db, userCodeHash(c), clock.now());
      return row
        ? {
            id: row.id,
            tenantId: row.tenantId,
            clientId: row.clientId,
            scope: row.scope,
            expiresAt: row.expiresAt,
          }
        : undefined;
    },

    /** A user signed in for the request: true if it was still pending (of two approvals one wins). */
    async approve(id: string, principalId: string, authTime: number): Promise<boolean> {
      return deviceCodeStore.approve(db, id, principalId, authTime, clock.now());
    },

    /** The user declined: the client's next poll gets `access_denied`. */
    async deny(id: string): Promise<void> {
      await deviceCodeStore.deny(db, id);
    },

    /** One token request with the device code (RFC 8628 §3.4–3.5); an approval is handed out once. */
    async poll(tenantId: string, clientId: string, deviceCode: string): Promise<DevicePoll> {
      if (deviceCode.length > 200) return { kind: 'unknown' };
      const row = await deviceCodeStore.findByDeviceCode(db, tenantId, clientId, hasher.hash(deviceCode));
      if (!row) return { kind: 'unknown' };
      const now = clock.now();
      if (row.status === 'redeemed') return { kind: 'unknown' };
      if (row.status === 'denied') return { kind: 'denied' };
      if (row.expiresAt <= now) return { kind: 'expired' };
      if (row.status === 'pending') {
        const last = row.lastPollAt;
        await deviceCodeStore.recordPoll(db, row.id, now);
        // A little slack for network jitter; a client polling clearly faster is told to slow down.
        if (last !== null && now - last < row.intervalMs - 1000) return { kind: 'slow_down' };
        return { kind: 'pending' };
      }
      const spent = await deviceCodeStore.consume(db, row.id);
      if (!spent || row.principalId === null) return { kind: 'unknown' };
      return {
        kind: 'approved',
        principalId: row.principalId,
        scope: row.scope,
        authTime: row.authTime ?? now,
      };
    },

    /** Forgets requests well past their expiry. */
    async prune(): Promise<number> {
      return deviceCodeStore.prune(db, clock.now() - KEEP_AFTER_EXPIRY_MS);
    },
  };
}
export type DeviceCodes = ReturnType<typeof createDeviceCodes>;
