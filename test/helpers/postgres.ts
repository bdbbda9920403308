import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL server tests use (CI provides it). */
export const TEST_POSTGRES_URL =
  process.env.LATCHKEY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchema {
  /** A connection URL whose sessions use only this schema (`search_path`). */
  url: string;
  schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/** The server's URL without credentials, for error messages. */
const redacted = (url: string): string => {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
};

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw new Error(
      `PostgreSQL is not reachable at ${redacted(TEST_POSTGRES_URL)} (set LATCHKEY_TEST_POSTGRES_URL): ${(e as Error).message}`,
      { cause: e },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Creates a fresh schema `lk_<random>` and returns a URL that connects into it
 * (`?options=-c search_path=lk_...`), so each test run is isolated. Throws (it
 * never skips) when PostgreSQL is unreachable. Call `drop()` in `after`.
 */
export async function createTestSchema(): Promise<TestSchema> {
  const schema = `lk_${randomBytes(6).toString('hex')}`;
  await withClient((c) => c.query(`CREATE SCHEMA ${schema}`));
  const u = new URL(TEST_POSTGRES_URL);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: u.toString(),
    schema,
    async drop() {
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    },
  };
}

export interface TestDatabase {
  /** A connection URL to the new database. */
  url: string;
  name: string;
  /** Drops the database (terminating whatever is still connected to it). */
  drop(): Promise<void>;
}

/**
 * Creates a fresh database `lk_<random>` on the test server. Unlike a schema,
 * it also isolates what PostgreSQL shares database-wide: advisory locks (jobs,
 * migrations) and LISTEN/NOTIFY channels. Call `drop()` in `after`.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `lk_${randomBytes(6).toString('hex')}`;
  await withClient((c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(TEST_POSTGRES_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      await withClient((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
