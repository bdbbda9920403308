import type { Database, Migration } from './port.js';
import { dialectSql, splitStatements } from './port.js';

/**
 * Applies pending migrations in order, each in its own transaction. Safe when
 * several nodes start at once: on PostgreSQL the whole run holds an advisory lock.
 */
export async function migrate(db: Database, migrations: readonly Migration[]): Promise<number[]> {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.version === sorted[i - 1]!.version) {
      throw new Error(`duplicate migration version ${sorted[i]!.version}`);
    }
  }
  return db.transaction(async (tx) => {
    await tx.lock('latchkey:migrations');
    await tx.run(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const rows = await tx.all<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of sorted) {
      if (done.has(m.version)) continue;
      const sql = db.dialect === 'postgres' && m.postgresSql !== undefined ? m.postgresSql : m.sql;
      for (const stmt of splitStatements(dialectSql(sql, db.dialect))) await tx.run(stmt);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        Date.now(),
      ]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** True when every known migration has been applied (readiness check). */
export async function migrationsCurrent(db: Database, migrations: readonly Migration[]): Promise<boolean> {
  try {
    const rows = await db.all<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => Number(r.version)));
    return migrations.every((m) => done.has(m.version));
  } catch {
    return false;
  }
}
