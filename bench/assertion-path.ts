// Micro-benchmark of the client-assertion-only part of a token request (issue 19; docs/performance.md,
// "Client assertions, session 10"): the assertion verifier's `verify` (header, certificate lookup,
// ES256 signature, claims) and `consume` (the jti through the group commit, durable on a SQLite file),
// `concurrency` requests in flight as on the bench's 32 connections. Fresh ES256 assertions are
// signed before each round, outside the measured time. Usage:
//   node --import tsx bench/assertion-path.ts [--requests 4000] [--rounds 5] [--concurrency 32] [--dir DIR]
// Prints process CPU µs per request (every thread: the log's sync on the thread pool counts) of
// verify + consume, of verify alone, and of a bare crypto.verify (the floor of the signature), as
// medians (min–max) of interleaved rounds, with the machine's load.
import { createHash, generateKeyPairSync, randomUUID, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createAssertionVerifier } from '../src/authority/client-assertion.js';
import type { Credentials } from '../src/authority/credentials.js';
import { systemClock } from '../src/lib/clock.js';
import { groupCommitFor } from '../src/storage/group-commit.js';
import { openDatabase } from '../src/storage/open.js';
import { b64u } from './client-assertions.js';
import { median } from './lib.js';

const string = { type: 'string' } as const;
const { values } = parseArgs({
  options: { requests: string, concurrency: string, rounds: string, dir: string },
});
const N = Number(values.requests ?? 4000);
const CONC = Number(values.concurrency ?? 32);
const ROUNDS = Number(values.rounds ?? 5);
const fmt = (xs: number[]) =>
  `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;

const dir = mkdtempSync(join(values.dir ?? tmpdir(), 'latchkey-assertion-bench-'));
const db = await openDatabase(`sqlite:${join(dir, 'bench.db')}`);
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const x5t = createHash('sha256').update('bench certificate').digest('base64url');
// The credential cache answers from memory in the server too (src/authority/credentials.ts).
const credentials = {
  findCertificate: async (_p: string, t: { sha256?: string }) =>
    t.sha256 === x5t ? { credentialId: 'cred-1', cached: true } : undefined,
  certificatePem: async () => pem,
} as unknown as Credentials;
const verifier = createAssertionVerifier({ db, clock: systemClock, credentials });
const clientId = randomUUID();
const aud = 'https://login.bench.localhost/tenant/oauth2/v2.0/token';
const header = b64u({ alg: 'ES256', typ: 'JWT', 'x5t#S256': x5t });

/** `n` fresh ES256 assertions, as bench/client-assertions.ts signs them. */
function assertions(n: number): string[] {
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: n }, () => {
    const input = `${header}.${b64u({ aud, iss: clientId, sub: clientId, iat: now, nbf: now, exp: now + 600, jti: randomUUID() })}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  });
}

/** Process CPU µs per request of `one` over `list`, CONC at a time. */
async function cpuPerRequest(list: string[], one: (a: string) => Promise<void>): Promise<number> {
  let next = 0;
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < list.length) await one(list[next++]!);
    }),
  );
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / list.length;
}
const input = (assertion: string) => ({ assertion, principalId: 'p', clientId, audiences: [aud] });

const rows: Record<string, number[]> = {
  'verify + consume (the jti, group commit)': [],
  'verify alone': [],
  'consume alone (verified before the round)': [],
  'crypto.verify alone (ES256)': [],
};
const bare = assertions(1)[0]!;
const [h, p, s] = bare.split('.') as [string, string, string];
const sig = Buffer.from(s, 'base64url');
await cpuPerRequest(assertions(500), async (a) => (await verifier.verify(input(a))).consume('r'));
for (let r = 0; r < ROUNDS; r++) {
  rows['verify + consume (the jti, group commit)']!.push(
    await cpuPerRequest(assertions(N), async (a) => (await verifier.verify(input(a))).consume('r')),
  );
  rows['verify alone']!.push(
    await cpuPerRequest(assertions(N), async (a) => {
      await verifier.verify(input(a));
    }),
  );
  const checked = await Promise.all(assertions(N).map((a) => verifier.verify(input(a))));
  let i = 0;
  rows['consume alone (verified before the round)']!.push(
    await cpuPerRequest(
      checked.map(() => ''),
      () => checked[i++]!.consume('r'),
    ),
  );
  rows['crypto.verify alone (ES256)']!.push(
    await cpuPerRequest(
      Array.from({ length: N }, () => bare),
      async () => {
        if (!verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig))
          throw new Error('bad signature');
      },
    ),
  );
}
const stats = groupCommitFor(db).stats;
await db.close();
rmSync(dir, { recursive: true, force: true });

console.log(
  `assertion-path micro-benchmark — load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(
  `${N} requests per round, ${CONC} in flight, ${ROUNDS} interleaved rounds; process CPU µs per request`,
);
for (const [k, v] of Object.entries(rows)) console.log(`  ${k.padEnd(42)} ${fmt(v)}`);
console.log(`  group commit: ${stats.batches} batches for ${stats.writes} jtis (largest ${stats.largest})`);
