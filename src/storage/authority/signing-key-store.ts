import type { Queryable } from '../port.js';

export type SigningAlg = 'ES256' | 'RS256';

/** A token-signing key as stored: the public JWK in clear, the private key sealed (times in epoch ms). */
export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlg;
  /** The public JWK as JSON text. */
  publicJwk: string;
  privateSealed: Buffer;
  state: 'active' | 'previous';
  createdAt: number;
  /** When a previous key leaves JWKS; null for the active key. */
  retireAt: number | null;
}

interface KeyRow {
  kid: string;
  alg: SigningAlg;
  public_jwk: string;
  private_sealed: Buffer;
  state: 'active' | 'previous';
  created_at: number;
  retire_at: number | null;
}

const fromRow = (r: KeyRow): SigningKeyRecord => ({
  kid: r.kid,
  alg: r.alg,
  publicJwk: r.public_jwk,
  privateSealed: Buffer.from(r.private_sealed),
  state: r.state,
  createdAt: Number(r.created_at),
  retireAt: r.retire_at === null ? null : Number(r.retire_at),
});

/** The SQL behind the authority's signing keys (migration 0001). Writers hold the signing-key lock. */
export const signingKeyStore = {
  /** The keys published at `now`: the active one and previous ones whose overlap has not ended; newest first. */
  async listPublished(q: Queryable, now: number): Promise<SigningKeyRecord[]> {
    const rows = await q.all<KeyRow>(
      "SELECT * FROM signing_keys WHERE state = 'active' OR retire_at IS NULL OR retire_at > $1 ORDER BY created_at DESC",
      [now],
    );
    return rows.map(fromRow);
  },
  /** The published keys' state and times only (no key material): for the rotation rules. */
  async listPublishedTimes(
    q: Queryable,
    now: number,
  ): Promise<{ state: 'active' | 'previous'; createdAt: number; retireAt: number | null }[]> {
    const rows = await q.all<{ state: 'active' | 'previous'; created_at: number; retire_at: number | null }>(
      "SELECT state, created_at, retire_at FROM signing_keys WHERE state = 'active' OR retire_at IS NULL OR retire_at > $1",
      [now],
    );
    return rows.map((r) => ({
      state: r.state,
      createdAt: Number(r.created_at),
      retireAt: r.retire_at === null ? null : Number(r.retire_at),
    }));
  },
  /** The active key's id and creation time, if there is one. */
  async findActive(q: Queryable): Promise<{ kid: string; createdAt: number } | undefined> {
    const r = await q.get<{ kid: string; created_at: number }>(
      "SELECT kid, created_at FROM signing_keys WHERE state = 'active'",
    );
    return r && { kid: r.kid, createdAt: Number(r.created_at) };
  },
  async exists(q: Queryable, kid: string): Promise<boolean> {
    return (await q.get('SELECT kid FROM signing_keys WHERE kid = $1', [kid])) !== undefined;
  },
  /** The active key becomes a previous one, published until `retireAt`. */
  async retireActive(q: Queryable, retireAt: number): Promise<void> {
    await q.run("UPDATE signing_keys SET state = 'previous', retire_at = $1 WHERE state = 'active'", [
      retireAt,
    ]);
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  /** Adds a new active key. */
  async insertActive(
    q: Queryable,
    k: { kid: string; alg: SigningAlg; publicJwk: string; privateSealed: Buffer; createdAt: number },
  ): Promise<void> {
    await q.run(
      'INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, state, created_at, retire_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)',
      [k.kid, k.alg, k.publicJwk, k.privateSealed, 'active', k.createdAt],
    );
  },
  /** Deletes previous keys whose overlap ended by `now`. */
  async deleteRetired(q: Queryable, now: number): Promise<void> {
    await q.run("DELETE FROM signing_keys WHERE state = 'previous' AND retire_at <= $1", [now]);
  },
};
