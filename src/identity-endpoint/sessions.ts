import { randomBytes } from 'node:crypto';

/** A workload started with `latchkey run`: its secrets bind its requests to one app. */
export interface Session {
  /** 32 lower-case hex characters: the IMDS prefix `/s/{id}` (clients lower-case that URL). */
  id: string;
  /** The per-run `IDENTITY_HEADER` value (App Service protocol). */
  header: string;
  app: string;
  /** The app name lower-cased (apps are found case-insensitively). */
  appKey: string;
  pid: number | null;
  createdAt: number;
}

/**
 * The endpoint's sessions, found by either secret. Both are random (128 and
 * 256 bits): a hash-table lookup's timing depends on the string's hash, and a
 * candidate is compared only once its hash matches, so timing cannot reveal a
 * stored secret piece by piece (and this is the hot path: no digest per
 * request). Sessions of processes that have exited are dropped by `sweep`.
 */
export function createSessionRegistry(opts: { max?: number } = {}) {
  const max = opts.max ?? 10_000;
  const byHeader = new Map<string, Session>();
  const byId = new Map<string, Session>();
  return {
    create(app: string, pid: number | null, now = Date.now()): Session {
      if (byId.size >= max) throw new Error('too many sessions');
      const s: Session = {
        id: randomBytes(16).toString('hex'),
        header: randomBytes(32).toString('base64url'),
        app,
        appKey: app.toLowerCase(),
        pid,
        createdAt: now,
      };
      byHeader.set(s.header, s);
      byId.set(s.id, s);
      return s;
    },
    byHeader: (header: string): Session | undefined => byHeader.get(header),
    byId: (id: string): Session | undefined => byId.get(id),
    delete(id: string): boolean {
      const s = byId.get(id);
      if (!s) return false;
      byId.delete(s.id);
      byHeader.delete(s.header);
      return true;
    },
    /** Drops sessions whose process has exited. */
    sweep(): number {
      let n = 0;
      for (const s of [...byId.values()]) {
        if (s.pid === null) continue;
        try {
          process.kill(s.pid, 0);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ESRCH') {
            this.delete(s.id);
            n++;
          }
        }
      }
      return n;
    },
    list: (): Session[] => [...byId.values()],
    get size(): number {
      return byId.size;
    },
  };
}
export type SessionRegistry = ReturnType<typeof createSessionRegistry>;
