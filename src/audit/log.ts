import { AsyncResource } from 'node:async_hooks';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { newGuid } from '../lib/ids.js';
import { type AuditEventRow, auditStore } from '../storage/audit/audit-store.js';
import type { Database, Queryable, Transaction } from '../storage/port.js';

/** One audit record. Never holds a secret value: targets are ids, details are metadata. */
export interface AuditInput {
  tenantId: string | null;
  callerOid?: string | null;
  callerAppId?: string | null;
  callerKind?: string | null;
  provisioningKeyId?: string | null;
  operation: string;
  target?: string | null;
  vault?: string | null;
  status: number;
  clientIp?: string | null;
  requestId?: string | null;
  details?: Record<string, string | number | boolean | null> | null;
}

export interface AuditEvent extends Required<Omit<AuditInput, 'details'>> {
  seq: number;
  id: string;
  time: number;
  details: Record<string, string | number | boolean | null> | null;
  prevHash: string;
  hash: string;
}

type Row = AuditEventRow;

const GENESIS = '0'.repeat(64);
const noop = (): void => {};

/**
 * The chain head as stored in `meta`: `{seq}:{hash}:{tampered}:{mac}`. `tampered`
 * is 0, or the first seq appended after a head that failed its check (sticky,
 * so the finding survives later appends). A head of two parts is the legacy,
 * unsealed form.
 */
interface Head {
  seq: number;
  hash: string;
  tampered: number;
}
type HeadState =
  | { kind: 'none' }
  | { kind: 'legacy'; seq: number; hash: string }
  | { kind: 'forged' }
  | ({ kind: 'sealed' } & Head);

const fromRow = (r: Row): AuditEvent => ({
  seq: Number(r.seq),
  id: r.id,
  time: Number(r.time),
  tenantId: r.tenant_id,
  callerOid: r.caller_oid,
  callerAppId: r.caller_app_id,
  callerKind: r.caller_kind,
  provisioningKeyId: r.provisioning_key_id,
  operation: r.operation,
  target: r.target,
  vault: r.vault,
  status: Number(r.status),
  clientIp: r.client_ip,
  requestId: r.request_id,
  details: r.details ? (JSON.parse(r.details) as AuditEvent['details']) : null,
  prevHash: r.prev_hash,
  hash: r.hash,
});

/** The canonical bytes a link's MAC covers: every column but the hash itself, in a fixed order. */
// duplicate-ok: the MAC input order is a frozen format of the hash chain, not the store's column list
const canonical = (r: Omit<Row, 'hash'>): string =>
  JSON.stringify([
    Number(r.seq),
    r.id,
    Number(r.time),
    r.tenant_id,
    r.caller_oid,
    r.caller_app_id,
    r.caller_kind,
    r.provisioning_key_id,
    r.operation,
    r.target,
    r.vault,
    Number(r.status),
    r.client_ip,
    r.request_id,
    r.details,
    r.prev_hash,
  ]);

/**
 * Operations that change nothing: reads, listings, uses of a key (crypto) and
 * of the audit log itself. Every other operation is a change (or an attempt at
 * one, when its status is an error). Records carry no read flag of their own;
 * this list is the one place that tells them apart.
 */
export const READ_OPERATIONS: readonly string[] = [
  'AppSettingsList',
  'AppSettingsReadByHost',
  'AuditList',
  'AuditVerify',
  'KeyBackup',
  'KeyDecrypt',
  'KeyEncrypt',
  'KeyGet',
  'KeyGetDeleted',
  'KeyGetRotationPolicy',
  'KeyList',
  'KeyListDeleted',
  'KeyListVersions',
  'KeySign',
  'KeyUnwrap',
  'KeyVerify',
  'KeyWrap',
  'SecretBackup',
  'SecretGet',
  'SecretGetDeleted',
  'SecretList',
  'SecretListDeleted',
  'SecretListVersions',
  'VaultGetRandomBytes',
];

const READ_SET = new Set(READ_OPERATIONS);
/** True for an operation of {@link READ_OPERATIONS}. */
export const isReadOperation = (operation: string): boolean => READ_SET.has(operation);

export interface AuditFilter {
  tenantId: string;
  /** Only reads, or only changes (see {@link READ_OPERATIONS}); both when absent. */
  kind?: 'read' | 'change';
  vault?: string;
  caller?: string;
  operation?: string;
  /** Events whose target starts with this (an ARM id or a vault object URL and what lies below it). */
  target?: string;
  provisioningKeyId?: string;
  from?: number;
  to?: number;
  /** Return events with seq < before (paging newest first). */
  before?: number;
  limit?: number;
}

export type VerifyResult =
  | { ok: true; count: number; head: { seq: number; hash: string } | null }
  | { ok: false; count: number; brokenAt: number; reason: string };

/** Batches of records are committed from here: an async context of their own (see `flush`). */
const flushRoot = new AsyncResource('latchkey.auditFlush');

/**
 * The append-only, tamper-evident audit log. Each event carries
 * HMAC(root-derived key, canonical(event) incl. the previous link's hash), so
 * a row changed, removed or reordered breaks the chain, and the chain cannot
 * be recomputed without the root key. The head (last seq and hash) is kept in
 * `meta` in the same transaction, sealed with a MAC under a second root-derived
 * key (`headKey`), so removing the newest rows and rewriting the head is caught
 * too. An append that finds the head missing, unsealed or with a wrong MAC goes
 * on from the last stored event and marks the head tampered for good (verify
 * keeps reporting it), rather than sealing a forged head or failing the write.
 *
 * Not detectable without something outside the database: a writer holding the
 * root key; and a rollback of the audit rows and head together to a state seen
 * earlier (an older backup, an older head copied by someone reading the
 * database), including removing every event and the head. See docs/access.md.
 *
 * Mutations append in their own transaction (atomic with the change, durable
 * before it is acknowledged); reads and refusals go through a group-commit
 * buffer (`record`): one relaxed transaction per 25 ms or 500 events, whichever
 * comes first, so a busy read path commits a few dozen times a second rather
 * than once per request, at the price of the last few milliseconds of read
 * records in a crash (docs/storage.md, "Durability of audit records").
 */
export function createAuditLog(deps: {
  db: Database;
  clock: Clock;
  macKey: Buffer;
  /** Seals the chain head; derived from the root key with its own label (`audit-head`). */
  headKey: Buffer;
  flushMs?: number;
  /**
   * Refuse an append whose transaction took another lock before the log's (see `lockLog`). Off in
   * a real installation (the order is then only documented: a wrong one costs a 503 on PostgreSQL,
   * never a wrong answer); on under the test runner (LATCHKEY_TEST=1), so the suite finds every
   * writer that takes its locks in the wrong order, on SQLite as on PostgreSQL.
   */
  strictLockOrder?: boolean;
}) {
  const { db, clock, macKey, headKey } = deps;
  const strictLockOrder = deps.strictLockOrder ?? process.env.LATCHKEY_TEST === '1';
  const mac = (s: string) => createHmac('sha256', macKey).update(s).digest('hex');
  const headMac = (h: Head) =>
    createHmac('sha256', headKey)
      .update(`latchkey/audit-head/v1:${h.seq}:${h.hash}:${h.tampered}`)
      .digest('hex');
  const sealHead = (h: Head) => `${h.seq}:${h.hash}:${h.tampered}:${headMac(h)}`;
  const parseHead = (value: string | undefined): HeadState => {
    if (value === undefined) return { kind: 'none' };
    const parts = value.split(':');
    const seq = Number(parts[0]);
    const hash = parts[1] ?? '';
    if (!Number.isSafeInteger(seq) || seq < 0 || !/^[0-9a-f]{64}$/.test(hash)) return { kind: 'forged' };
    if (parts.length === 2) return { kind: 'legacy', seq, hash };
    const tampered = Number(parts[2]);
    const given = Buffer.from(parts[3] ?? '', 'hex');
    if (parts.length !== 4 || !Number.isSafeInteger(tampered) || tampered < 0) return { kind: 'forged' };
    const head = { seq, hash, tampered };
    const expected = Buffer.from(headMac(head), 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected)
      ? { kind: 'sealed', ...head }
      : { kind: 'forged' };
  };
  /**
   * The last head this process sealed or verified, with what `parseHead` makes of it: `parseHead`
   * is a pure function of the stored text (the keys are fixed), so a head read back unchanged —
   * every append of a group-committed batch reads the one its predecessor wrote — needs no second
   * MAC check. Any other text (another node's append, a rollback, a forgery) is parsed in full.
   */
  let known: { text: string; state: HeadState } | undefined;
  const headState = (text: string | undefined): HeadState => {
    if (text !== undefined && text === known?.text) return known.state;
    const state = parseHead(text);
    if (text !== undefined && state.kind === 'sealed') known = { text, state };
    return state;
  };
  const readHead = async (q: Queryable): Promise<HeadState> => headState(await auditStore.head(q));
  /**
   * The head text this process's last append wrote. A sealed head read back as anything else was
   * written by someone else: another node or process (its events end at that head), or a head put
   * back to an older sealed value with its later events kept. Only then does an append look at the
   * last stored event as well (one indexed read), so a rewound head cannot make the next sequence
   * number collide with a stored event and fail every audited write until a human repairs it.
   */
  let lastWritten: string | undefined;
  const buffer: { input: AuditInput; time: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;

  /**
   * A record keeps what a request named even when it holds U+0000 (a refused name from a path):
   * the stores refuse NUL in text (storage/errors.ts, refuseNulText), and one such record would
   * fail its whole batch, the other requests' records with it. NUL becomes U+FFFD.
   */
  const withoutNul = <T extends string | null>(v: T): T =>
    (typeof v === 'string' && v.includes('\u0000') ? v.replaceAll('\u0000', '\uFFFD') : v) as T;
  /**
   * Where this transaction's chain stands after its appends so far (a note of the transaction,
   * storage/tx-scope.ts): the next append of the same transaction goes on from it without reading
   * the head, and the head is sealed and written once, just before the COMMIT. A group-committed
   * batch of writes thus writes the head once, not once per write; a write rolled back to its
   * savepoint takes its note back with its events, so the next append goes on from the last event
   * that was kept.
   */
  const HEAD_NOTE = 'latchkey:audit-head';
  /** The log's named lock: every append, and `hold`, take it. */
  const AUDIT_LOCK = 'latchkey:audit';
  /** Set by `hold` once the lock is taken in the transaction. */
  const HOLD_NOTE = 'latchkey:audit-held';
  const isHead = (v: unknown): v is Head => typeof v === 'object' && v !== null && 'seq' in v && 'hash' in v;
  /**
   * Takes the log's lock in `tx`. Lock order: a transaction that appends takes this lock before
   * any other (a named lock, or the row locks of a row it changed). Every such transaction then
   * waits for the log's lock holding nothing else, and two of them on PostgreSQL never wait for
   * each other's locks in opposite orders (a deadlock, answered 503). A writer that must lock
   * something before it appends calls `hold` first. With `strictLockOrder`, a wrong order throws.
   */
  const lockLog = async (tx: Transaction): Promise<void> => {
    const first = tx.firstLock();
    if (strictLockOrder && first !== undefined && first !== AUDIT_LOCK) {
      const e = new Error(
        `lock order: this transaction took a lock (${first}) before the audit log's; call audit.hold(tx) first`,
      );
      // Also on stderr: a server answers the error as a 500 and logs it at a level tests silence.
      console.error(e.stack);
      throw e;
    }
    await tx.lock(AUDIT_LOCK);
  };
  /** Where the chain stands at the start of this transaction's first append (the head, checked). */
  const startOf = async (tx: Transaction): Promise<Head> => {
    await lockLog(tx);
    const text = await auditStore.head(tx);
    const head = headState(text);
    if (head.kind === 'sealed') {
      if (text === lastWritten) return { seq: head.seq, hash: head.hash, tampered: head.tampered };
      // Events stored beyond a valid sealed head: it was put back to an older one. Go on from the
      // last stored event and mark the head for good (verify reports it), as for a forged head.
      const last = await auditStore.lastEvent(tx);
      if (last && last.seq > head.seq)
        return { seq: last.seq, hash: last.hash, tampered: head.tampered || last.seq + 1 };
      return { seq: head.seq, hash: head.hash, tampered: head.tampered };
    }
    // No trustworthy head: go on from the stored events (a head missing with no events is a new log).
    const last = await auditStore.lastEvent(tx);
    const seq = last?.seq ?? 0;
    return { seq, hash: last?.hash ?? GENESIS, tampered: head.kind !== 'none' || last ? seq + 1 : 0 };
  };
  const writeNotedHead = async (tx: Transaction): Promise<void> => {
    const next = tx.notes.get(HEAD_NOTE);
    if (!isHead(next)) return; // every append of this transaction failed: the head stays as it is
    const sealed = sealHead(next);
    await auditStore.writeHead(tx, sealed);
    known = { text: sealed, state: { kind: 'sealed', ...next } };
    lastWritten = sealed;
  };
  const appendRows = async (tx: Transaction, items: { input: AuditInput; time: number }[]) => {
    const noted = tx.notes.get(HEAD_NOTE);
    // Appended before in this transaction, but the lock record starts over (a group commit's next
    // write): its order is checked as its own transaction's would be (the lock itself is held).
    if (isHead(noted) && tx.firstLock() !== AUDIT_LOCK) await lockLog(tx);
    const start = isHead(noted) ? noted : await startOf(tx);
    let n = start.seq;
    let prev = start.hash;
    const rows: Row[] = [];
    for (const { input, time } of items) {
      n += 1;
      // Every text column through withoutNul (one check per column, no copy of the row).
      const row: Row = {
        seq: n,
        id: withoutNul(newGuid()),
        time,
        tenant_id: withoutNul(input.tenantId),
        caller_oid: withoutNul(input.callerOid ?? null),
        caller_app_id: withoutNul(input.callerAppId ?? null),
        caller_kind: withoutNul(input.callerKind ?? null),
        provisioning_key_id: withoutNul(input.provisioningKeyId ?? null),
        operation: withoutNul(input.operation.slice(0, 100)),
        target: withoutNul(input.target?.slice(0, 1000) ?? null),
        vault: withoutNul(input.vault ?? null),
        status: input.status,
        client_ip: withoutNul(input.clientIp?.slice(0, 64) ?? null),
        request_id: withoutNul(input.requestId?.slice(0, 100) ?? null),
        details: withoutNul(input.details ? JSON.stringify(input.details).slice(0, 4000) : null),
        prev_hash: withoutNul(prev),
        hash: '',
      };
      row.hash = mac(canonical(row));
      rows.push(row);
      prev = row.hash;
    }
    // The hook first: a transaction that can no longer take one (it is committing) gets no events.
    tx.beforeCommit(HEAD_NOTE, () => writeNotedHead(tx));
    try {
      await auditStore.insertEvents(tx, rows);
    } catch (e) {
      // A sequence number taken after all (a head put back to the very text this process last
      // wrote, another node's later events kept): the next append looks at the stored events.
      lastWritten = undefined;
      throw e;
    }
    const next: Head = { seq: n, hash: prev, tampered: start.tampered };
    tx.notes.set(HEAD_NOTE, next);
  };

  /** Commits one batch of buffered records (at most MAX_BATCH), resolving or rejecting their promises. */
  const MAX_BATCH = 1000;
  /** A batch this large is committed at once instead of waiting for the window. */
  const FULL = 500;
  const flushMs = deps.flushMs ?? 25;
  const flushBatch = async (): Promise<void> => {
    const items = buffer.splice(0, MAX_BATCH);
    if (items.length === 0) return;
    // Batched records are reads and refusals: a relaxed commit (see Database.transaction). The
    // append goes through `tx` alone (`explicit`): a GET's load opens no transaction that turns on
    // the async-context tracking (tx-scope.ts), which would cost every promise meanwhile.
    const commit = () => db.transaction((tx) => appendRows(tx, items), { relaxed: true, explicit: true });
    try {
      try {
        await commit();
      } catch {
        // Once more: these reads were answered already, so a lost batch loses records of reads
        // that happened. A head put back to the one this process last wrote fails the first
        // attempt and not the second (the failed insert made the next append check the events).
        await commit();
      }
      for (const i of items) i.resolve();
    } catch (e) {
      for (const i of items) i.reject(e);
    }
  };
  /**
   * Starts flushing unless a flush is running: one batch transaction at a time
   * per node (records arriving meanwhile join the next batch), so group commits
   * never pile up waiting for the audit lock and starve the connection pool.
   */
  const flush = (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    // From an empty async context, not the enqueuer's: a record noted inside a transaction must
    // not make its batch join that transaction (or, once it has ended, run as if inside it).
    flushing ??= flushRoot.runInAsyncScope(async () => {
      try {
        do await flushBatch();
        while (buffer.length >= FULL);
      } finally {
        flushing = undefined;
        // What arrived meanwhile waits for the next window (or goes at once when a batch is full).
        if (buffer.length > 0 && !timer) timer = setTimeout(() => void flush(), flushMs);
      }
    });
    return flushing;
  };

  const enqueue = (input: AuditInput, resolve: () => void, reject: (e: unknown) => void): void => {
    buffer.push({ input, time: clock.now(), resolve, reject });
    if (buffer.length >= FULL) void flush();
    else if (!timer && !flushing) timer = setTimeout(() => void flush(), flushMs);
  };

  return {
    /**
     * Upgrade step, run at start-up: seals a head written before heads were sealed
     * (migration 0012 marks one). Returns the head it sealed, if any, for the
     * operator log. Nothing to do on a new installation or after the first start.
     */
    async sealLegacyHead(): Promise<{ seq: number; hash: string } | undefined> {
      return db.transaction(async (tx) => {
        await tx.lock(AUDIT_LOCK);
        const head = await readHead(tx);
        if (!(await auditStore.takeSealMark(tx))) return undefined;
        if (head.kind !== 'legacy') return undefined;
        await auditStore.replaceHead(tx, sealHead({ ...head, tampered: 0 }));
        return { seq: head.seq, hash: head.hash };
      });
    },
    /** The sealed head (last seq and hash) for the operator log; undefined when empty or not sealed. */
    async head(): Promise<{ seq: number; hash: string } | undefined> {
      const h = await readHead(db);
      return h.kind === 'sealed' ? { seq: h.seq, hash: h.hash } : undefined;
    },
    /**
     * Takes the log's lock in `tx` now, as its first append would (held until the commit). A
     * change that will append and takes another lock first (a vault's, a row's) takes this one
     * before it: every writer then takes the audit lock first, and two writers on PostgreSQL never
     * wait for each other's locks in opposite orders (a deadlock, a 503). Cheap when held already.
     */
    async hold(tx: Transaction): Promise<void> {
      // Held, and first in what counts as this transaction (a group commit's batch counts each write).
      if (tx.notes.get(HOLD_NOTE) && tx.firstLock() === AUDIT_LOCK) return;
      await lockLog(tx);
      tx.notes.set(HOLD_NOTE, true);
    },
    /** Appends inside the caller's transaction, so the event commits (or not) with the change. */
    async append(tx: Transaction, input: AuditInput): Promise<void> {
      await appendRows(tx, [{ input, time: clock.now() }]);
    },
    /**
     * Appends soon, batched with others (group commit: one transaction per 25 ms or 500 records).
     * Resolves once the batch holding it has committed — a *relaxed* commit: from then on safe
     * against a crash of this process, not against a power loss or OS crash (see
     * Database.transaction). Request paths do not await it (the answer goes first), so a crash
     * can lose the records of the last few milliseconds of reads and refusals; changes use
     * `append` in their own transaction instead. Exactly what can be lost: docs/storage.md,
     * "Durability of audit records".
     */
    record(input: AuditInput): Promise<void> {
      // Inside an open transaction the batch holding this record commits only after that
      // transaction ends (it waits for the log's lock on PostgreSQL, for the connection on
      // SQLite): awaited there, it would wait for itself, and hold every writer up with it. So
      // there it is queued and the promise resolves at once; under the test runner it rejects,
      // so the suite finds the caller (which should `note` it, or `append` it to the transaction).
      if (db.current() !== undefined) {
        enqueue(input, noop, noop);
        return strictLockOrder
          ? Promise.reject(
              new Error(
                'audit.record inside an open transaction: its batch waits for that transaction; use note() or append()',
              ),
            )
          : Promise.resolve();
      }
      return new Promise((resolve, reject) => enqueue(input, resolve, reject));
    },
    /**
     * {@link record} for a caller that does not wait (a read's record, answered first): the same
     * batch and commit, without a promise per record; `onError` hears a batch that failed.
     */
    note(input: AuditInput, onError: (e: unknown) => void): void {
      enqueue(input, noop, onError);
    },
    /** Writes anything buffered (shutdown). */
    async drain(): Promise<void> {
      while (buffer.length > 0 || flushing) await flush();
    },
    async list(f: AuditFilter, q: Queryable = db): Promise<AuditEvent[]> {
      const rows = await auditStore.list(q, {
        tenantId: f.tenantId,
        ...(f.vault ? { vault: f.vault.toLowerCase() } : {}),
        ...(f.caller ? { caller: f.caller.toLowerCase() } : {}),
        ...(f.operation ? { operation: f.operation } : {}),
        ...(f.kind ? { operations: { list: READ_OPERATIONS, exclude: f.kind !== 'read' } } : {}),
        ...(f.target ? { targetPrefix: f.target } : {}),
        ...(f.provisioningKeyId ? { provisioningKeyId: f.provisioningKeyId } : {}),
        ...(f.from !== undefined ? { from: f.from } : {}),
        ...(f.to !== undefined ? { to: f.to } : {}),
        ...(f.before !== undefined ? { before: f.before } : {}),
        limit: f.limit ?? 100,
      });
      return rows.map(fromRow);
    },
    /** Walks the whole chain in order and reports the first broken link. */
    async verify(): Promise<VerifyResult> {
      let prev = GENESIS;
      let expectSeq = 1;
      let count = 0;
      for (;;) {
        const rows = await auditStore.eventsFrom(db, expectSeq, 2000);
        for (const r of rows) {
          const seq = Number(r.seq);
          if (seq !== expectSeq)
            return { ok: false, count, brokenAt: expectSeq, reason: `event ${expectSeq} is missing` };
          if (r.prev_hash !== prev)
            return {
              ok: false,
              count,
              brokenAt: seq,
              reason: `event ${seq} does not follow event ${seq - 1}`,
            };
          if (mac(canonical(r)) !== r.hash)
            return { ok: false, count, brokenAt: seq, reason: `event ${seq} was altered` };
          prev = r.hash;
          expectSeq = seq + 1;
          count++;
        }
        if (rows.length < 2000) break;
      }
      const last = count === 0 ? 0 : expectSeq - 1;
      const fail = (brokenAt: number, reason: string): VerifyResult => ({
        ok: false,
        count,
        brokenAt,
        reason,
      });
      const head = await readHead(db);
      switch (head.kind) {
        case 'none':
          if (count === 0) return { ok: true, count, head: null };
          return fail(expectSeq, 'the chain head is missing: the log may have been truncated');
        case 'legacy':
          return fail(expectSeq, 'the chain head is not sealed: the log may have been truncated');
        case 'forged':
          return fail(expectSeq, 'the chain head was rewritten without the root key: the log was truncated');
        case 'sealed':
          if (head.tampered > 0)
            return fail(
              head.tampered,
              `the chain head was found rewritten (without the root key, or put back to an older head) before event ${head.tampered}: the log may have been truncated`,
            );
          if (head.seq !== last || (count > 0 && head.hash !== prev))
            return fail(
              Math.min(head.seq, last) + 1,
              `the log was truncated: the sealed head is event ${head.seq}, the log ends at event ${last}`,
            );
          return { ok: true, count, head: count === 0 ? null : { seq: head.seq, hash: head.hash } };
      }
    },
  };
}
export type AuditLog = ReturnType<typeof createAuditLog>;
