import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { newGuid } from '../lib/ids.js';
import { type SigningAlg, signingKeyStore } from '../storage/authority/signing-key-store.js';
import type { Database, Queryable } from '../storage/port.js';

export type { SigningAlg } from '../storage/authority/signing-key-store.js';

export interface PublicJwk {
  kty: string;
  kid: string;
  use: 'sig';
  alg: SigningAlg;
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
}

export interface ActiveKey {
  kid: string;
  alg: SigningAlg;
  privateKey: KeyObject;
}

const aad = (kid: string) => `signing-key|${kid}`;
/**
 * Other nodes' rotations reach this one through the change bus; without it (a missed or late
 * notification), the active key is re-read at least every 10 s, JWKS on every request, and a
 * token with an unknown `kid` that the table holds makes the keys be re-read at once.
 */
const REFRESH_MS = 10_000;
const MISS_REFRESH_MS = 1_000;
/** Default: a rotation on request waits at least this long after the previous rotation. */
export const MIN_ROTATION_INTERVAL_MS = 10 * 60_000;
/** Default: at most this many keys are published (the active one and previous ones still in their overlap). */
export const MAX_PUBLISHED_KEYS = 5;

function generate(alg: SigningAlg): { privateKey: KeyObject; publicKey: KeyObject } {
  return alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
}

/**
 * The authority's token-signing keys, shared by all tenants (as Entra's are).
 * One key is active; after a rotation the previous key stays in JWKS for the
 * overlap so tokens it signed still verify, then it is retired.
 * Private keys are sealed at rest under the root key.
 */
export function createSigningKeys(deps: {
  db: Database;
  sealer: Sealer;
  clock: Clock;
  bus: ChangeBus;
  alg: SigningAlg;
  overlapSeconds: number;
  /** Limits `signing-key-rotation-interval-seconds` and `signing-key-max-published`. */
  minRotationIntervalMs?: number;
  maxPublished?: number;
}) {
  const { db, sealer, clock, bus } = deps;
  const minInterval = deps.minRotationIntervalMs ?? MIN_ROTATION_INTERVAL_MS;
  const maxPublished = Math.max(2, deps.maxPublished ?? MAX_PUBLISHED_KEYS);
  let active: ActiveKey | undefined;
  let published: PublicJwk[] = [];
  const verifyKeys = new Map<string, { key: KeyObject; alg: SigningAlg; retireAt: number | null }>();
  // On the monotonic clock (a wall-clock step must not delay a reload); -Infinity: reload next call.
  let lastReload = Number.NEGATIVE_INFINITY;

  // Bumped by every notification: a reload under way meanwhile (it may predate the change) serves
  // its callers but does not count as a reload (the next call reads again).
  let heard = 0;
  const reload = async () => {
    const now = clock.now();
    const started = clock.monotonic();
    const mark = heard;
    const rows = await signingKeyStore.listPublished(db, now);
    const act = rows.find((r) => r.state === 'active');
    if (act && act.kid !== active?.kid) {
      active = {
        kid: act.kid,
        alg: act.alg,
        privateKey: createPrivateKey({
          key: sealer.open(act.privateSealed, aad(act.kid)),
          format: 'der',
          type: 'pkcs8',
        }),
      };
    }
    published = rows.map((r) => JSON.parse(r.publicJwk) as PublicJwk);
    verifyKeys.clear();
    for (const r of rows) {
      verifyKeys.set(r.kid, {
        key: createPublicKey({ key: JSON.parse(r.publicJwk), format: 'jwk' }),
        alg: r.alg,
        retireAt: r.state === 'active' ? null : r.retireAt,
      });
    }
    lastReload = mark === heard ? started : Number.NEGATIVE_INFINITY;
  };

  const createKey = async (): Promise<void> => {
    const { privateKey, publicKey } = generate(deps.alg);
    const kid = newGuid().replaceAll('-', '');
    const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>;
    const pub: PublicJwk = { ...jwk, kty: jwk.kty!, kid, use: 'sig', alg: deps.alg };
    const now = clock.now();
    await db.transaction(async (tx) => {
      await tx.lock('latchkey:signing-keys');
      await signingKeyStore.retireActive(tx, now + deps.overlapSeconds * 1000);
      await signingKeyStore.insertActive(tx, {
        kid,
        alg: deps.alg,
        publicJwk: JSON.stringify(pub),
        privateSealed: sealer.seal(privateKey.export({ format: 'der', type: 'pkcs8' }), aad(kid)),
        createdAt: now,
      });
      // Retired keys are deleted once their overlap has ended.
      await signingKeyStore.deleteRetired(tx, now);
    });
    bus.publish('signingKey', kid);
  };

  /**
   * How long until a rotation may happen (0: now): the minimum interval since the active key
   * was made, and a free place among the published keys (the oldest leaves when its overlap ends).
   */
  const rotationWait = async (q: Queryable): Promise<number> => {
    const now = clock.now();
    const rows = await signingKeyStore.listPublishedTimes(q, now);
    const act = rows.find((r) => r.state === 'active');
    // A previous key still published: the active key came from a rotation (not the first start).
    const rotated = rows.some((r) => r.state !== 'active');
    const interval = act && rotated ? act.createdAt + minInterval - now : 0;
    let slot = 0;
    if (rows.length >= maxPublished) {
      const retires = rows
        .filter((r) => r.state !== 'active' && r.retireAt !== null)
        .map((r) => Number(r.retireAt))
        .sort((a, b) => a - b);
      // Free places needed: the published keys beyond the cap, plus one for the new key.
      slot = (retires[rows.length - maxPublished] ?? now + deps.overlapSeconds * 1000) - now;
    }
    return Math.max(0, interval, slot);
  };

  // Another node's rotation (or a missed notification) makes the next call re-read the table.
  const stale = () => {
    heard++;
    lastReload = Number.NEGATIVE_INFINITY;
  };
  bus.subscribe('signingKey', stale);
  bus.onResync(stale);
  // One reload at a time: concurrent callers share it.
  let reloading: Promise<void> | undefined;
  const refresh = (): Promise<void> =>
    (reloading ??= reload().finally(() => {
      reloading = undefined;
    }));

  return {
    async init(): Promise<void> {
      await reload();
      if (!active) {
        await db.transaction(async (tx) => {
          await tx.lock('latchkey:signing-keys');
          if (!(await signingKeyStore.findActive(tx))) await createKey();
        });
        await reload();
      }
    },
    /**
     * Creates a new active key; the old one stays published for the overlap. Refused
     * (`Throttled`, with `Retry-After`) within the minimum interval of the last rotation, or
     * while the maximum of published keys is reached (until the oldest one's overlap ends).
     * Decided under the signing-key lock, so racing requests on several nodes rotate once.
     */
    async rotate(): Promise<{ kid: string; previous: string | undefined }> {
      const previous = active?.kid;
      await db.transaction(async (tx) => {
        await tx.lock('latchkey:signing-keys');
        const waitMs = await rotationWait(tx);
        if (waitMs > 0) {
          const seconds = Math.ceil(waitMs / 1000);
          throw new LatchkeyError(
            'Throttled',
            `The signing key was rotated recently, or ${maxPublished} keys are already published: try again in ${seconds} s.`,
            { headers: { 'Retry-After': String(seconds) } },
          );
        }
        await createKey();
      });
      // A refresh that began before the commit must not land after this reload.
      await reloading?.catch(() => {});
      await reload();
      return { kid: active!.kid, previous };
    },
    /**
     * The scheduled rotation (job `signing-key-rotation`): replaces the active key once it is
     * `maxAgeMs` old. Decided under the signing-key lock, so nodes racing here rotate once.
     */
    async rotateIfOlderThan(maxAgeMs: number): Promise<{ kid: string; previous: string } | undefined> {
      const previous = await db.transaction(async (tx) => {
        await tx.lock('latchkey:signing-keys');
        const row = await signingKeyStore.findActive(tx);
        if (!row || clock.now() - row.createdAt < maxAgeMs) return undefined;
        // At the cap of published keys, the next round tries again.
        if ((await rotationWait(tx)) > 0) return undefined;
        await createKey();
        return row.kid;
      });
      if (previous === undefined) return undefined;
      await reloading?.catch(() => {});
      await reload();
      return { kid: active!.kid, previous };
    },
    async active(): Promise<ActiveKey> {
      if (!active || clock.monotonic() - lastReload > REFRESH_MS) await refresh();
      return active!;
    },
    /** The published keys, read from the database each time (rare: clients cache JWKS), so a key made on another node is in it at once. */
    async jwks(): Promise<{ keys: PublicJwk[] }> {
      await refresh();
      return { keys: published };
    },
    /**
     * The public key for a `kid`. An unknown `kid` that the table holds (a key made on another
     * node moments ago) reloads the keys; other unknown ids cost one primary-key lookup.
     */
    async verificationKey(kid: string): Promise<{ key: KeyObject; alg: SigningAlg } | undefined> {
      if (clock.monotonic() - lastReload > REFRESH_MS) await refresh();
      let k = verifyKeys.get(kid);
      if (
        !k &&
        (clock.monotonic() - lastReload > MISS_REFRESH_MS ||
          (/^[0-9a-f]{32}$/.test(kid) && (await signingKeyStore.exists(db, kid))))
      ) {
        await refresh();
        k = verifyKeys.get(kid);
      }
      // A retired key stops verifying the moment its overlap ends, whatever the cache holds.
      if (!k || (k.retireAt !== null && k.retireAt <= clock.now())) return undefined;
      return { key: k.key, alg: k.alg };
    },
  };
}
export type SigningKeys = ReturnType<typeof createSigningKeys>;
