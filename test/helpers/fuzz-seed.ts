import fc from 'fast-check';

/**
 * One seed for every property of a fuzz file, so a failure can be replayed whole.
 *
 * The fuzz files are stateful: a property meets the records earlier properties' random requests
 * left behind, so the seed fast-check prints for the property that failed does not reproduce it
 * alone (each `fc.assert` otherwise draws its own). Called at the top of a file, every property in
 * it runs from this seed, and fast-check's failure report names it: rerun the file with
 * `LATCHKEY_FUZZ_SEED=<seed>` to replay the same requests in the same order.
 */
export function fuzzSeed(): number {
  const given = process.env.LATCHKEY_FUZZ_SEED;
  const seed = given ? Number(given) : (Date.now() ^ (Math.random() * 0x1_0000_0000)) | 0;
  if (!Number.isInteger(seed)) throw new Error(`LATCHKEY_FUZZ_SEED must be an integer, not ${given}`);
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
  return seed;
}
