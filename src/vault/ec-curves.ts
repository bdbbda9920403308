import type { Curve } from './key-model.js';

/** @noble/curves: the curves' arithmetic (ECDSA verification, the signer's modular steps). */
async function load() {
  const [nist, k1, modular, utils] = await Promise.all([
    import('@noble/curves/nist.js'),
    import('@noble/curves/secp256k1.js'),
    import('@noble/curves/abstract/modular.js'),
    import('@noble/curves/utils.js'),
  ]);
  return {
    /** Each curve's ECDSA implementation (over precomputed digests). */
    ecdsa: {
      'P-256': nist.p256,
      'P-384': nist.p384,
      'P-521': nist.p521,
      'P-256K': k1.secp256k1,
    } satisfies Record<Curve, unknown>,
    getMinHashLength: modular.getMinHashLength,
    bytesToNumberBE: utils.bytesToNumberBE,
  };
}
export type EcCurves = Awaited<ReturnType<typeof load>>;

let loading: Promise<EcCurves> | undefined;

/**
 * @noble/curves, imported with the first EC key a process loads or imports rather than at start:
 * ~15 modules and 0.3 MB of JavaScript that a restart does not need (docs/performance.md, cold
 * start). Whatever needs the curves receives them from here (a loaded EC key carries them), so no
 * path can reach them before they are loaded.
 */
export function loadEcCurves(): Promise<EcCurves> {
  loading ??= load().catch((e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}
