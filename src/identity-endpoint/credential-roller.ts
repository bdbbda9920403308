import type { Clock } from '../lib/clock.js';
import { generateKeyCertificate, type KeyCertificate } from './certificates.js';
import type { StateStore } from './state-store.js';

/** How the endpoint's injected certificates live and roll (all configurable, so a test can force rolls). */
export interface RollPolicy {
  /** Lifetime of each certificate. */
  lifetimeMs: number;
  /** Renew this long before expiry. */
  renewAheadMs: number;
  /** Keep the previous certificate registered this long after switching (in-flight assertions, other nodes). */
  overlapMs: number;
}

export const DEFAULT_ROLL_POLICY: RollPolicy = Object.freeze({
  lifetimeMs: 30 * 86_400_000,
  renewAheadMs: 10 * 86_400_000,
  overlapMs: 3_600_000,
});

export interface StoredCredential extends KeyCertificate {
  /** The credential's key id at the authority. */
  keyId: string;
  createdAt: number;
}
interface CredentialFile {
  current: StoredCredential | null;
  retiring: (StoredCredential & { retireAt: number })[];
}

export interface RollerDeps {
  store: StateStore;
  clock: Clock;
  policy: RollPolicy;
  /** Registers a public certificate for the principal behind `key`; returns its key id. */
  register(key: string, certPem: string): Promise<string>;
  /** Removes a registered certificate (a missing one is not an error). */
  remove(key: string, keyId: string): Promise<void>;
  onError?(key: string, err: unknown): void;
  onRoll?(key: string, cred: StoredCredential): void;
}

const fileOf = (key: string) => `credentials/${key}.json`;

/**
 * Holds one certificate credential per principal (`host` or an identity's
 * object id) in the host store and rolls it before expiry: a new key and
 * certificate are made and registered, then used; the old one stays
 * registered for the overlap and is then removed. Token issuance never waits
 * for a roll while the current certificate is valid.
 */
export function createCredentialRoller(deps: RollerDeps) {
  const { store, clock, policy } = deps;
  const files = new Map<string, CredentialFile>();
  const rolling = new Map<string, Promise<StoredCredential>>();

  const load = (key: string): CredentialFile => {
    let f = files.get(key);
    if (!f) {
      f = store.readJson<CredentialFile>(fileOf(key)) ?? { current: null, retiring: [] };
      files.set(key, f);
    }
    return f;
  };
  const save = (key: string, f: CredentialFile) => store.writeJson(fileOf(key), f);
  const due = (c: StoredCredential) => clock.now() >= c.notAfter - policy.renewAheadMs;
  // Not used in its last moments (clock skew, request latency): a small margin, scaled for tiny test lifetimes.
  const valid = (c: StoredCredential) => clock.now() < c.notAfter - Math.min(5_000, policy.renewAheadMs / 4);

  const roll = (key: string): Promise<StoredCredential> => {
    const running = rolling.get(key);
    if (running) return running;
    const p = (async () => {
      const fresh = await generateKeyCertificate(`latchkey-${key}`, policy.lifetimeMs, clock.now());
      const keyId = await deps.register(key, fresh.certPem);
      const f = load(key);
      const now = clock.now();
      if (f.current) f.retiring.push({ ...f.current, retireAt: now + policy.overlapMs });
      f.current = { ...fresh, keyId, createdAt: now };
      save(key, f);
      deps.onRoll?.(key, f.current);
      return f.current;
    })().finally(() => rolling.delete(key));
    rolling.set(key, p);
    return p;
  };

  return {
    /** The credential to sign with now; rolls in the background when due, waits only when none is valid. */
    async current(key: string): Promise<StoredCredential> {
      const f = load(key);
      const c = f.current;
      if (c && valid(c)) {
        if (due(c)) roll(key).catch((e) => deps.onError?.(key, e));
        return c;
      }
      return roll(key);
    },
    /** Replaces the credential now (e.g. the authority no longer knows it). */
    roll,
    /** Installs a credential registered elsewhere (enrolment). */
    install(key: string, cred: StoredCredential): void {
      const f = load(key);
      if (f.current) f.retiring.push({ ...f.current, retireAt: clock.now() + policy.overlapMs });
      f.current = cred;
      save(key, f);
    },
    /** The stored credential if it is still valid, without rolling. */
    peek(key: string): StoredCredential | undefined {
      const c = load(key).current;
      return c && valid(c) ? c : undefined;
    },
    /** Rolls what is due and removes retired certificates whose overlap has ended. */
    async tick(keys?: Iterable<string>): Promise<void> {
      const all = new Set([...(keys ?? []), ...files.keys()]);
      for (const key of all) {
        const f = load(key);
        if (f.current && due(f.current)) await roll(key).catch((e) => deps.onError?.(key, e));
        const now = clock.now();
        const expired = f.retiring.filter((r) => r.retireAt <= now);
        if (expired.length === 0) continue;
        for (const r of expired) {
          try {
            await deps.remove(key, r.keyId);
          } catch (e) {
            deps.onError?.(key, e);
            if (r.notAfter > now) continue; // try again next tick
          }
          f.retiring = f.retiring.filter((x) => x !== r);
        }
        save(key, f);
      }
    },
    /** Forgets a principal's credentials (its identity is gone from this host). */
    forget(key: string): void {
      files.delete(key);
      store.remove(fileOf(key));
    },
    /** Keys with stored credentials (from disk and memory). */
    known(): string[] {
      const onDisk = store.list('credentials').map((f) => f.replace(/\.json$/, ''));
      return [...new Set([...onDisk, ...files.keys()])];
    },
  };
}
export type CredentialRoller = ReturnType<typeof createCredentialRoller>;

/** Stores a credential registered elsewhere (enrolment) as the principal's current one. */
export function installCredential(store: StateStore, key: string, cred: StoredCredential): void {
  const f = store.readJson<CredentialFile>(fileOf(key)) ?? { current: null, retiring: [] };
  if (f.current) f.retiring.push({ ...f.current, retireAt: Date.now() });
  f.current = cred;
  store.writeJson(fileOf(key), f);
}
