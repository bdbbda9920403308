import type { Queryable } from '../port.js';

/** A vault's certificate contacts as stored: the JSON list (wire shape) and its times (epoch ms). */
export interface StoredContacts {
  json: string;
  created: number;
  updated: number;
}

// duplicate-ok: a store operation of the house pattern (row type, one statement, row mapping); the SQL differs
interface ContactsRow {
  contacts: string;
  created_at: number | string;
  updated_at: number | string;
}

/** The SQL behind a vault's certificate contacts (migration 0018); purging the vault cascades. */
export const certificateContactStore = {
  async get(q: Queryable, vaultId: string): Promise<StoredContacts | undefined> {
    const r = await q.get<ContactsRow>(
      'SELECT contacts, created_at, updated_at FROM certificate_contacts WHERE vault_id = $1',
      [vaultId],
    );
    return r && { json: r.contacts, created: Number(r.created_at), updated: Number(r.updated_at) };
  },
  /** Replaces the vault's contacts (created at `now` when there were none). */
  async put(q: Queryable, vaultId: string, json: string, now: number): Promise<void> {
    await q.run(
      `INSERT INTO certificate_contacts (vault_id, contacts, created_at, updated_at) VALUES ($1, $2, $3, $3)
       ON CONFLICT (vault_id) DO UPDATE SET contacts = excluded.contacts, updated_at = excluded.updated_at`,
      [vaultId, json, now],
    );
  },
  /** Removes the vault's contacts; returns what there was. */
  async delete(q: Queryable, vaultId: string): Promise<StoredContacts | undefined> {
    const r = await certificateContactStore.get(q, vaultId);
    if (r) await q.run('DELETE FROM certificate_contacts WHERE vault_id = $1', [vaultId]);
    return r;
  },
};
