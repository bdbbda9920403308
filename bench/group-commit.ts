// Micro-benchmark of hot spots 2 and 3 of issue 19 (docs/performance.md, "Group commit"):
//   node --import tsx bench/group-commit.ts [--writes 2000] [--concurrency 32] [--dir DIR]
// 1. Durable writes on SQLite (synchronous=FULL, a file in DIR, default the OS temp directory):
//    one autocommit per write (what a client assertion's jti did) against the group committer with
//    `concurrency` writes in flight (as many requests in one event-loop turn). Wall time is what
//    counts here: the fsync blocks the event loop, so it is time no other request is served.
// 2. A client assertion's signature: jose's jwtVerify (WebCrypto) against crypto.verify with a
//    cached KeyObject (verifySignature).
// Medians of interleaved rounds; the machine's load is printed with them.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { importSPKI, jwtVerify, SignJWT } from 'jose';
import { verifySignature } from '../src/authority/client-assertion.js';
import { usedAssertionStore } from '../src/storage/authority/used-assertion-store.js';
import { createGroupCommit } from '../src/storage/group-commit.js';
import { openDatabase } from '../src/storage/open.js';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string' },
  },
});
const WRITES = Number(values.writes);
const CONC = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) =>
  `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;

const dir = mkdtempSync(join(values.dir ?? tmpdir(), 'latchkey-gc-bench-'));
const db = await openDatabase(`sqlite:${join(dir, 'bench.db')}`);
const gc = createGroupCommit(db);
const exp = Date.now() + 3_600_000;

/**
 * µs per write of wall time, of process CPU, and of event-loop busy time (the loop's active time,
 * `performance.eventLoopUtilization`: time in which it could serve no other request; an fsync on
 * the loop counts, one on the thread pool does not).
 */
async function measure(run: () => Promise<void>): Promise<{ wall: number; cpu: number; loop: number }> {
  const c0 = process.cpuUsage();
  const e0 = performance.eventLoopUtilization();
  const t0 = process.hrtime.bigint();
  await run();
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / WRITES;
  const c = process.cpuUsage(c0);
  const e = performance.eventLoopUtilization(e0);
  return { wall, cpu: (c.user + c.system) / WRITES, loop: (e.active * 1000) / WRITES };
}
const alone = () =>
  measure(async () => {
    for (let i = 0; i < WRITES; i++) await usedAssertionStore.consume(db, randomUUID(), exp);
  });
const grouped = () =>
  measure(async () => {
    let next = 0;
    const worker = async () => {
      while (next < WRITES) {
        next++;
        await gc.run((tx) => usedAssertionStore.consume(tx, randomUUID(), exp), { single: true });
      }
    };
    await Promise.all(Array.from({ length: CONC }, worker));
  });

const rows: Record<string, { wall: number[]; cpu: number[]; loop: number[] }> = {
  'jti, one commit each': { wall: [], cpu: [], loop: [] },
  [`jti, group commit (${CONC} in flight)`]: { wall: [], cpu: [], loop: [] },
};
const keys = Object.keys(rows);
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, fn] of [
    [keys[0]!, alone],
    [keys[1]!, grouped],
  ] as const) {
    const m = await fn();
    rows[k]!.wall.push(m.wall);
    rows[k]!.cpu.push(m.cpu);
    rows[k]!.loop.push(m.loop);
  }
}
const batches = gc.stats;
await db.close();
rmSync(dir, { recursive: true, force: true });

// Signature check of a PS256 client assertion.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const jwt = await new SignJWT({ iss: 'a', sub: 'a', aud: 'x', jti: randomUUID(), exp: 2e9 })
  .setProtectedHeader({ alg: 'PS256' })
  .sign(createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })));
const joseKey = await importSPKI(spki, 'PS256');
const keyObject = createPublicKey(spki);
const N = 2000;
const sig: Record<string, number[]> = {
  'jose jwtVerify (WebCrypto)': [],
  'crypto.verify, cached KeyObject': [],
};
for (let r = 0; r < ROUNDS; r++) {
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await jwtVerify(jwt, joseKey, { algorithms: ['PS256'] });
  sig['jose jwtVerify (WebCrypto)']!.push(Number(process.hrtime.bigint() - t0) / 1000 / N);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (!verifySignature(jwt, 'PS256', keyObject)) throw new Error('bad signature');
  sig['crypto.verify, cached KeyObject']!.push(Number(process.hrtime.bigint() - t0) / 1000 / N);
}

console.log(
  `group-commit micro-benchmark — load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(`${WRITES} writes per round, ${ROUNDS} interleaved rounds; median (min–max) µs per write`);
for (const [k, v] of Object.entries(rows))
  console.log(
    `  ${k.padEnd(36)} wall ${fmt(v.wall).padEnd(24)} cpu ${fmt(v.cpu).padEnd(24)} event loop busy ${fmt(v.loop)}`,
  );
console.log(
  `  group commit: ${batches.batches} batches for ${batches.writes} writes (largest ${batches.largest})`,
);
console.log(`PS256 signature check, ${N} per round; median (min–max) µs each`);
for (const [k, v] of Object.entries(sig)) console.log(`  ${k.padEnd(36)} ${fmt(v)}`);
