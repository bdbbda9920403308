import { createHash } from 'node:crypto';
import pg from 'pg';
import { CHANGE_TOPICS, type ChangeTopic, type RelayableChangeBus } from '../lib/events.js';
import type { Database } from './port.js';

/**
 * The change relay of a node on PostgreSQL: what the ChangeBus publishes here
 * is sent to every other node with NOTIFY, and what other nodes publish is
 * heard on a dedicated LISTEN connection and delivered to this node's caches.
 *
 * - A NOTIFY is issued on the connection of the transaction that made the
 *   change when there is one (PostgreSQL delivers it at COMMIT, never if the
 *   transaction rolls back), else on a pooled connection after the write.
 * - The payload is `{"n": node id, "t": topic, "i": id}`: ids and names, never a secret.
 * - A node's own notifications come back after the commit: they are delivered
 *   locally a second time (closing the window between an in-transaction publish
 *   and the commit) and never relayed again.
 * - The LISTEN connection is checked every `heartbeatMs` by a NOTIFY to itself; an
 *   error, an end or a missing echo is a gap: the relay reconnects with backoff,
 *   and once it listens again it tells every cache to drop everything (resync).
 * - Caches never depend on the relay alone: security-relevant ones re-read within a
 *   second anyway (docs/deployment.md, "Several nodes").
 */
export interface ChangeRelay {
  readonly nodeId: string;
  readonly channel: string;
  /** Counters for /metrics. */
  readonly stats: RelayStats;
  /** True while the LISTEN connection is up and listening. */
  connected(): boolean;
  close(): Promise<void>;
}

export interface RelayStats {
  sent: number;
  received: number;
  /** Send failures (the other nodes fall back to re-validation). */
  sendErrors: number;
  /** Connections made after the first one. */
  reconnects: number;
  /** Resyncs told to the caches (each connection, including the first). */
  resyncs: number;
}

export interface RelayOptions {
  /** Interval of the self-addressed heartbeat on the LISTEN connection. */
  heartbeatMs?: number;
  /** A heartbeat not echoed within this time is a gap. */
  heartbeatTimeoutMs?: number;
  /** Reconnect backoff: first delay, doubled up to the maximum (with jitter). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

const MAX_ID = 512;
const HEARTBEAT = '~hb';
const RESYNC = '*';

/** The channel: one per schema, so installations sharing a database do not hear each other. */
export function channelFor(schema: string): string {
  return `latchkey_changes_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
}

/** Starts the relay on `bus` and resolves once it listens (or rejects if the first connection fails). */
export async function startChangeRelay(deps: {
  url: string;
  db: Database;
  bus: RelayableChangeBus;
  nodeId: string;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  options?: RelayOptions;
}): Promise<ChangeRelay> {
  const { url, db, bus, nodeId } = deps;
  const heartbeatMs = deps.options?.heartbeatMs ?? 2_000;
  const heartbeatTimeoutMs = deps.options?.heartbeatTimeoutMs ?? 3_000;
  const backoffMinMs = deps.options?.backoffMinMs ?? 100;
  const backoffMaxMs = deps.options?.backoffMaxMs ?? 5_000;
  const schema = (await db.get<{ s: string | null }>('SELECT current_schema() AS s'))?.s ?? 'public';
  const channel = channelFor(schema);
  const stats: RelayStats = { sent: 0, received: 0, sendErrors: 0, reconnects: 0, resyncs: 0 };

  let client: pg.Client | undefined;
  let listening = false;
  let closed = false;
  let everConnected = false;
  let backoff = backoffMinMs;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let hbSeq = 0;
  let hbPending: { seq: number; timer: NodeJS.Timeout } | undefined;

  const payloadOf = (topic: string, id: string) => JSON.stringify({ n: nodeId, t: topic, i: id });

  const onNotification = (msg: pg.Notification) => {
    if (msg.channel !== channel || !msg.payload || msg.payload.length > 2 * MAX_ID) return;
    let m: { n?: unknown; t?: unknown; i?: unknown };
    try {
      m = JSON.parse(msg.payload) as typeof m;
    } catch {
      return; // not ours: anyone with database access can NOTIFY; at worst it empties caches
    }
    if (typeof m.n !== 'string' || typeof m.t !== 'string' || typeof m.i !== 'string') return;
    if (m.t === HEARTBEAT) {
      if (m.n === nodeId && hbPending && m.i === String(hbPending.seq)) {
        clearTimeout(hbPending.timer);
        hbPending = undefined;
      }
      return;
    }
    stats.received++;
    if (m.t === RESYNC) {
      stats.resyncs++;
      bus.resync();
      return;
    }
    if (!(CHANGE_TOPICS as readonly string[]).includes(m.t) || m.i.length > MAX_ID) return;
    bus.deliver(m.t as ChangeTopic, m.i);
  };

  /** Connection `c` failed or may have missed notifications: drop it and reconnect. */
  const gap = (c: pg.Client, why: string, err?: unknown) => {
    if (closed || client !== c) return;
    client = undefined;
    listening = false;
    if (hbPending) clearTimeout(hbPending.timer);
    hbPending = undefined;
    c.removeAllListeners('notification');
    c.removeAllListeners('end');
    c.end().catch(() => {});
    deps.log?.warn({ err, why, node: nodeId }, 'change relay lost its LISTEN connection; reconnecting');
    schedule();
  };

  const schedule = () => {
    if (closed || reconnectTimer) return;
    const delay = Math.round(backoff * (0.5 + Math.random() / 2));
    backoff = Math.min(backoff * 2, backoffMaxMs);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connect().catch((err) => {
        deps.log?.warn({ err, node: nodeId }, 'change relay could not reconnect; retrying');
        schedule();
      });
    }, delay);
    reconnectTimer.unref();
  };

  const connect = async () => {
    const c = new pg.Client({
      connectionString: url,
      application_name: `latchkey-relay ${nodeId}`.slice(0, 63),
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
    });
    c.on('error', (err) => gap(c, 'connection error', err));
    try {
      await c.connect();
      if (closed) throw new Error('change relay closed');
      client = c;
      c.on('notification', onNotification);
      c.on('end', () => gap(c, 'connection ended'));
      await c.query(`LISTEN ${channel}`);
    } catch (e) {
      if (client === c) client = undefined;
      c.removeAllListeners('end');
      c.end().catch(() => {});
      throw e;
    }
    listening = true;
    backoff = backoffMinMs;
    if (everConnected) {
      stats.reconnects++;
      deps.log?.info({ node: nodeId }, 'change relay listening again; caches resynced');
    }
    everConnected = true;
    // Listening first, then the flush: a change committed from here on is heard, and
    // one committed before is re-read by the emptied caches.
    stats.resyncs++;
    bus.resync();
  };

  const heartbeat = () => {
    const c = client;
    if (closed || !c || !listening || hbPending) return;
    const seq = ++hbSeq;
    hbPending = {
      seq,
      timer: setTimeout(() => gap(c, 'heartbeat not echoed in time'), heartbeatTimeoutMs),
    };
    hbPending.timer.unref();
    c.query('SELECT pg_notify($1, $2)', [channel, payloadOf(HEARTBEAT, String(seq))]).catch((err) =>
      gap(c, 'heartbeat failed', err),
    );
  };

  await connect();
  heartbeatTimer = setInterval(heartbeat, heartbeatMs);
  heartbeatTimer.unref();

  bus.relay = (topic, id) => {
    if (closed) return;
    // An id too long for one notification (none is, today) widens into "everything changed".
    const payload = id.length > MAX_ID ? payloadOf(RESYNC, '') : payloadOf(topic, id);
    // Inside a transaction this runs on its connection and is delivered at COMMIT.
    db.run('SELECT pg_notify($1, $2)', [channel, payload]).then(
      () => {
        stats.sent++;
      },
      (err: unknown) => {
        stats.sendErrors++;
        deps.log?.warn({ err, topic, node: nodeId }, 'change notification failed; other nodes re-validate');
      },
    );
  };

  return {
    nodeId,
    channel,
    stats,
    connected: () => listening,
    async close() {
      closed = true;
      if (bus.relay) bus.relay = undefined;
      clearInterval(heartbeatTimer);
      clearTimeout(reconnectTimer);
      if (hbPending) clearTimeout(hbPending.timer);
      const c = client;
      client = undefined;
      listening = false;
      if (c) {
        c.removeAllListeners('end');
        await c.end().catch(() => {});
      }
    },
  };
}
