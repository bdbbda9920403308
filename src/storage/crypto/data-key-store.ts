import type { Database } from '../port.js';

/** A data key as stored: wrapped by the root key's KEK (migration 0001, table data_keys). */
export interface WrappedDataKey {
  id: string;
  wrapped: Buffer;
  active: boolean;
}

interface DataKeyRow {
  id: string;
  wrapped: Buffer;
  active: number;
}

/**
 * The data keys of envelope encryption (src/crypto/envelope.ts). `dataKeyStore(db)` is the
 * small port the sealer takes: list them, or add the first active one exactly once.
 */
export function dataKeyStore(db: Database) {
  return {
    async list(): Promise<WrappedDataKey[]> {
      const rows = await db.all<DataKeyRow>('SELECT id, wrapped, active FROM data_keys');
      return rows.map((r) => ({ id: r.id, wrapped: Buffer.from(r.wrapped), active: Number(r.active) === 1 }));
    },
    /**
     * Adds an active data key made by `make` unless one exists; serialised across nodes, so
     * two nodes starting on a new database agree on one key.
     */
    async addActiveIfNone(make: () => { id: string; wrapped: Buffer }, now = Date.now()): Promise<void> {
      await db.transaction(async (tx) => {
        await tx.lock('latchkey:data-keys');
        const existing = await tx.get<{ id: string }>('SELECT id FROM data_keys WHERE active = 1');
        if (existing) return;
        const k = make();
        await tx.run('INSERT INTO data_keys (id, wrapped, active, created_at) VALUES ($1, $2, 1, $3)', [
          k.id,
          k.wrapped,
          now,
        ]);
      });
    },
  };
}
