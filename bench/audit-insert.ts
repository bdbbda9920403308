// Micro-benchmark of audit inserts on SQLite, by table shape and table size:
//   node --import tsx bench/audit-insert.ts [--sizes 32000,300000] [--rounds 3] [--rows 2000] [--batch 1]
// Each variant fills a fresh database file (WAL, synchronous=NORMAL as the batched
// reads' commits run) to the given size, then times `--rows` further inserts in
// transactions of `--batch` rows, with the same 17 columns and index set as the audit
// table. Variants are interleaved A B C D A B C D … for --rounds rounds, each in its own
// child process; prints the median and min–max µs per inserted row.
//   before     seq BIGINT PRIMARY KEY (not a rowid alias) + UNIQUE random UUIDv4 id (0002)
//   uuid4      seq INTEGER PRIMARY KEY (rowid alias) + UNIQUE random UUIDv4 id
//   uuid7      seq INTEGER PRIMARY KEY + UNIQUE time-ordered UUIDv7 id
//   after      seq INTEGER PRIMARY KEY, no index on id (0014)
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Sqlite from 'better-sqlite3';

const VARIANTS = ['before', 'uuid4', 'uuid7', 'after'] as const;
type Variant = (typeof VARIANTS)[number];

const COLS =
  'seq, id, time, tenant_id, caller_oid, caller_app_id, caller_kind, provisioning_key_id, operation, target, vault, status, client_ip, request_id, details, prev_hash, hash';

const schema = (v: Variant) => `
CREATE TABLE audit_events (
  seq ${v === 'before' ? 'BIGINT' : 'INTEGER'} PRIMARY KEY,
  id TEXT NOT NULL ${v === 'after' ? '' : 'UNIQUE'},
  time BIGINT NOT NULL, tenant_id TEXT, caller_oid TEXT, caller_app_id TEXT, caller_kind TEXT,
  provisioning_key_id TEXT, operation TEXT NOT NULL, target TEXT, vault TEXT, status INTEGER NOT NULL,
  client_ip TEXT, request_id TEXT, details TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, time);
CREATE INDEX audit_events_vault ON audit_events (vault, seq);
CREATE INDEX audit_events_caller ON audit_events (caller_oid, seq);`;

let last7 = 0;
let ctr7 = 0;
/** RFC 9562 UUIDv7: 48-bit ms time, version, 12-bit counter within the ms, random rest. */
const uuid7 = (now: number): string => {
  ctr7 = now === last7 ? ctr7 + 1 : 0;
  last7 = now;
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | ((ctr7 >> 8) & 0x0f);
  b[7] = ctr7 & 0xff;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

function run(v: Variant, size: number, rows: number, batch: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-audit-bench-'));
  try {
    const db = new Sqlite(join(dir, 'a.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(schema(v));
    const ins = db.prepare(`INSERT INTO audit_events (${COLS}) VALUES (${Array(17).fill('?').join(', ')})`);
    const hash = randomBytes(32).toString('hex');
    let seq = 0;
    const one = () => {
      seq += 1;
      const now = Date.now();
      ins.run(
        seq,
        v === 'uuid7' ? uuid7(now) : randomUUID(),
        now,
        'tenant-0001',
        'caller-oid-0001',
        'app-0001',
        'servicePrincipal',
        null,
        'SecretGet',
        'https://vault.example/secrets/s1',
        'vault1',
        200,
        '127.0.0.1',
        randomUUID(),
        null,
        hash,
        hash,
      );
    };
    const fill = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) one();
    });
    for (let left = size; left > 0; left -= 10000) fill(Math.min(left, 10000));
    db.pragma('wal_checkpoint(TRUNCATE)');
    const t0 = performance.now();
    for (let done = 0; done < rows; done += batch) fill(batch);
    const us = ((performance.now() - t0) * 1000) / rows;
    db.close();
    return us;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sorted = (v: number[]) => [...v].sort((a, b) => a - b);
const med = (v: number[]) => {
  const s = sorted(v);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const { values } = parseArgs({
  options: {
    variant: { type: 'string' },
    size: { type: 'string' },
    sizes: { type: 'string' },
    rounds: { type: 'string' },
    rows: { type: 'string' },
    batch: { type: 'string' },
  },
});
const rows = Number(values.rows ?? 2000);
const batch = Number(values.batch ?? 1);
if (values.variant) {
  process.stdout.write(String(run(values.variant as Variant, Number(values.size), rows, batch)));
} else {
  const sizes = (values.sizes ?? '32000,300000').split(',').map(Number);
  const rounds = Number(values.rounds ?? 3);
  const self = fileURLToPath(import.meta.url);
  for (const size of sizes) {
    const results = new Map<Variant, number[]>();
    for (let round = 1; round <= rounds; round++) {
      for (const v of VARIANTS) {
        const out = execFileSync(
          process.execPath,
          [
            '--import',
            'tsx',
            self,
            '--variant',
            v,
            '--size',
            String(size),
            '--rows',
            String(rows),
            '--batch',
            String(batch),
          ],
          { encoding: 'utf8' },
        );
        results.set(v, [...(results.get(v) ?? []), Number(out)]);
      }
    }
    console.log(`${size} rows in the table, ${rows} inserts in transactions of ${batch}, µs per row:`);
    for (const [v, r] of results) {
      const s = sorted(r);
      console.log(
        `  ${v.padEnd(8)} median ${med(r).toFixed(1).padStart(6)}  (${s[0]!.toFixed(1)}–${s.at(-1)!.toFixed(1)})`,
      );
    }
  }
}
