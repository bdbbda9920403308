import { z } from 'zod';
import type { Limits } from './index.js';

/**
 * The `--limit name=value` flag of `latchkey up` and `latchkey server`: each
 * name is a {@link Limits} field in kebab case (`body-bytes`, `per-address-rate`,
 * ...). Values are integers, validated here once, before anything starts.
 *
 * @example
 * parseLimitFlags(['body-bytes=65536', 'per-principal-rate=0'])
 * // → { bodyBytes: 65536, perPrincipalRate: 0 }
 */
const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** Bounds of each limit: wide enough for any real deployment, narrow enough to catch typos. */
export const LIMIT_SCHEMA = z
  .object({
    bodyBytes: int(1024, 64 * 1024 * 1024),
    headerBytes: int(1024, 1024 * 1024),
    requestTimeoutMs: int(1000, 3_600_000),
    maxConnections: int(1, 1_000_000),
    authFailureLimit: int(1, 1_000_000),
    authFailureWindowMs: int(1000, 86_400_000),
    authFailureSlowAfter: int(0, 1_000_000),
    authFailureDelayMs: int(0, 10_000),
    jsonDepth: int(2, 1000),
    perAddressRate: int(0, 10_000_000),
    perAddressBurst: int(1, 10_000_000),
    perPrincipalRate: int(0, 10_000_000),
    perPrincipalBurst: int(1, 10_000_000),
    provisioningKeyMaxSeconds: int(60, 365 * 86_400),
    consoleSessionIdleSeconds: int(60, 7 * 86_400),
    consoleSessionMaxSeconds: int(300, 30 * 86_400),
    signingKeyMaxAgeSeconds: int(0, 3650 * 86_400).refine((n) => n === 0 || n >= 3600, {
      message: 'must be 0 (rotate only by hand) or at least 3600',
    }),
    signingKeyRotationIntervalSeconds: int(0, 86_400),
    signingKeyMaxPublished: int(2, 1000),
  })
  .strict()
  .partial();

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const BY_FLAG = new Map(Object.keys(LIMIT_SCHEMA.shape).map((k) => [kebab(k), k as keyof Limits]));

/** The flag names (`body-bytes`, ...), for help texts and docs. */
export const LIMIT_FLAG_NAMES: readonly string[] = [...BY_FLAG.keys()];

/** Parses repeated `name=value` pairs into a partial {@link Limits}; throws an Error naming the bad pair. */
export function parseLimitFlags(pairs: readonly string[]): Partial<Limits> {
  const out: Record<string, number> = {};
  for (const pair of pairs) {
    const m = /^([a-z-]{1,40})=(\d{1,12})$/.exec(pair.trim());
    const key = m ? BY_FLAG.get(m[1]!) : undefined;
    if (!m || !key) {
      throw new Error(
        `invalid --limit "${pair.slice(0, 60)}": use name=integer with name one of ${LIMIT_FLAG_NAMES.join(', ')}`,
      );
    }
    out[key] = Number(m[2]);
  }
  const r = LIMIT_SCHEMA.safeParse(out);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const name = kebab(String(issue.path[0] ?? ''));
    throw new Error(`invalid --limit ${name}: ${issue.message}`);
  }
  return r.data as Partial<Limits>;
}

/** Commander's collector for a repeatable option. */
export const collectLimit = (value: string, previous: string[] = []): string[] => [...previous, value];
