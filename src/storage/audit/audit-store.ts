import type { Queryable } from '../port.js';

/**
 * One audit event as stored (migration 0002). The audit chain's MAC covers exactly these
 * columns (src/audit/log.ts `canonical`), so the log works on the stored form itself and
 * turns it into its camelCase `AuditEvent` for readers.
 */
export interface AuditEventRow {
  seq: number;
  id: string;
  time: number;
  tenant_id: string | null;
  caller_oid: string | null;
  caller_app_id: string | null;
  caller_kind: string | null;
  provisioning_key_id: string | null;
  operation: string;
  target: string | null;
  vault: string | null;
  status: number;
  client_ip: string | null;
  request_id: string | null;
  details: string | null;
  prev_hash: string;
  hash: string;
}

/** Which events a listing wants (all optional but the tenant; `operations` filters in or out). */
export interface AuditEventQuery {
  tenantId: string;
  vault?: string;
  /** Matches the caller's object id or app id. */
  caller?: string;
  operation?: string;
  operations?: { list: readonly string[]; exclude: boolean };
  /** Matches the start of the target (at most 2000 characters). */
  targetPrefix?: string;
  /** Actions taken with the key, and the key's own lifecycle (its id as the target). */
  provisioningKeyId?: string;
  from?: number;
  to?: number;
  before?: number;
  limit: number;
}

const COLUMNS =
  'seq, id, time, tenant_id, caller_oid, caller_app_id, caller_kind, provisioning_key_id, operation, target, vault, status, client_ip, request_id, details, prev_hash, hash';
const PER_ROW = 17;
/** Rows per INSERT: a few statement shapes (cached as prepared statements), few round trips. */
const CHUNK = 32;
const insertSql = new Map<number, string>();
const insertFor = (rows: number): string => {
  let sql = insertSql.get(rows);
  if (!sql) {
    const values = Array.from(
      { length: rows },
      (_, r) => `(${Array.from({ length: PER_ROW }, (_, c) => `$${r * PER_ROW + c + 1}`).join(', ')})`,
    );
    sql = `INSERT INTO audit_events (${COLUMNS}) VALUES ${values.join(', ')}`;
    insertSql.set(rows, sql);
  }
  return sql;
};
const paramsOf = (r: AuditEventRow): (string | number | null)[] => [
  r.seq,
  r.id,
  r.time,
  r.tenant_id,
  r.caller_oid,
  r.caller_app_id,
  r.caller_kind,
  r.provisioning_key_id,
  r.operation,
  r.target,
  r.vault,
  r.status,
  r.client_ip,
  r.request_id,
  r.details,
  r.prev_hash,
  r.hash,
];

/** The chain head's keys in `meta`. */
const HEAD_KEY = 'audit_head';
/** Present (value `pending`) when migration 0012 found a head written before heads were sealed. */
const SEAL_KEY = 'audit_head_seal';

/** The SQL behind the audit log (src/audit/log.ts): events, and the chain head kept in `meta`. */
export const auditStore = {
  /** The stored chain head (`{seq}:{hash}:{tampered}:{mac}`, or the legacy two-part form), if any. */
  async head(q: Queryable): Promise<string | undefined> {
    return (await q.get<{ value: string }>('SELECT value FROM meta WHERE key = $1', [HEAD_KEY]))?.value;
  },
  async writeHead(q: Queryable, value: string): Promise<void> {
    await q.run(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [HEAD_KEY, value],
    );
  },
  /** Replaces an existing head (no insert). */
  async replaceHead(q: Queryable, value: string): Promise<void> {
    await q.run('UPDATE meta SET value = $1 WHERE key = $2', [value, HEAD_KEY]);
  },
  /** Takes the "seal the legacy head" mark migration 0012 left: true if it was there. */
  async takeSealMark(q: Queryable): Promise<boolean> {
    const pending = await q.get<{ value: string }>('SELECT value FROM meta WHERE key = $1', [SEAL_KEY]);
    if (!pending) return false;
    await q.run('DELETE FROM meta WHERE key = $1', [SEAL_KEY]);
    return true;
  },
  /** The newest stored event's seq and hash. */
  async lastEvent(q: Queryable): Promise<{ seq: number; hash: string } | undefined> {
    const r = await q.get<{ seq: number; hash: string }>(
      'SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1',
    );
    return r ? { seq: Number(r.seq), hash: r.hash } : undefined;
  },
  /** Inserts events in order, a chunk of rows per statement. */
  async insertEvents(q: Queryable, rows: readonly AuditEventRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += CHUNK) {
      const chunk = rows.slice(i, i + CHUNK);
      await q.run(insertFor(chunk.length), chunk.flatMap(paramsOf));
    }
  },
  /** Events from `seq` on, in order (verification walks the chain with it). */
  eventsFrom(q: Queryable, seq: number, limit: number): Promise<AuditEventRow[]> {
    return q.all<AuditEventRow>(`SELECT * FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT ${limit}`, [
      seq,
    ]);
  },
  /** A tenant's events, newest first. */
  list(q: Queryable, f: AuditEventQuery): Promise<AuditEventRow[]> {
    const where = ['tenant_id = $1'];
    const params: (string | number)[] = [f.tenantId];
    const add = (sql: string, v: string | number) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (f.vault) add('vault = ?', f.vault);
    if (f.caller) {
      params.push(f.caller);
      where.push(`(caller_oid = $${params.length} OR caller_app_id = $${params.length})`);
    }
    if (f.operation) add('operation = ?', f.operation);
    if (f.operations) {
      const first = params.length + 1;
      params.push(...f.operations.list);
      const list = f.operations.list.map((_, i) => `$${first + i}`).join(', ');
      where.push(`operation ${f.operations.exclude ? 'NOT IN' : 'IN'} (${list})`);
    }
    if (f.targetPrefix) {
      const t = f.targetPrefix.slice(0, 2000);
      add(`substr(target, 1, ${t.length}) = ?`, t);
    }
    if (f.provisioningKeyId) {
      params.push(f.provisioningKeyId);
      where.push(`(provisioning_key_id = $${params.length} OR target = $${params.length})`);
    }
    if (f.from !== undefined) add('time >= ?', f.from);
    if (f.to !== undefined) add('time <= ?', f.to);
    if (f.before !== undefined) add('seq < ?', f.before);
    const limit = Math.min(Math.max(Math.trunc(f.limit), 1), 1000);
    return q.all<AuditEventRow>(
      `SELECT * FROM audit_events WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ${limit}`,
      params,
    );
  },
};
