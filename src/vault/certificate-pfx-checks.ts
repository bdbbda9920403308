import type * as Asn1js from 'asn1js';
import type * as Pkijs from 'pkijs';
import { LatchkeyError } from '../errors/index.js';

/**
 * What a PFX import checks before pkijs derives a key from its password: DER with nothing after
 * it, at most PFX_MAX_SAFES safe contents, and the key-derivation iterations of each derivation
 * and of all of them. The iterations are read from the pkijs objects that will derive (the MAC,
 * each EncryptedData, each shrouded key bag), never from a scan of the bytes: pkijs reads past
 * trailing data, so a scan and pkijs do not see the same PFX (one byte after the authenticated
 * safe hid 48 EncryptedData of 8,000,000 iterations each, 3.4 s of PBKDF2 apiece on libuv's
 * threadpool, from one 64 KiB request without a password).
 */

const bad = (message: string, cause?: unknown) =>
  new LatchkeyError('BadParameter', message, cause === undefined ? {} : { cause });

const n = (x: number) => x.toLocaleString('en-US');

/**
 * The most key-derivation iterations one derivation of a PFX may ask for (its MAC, an
 * EncryptedData's or a shrouded key bag's PBKDF2). Tools write 2,000–10,000 (OpenSSL 2,048;
 * Windows 2,000; Java 10,000). The MAC's key is derived in JavaScript, on the event loop
 * (pkijs): 5,000,000 iterations froze the server for 10 s, for every tenant.
 */
export const PFX_MAX_ITERATIONS = 100_000;
/**
 * The most for one import, all derivations together: three at the most each, as many as an
 * openssl PFX has (its MAC, its certificates' EncryptedData, its shrouded key).
 */
export const PFX_MAX_TOTAL_ITERATIONS = 3 * PFX_MAX_ITERATIONS;
/**
 * The most iterations of the MAC's key derivation. pkijs derives it in JavaScript on the event
 * loop, before a wrong password can show (100,000 with SHA-512 held every request of every tenant
 * for 0.6–0.9 s per import; 20,000 for about a fifth of that): the other derivations run natively
 * (PBKDF2, off the loop) and keep PFX_MAX_ITERATIONS. OpenSSL's `-iter N` sets the MAC's count too.
 */
export const PFX_MAX_MAC_ITERATIONS = 20_000;
/** The most safe contents (ContentInfos) a PFX may hold: OpenSSL, Windows and Java write 2, pkijs 1. */
export const PFX_MAX_SAFES = 4;

const PBES2 = '1.2.840.113549.1.5.13';
const PBKDF2 = '1.2.840.113549.1.5.12';

type Pkcs12 = { asn1js: typeof Asn1js; pkijs: typeof Pkijs };

/**
 * `bytes` as a pkijs `Type`, or a 400 naming `what`: not DER, not of that shape, or with
 * bytes after it (which pkijs' own `fromBER` ignores).
 */
export function strictly<T>(
  { asn1js }: Pkcs12,
  Type: new (p: { schema: Asn1js.AsnType }) => T,
  bytes: ArrayBuffer,
  what: string,
): T {
  const parsed = asn1js.fromBER(bytes);
  if (parsed.offset === -1) throw bad(`The PFX is malformed: ${what} is not DER.`);
  const extra = bytes.byteLength - parsed.offset;
  if (extra !== 0)
    throw bad(
      `The PFX is malformed: ${what} has ${n(extra)} byte${extra === 1 ? '' : 's'} of trailing data.`,
    );
  try {
    return new Type({ schema: parsed.result });
  } catch (e) {
    throw bad(`The PFX is malformed: ${what} could not be read.`, e);
  }
}

/** The key-derivation iterations one import has spent, each derivation and all of them bounded. */
export function kdfBudget() {
  let spent = 0;
  return {
    /** Spends `counts` (one per derivation about to run), or throws without spending. */
    spend(...counts: number[]): void {
      for (const c of counts) {
        // pkijs keeps an INTEGER of more than 6 bytes as 0 (and then derives with 1, or fails).
        if (!Number.isSafeInteger(c) || c < 1)
          throw bad(
            `The PFX asks for an invalid number of key-derivation iterations: from 1 to ${n(PFX_MAX_ITERATIONS)} are accepted.`,
          );
        if (c > PFX_MAX_ITERATIONS)
          throw bad(
            `The PFX asks for ${n(c)} key-derivation iterations; at most ${n(PFX_MAX_ITERATIONS)} are accepted.`,
          );
      }
      const total = counts.reduce((a, c) => a + c, spent);
      if (total > PFX_MAX_TOTAL_ITERATIONS)
        throw bad(
          `The PFX asks for ${n(total)} key-derivation iterations in all; at most ${n(PFX_MAX_TOTAL_ITERATIONS)} are accepted per import.`,
        );
      spent = total;
    },
  };
}
export type KdfBudget = ReturnType<typeof kdfBudget>;

/**
 * The PBKDF2 iteration count of a PBES2 `AlgorithmIdentifier`, read as pkijs reads it to derive
 * (`CryptoEngine.decryptEncryptedContentInfo`, the only scheme pkijs decrypts). Anything else
 * is refused here, as pkijs would refuse it, before any derivation.
 */
export function pbes2Iterations(pkijs: typeof Pkijs, alg: Pkijs.AlgorithmIdentifier): number {
  if (alg.algorithmId !== PBES2) {
    const legacy = alg.algorithmId.startsWith('1.2.840.113549.1.12.1.');
    throw bad(
      `The PFX is encrypted with ${legacy ? 'a legacy PKCS#12 algorithm' : 'an algorithm'}, ${alg.algorithmId}${legacy ? " (openssl -legacy, Windows' TripleDES-SHA1)" : ''}, that is not supported: export it with AES-256 (PBES2), openssl 3's default.`,
    );
  }
  let pbes2: Pkijs.PBES2Params;
  let params: Pkijs.PBKDF2Params;
  try {
    pbes2 = new pkijs.PBES2Params({ schema: alg.algorithmParams });
    params = new pkijs.PBKDF2Params({ schema: pbes2.keyDerivationFunc.algorithmParams });
  } catch (e) {
    throw bad('The PFX is malformed: its PBES2 parameters could not be read.', e);
  }
  // pkijs reads the parameters as PBKDF2's whatever the function named (scrypt's fit the shape).
  if (pbes2.keyDerivationFunc.algorithmId !== PBKDF2)
    throw bad(
      `The PFX's key-derivation function (${pbes2.keyDerivationFunc.algorithmId}) is not supported: PBKDF2 is.`,
    );
  return params.iterationCount;
}

/** A safe content of the PFX: in clear (its SafeContents) or an EncryptedData still to decrypt. */
export type PfxSafe = { contents: Pkijs.SafeContents } | { encrypted: Pkijs.EncryptedData };

/**
 * The PFX in `der`, its safe contents, and the MAC's and every EncryptedData's iterations spent
 * from `kdf`: all that pkijs derives before a bag is open, decided before any derivation runs.
 * Public-key integrity (SignedData) is refused: no tool writes it.
 */
export function parsePfx(
  lib: Pkcs12,
  der: ArrayBuffer,
  kdf: KdfBudget,
): { pfx: Pkijs.PFX; safes: PfxSafe[] } {
  const { asn1js, pkijs } = lib;
  const pfx = strictly(lib, pkijs.PFX, der, 'it');
  const { contentType, content } = pfx.authSafe;
  if (contentType !== pkijs.ContentInfo.DATA)
    throw bad(
      `The PFX's authenticated safe is of a type (${contentType}${contentType === pkijs.ContentInfo.SIGNED_DATA ? ', public-key integrity' : ''}) that is not supported: export the PFX with a password (a MAC) or without one.`,
    );
  if (!(content instanceof asn1js.OctetString))
    throw bad('The PFX is malformed: its authenticated safe is not data.');
  const safe = strictly(lib, pkijs.AuthenticatedSafe, content.getValue(), 'its authenticated safe');
  const infos = safe.safeContents;
  if (infos.length > PFX_MAX_SAFES)
    throw bad(`The PFX holds ${n(infos.length)} safe contents; at most ${PFX_MAX_SAFES} are accepted.`);
  const safes = infos.map((info, i): PfxSafe => {
    const what = `its safe contents #${i + 1}`;
    if (info.contentType === pkijs.ContentInfo.DATA) {
      if (!(info.content instanceof asn1js.OctetString))
        throw bad(`The PFX is malformed: ${what} is not data.`);
      return { contents: strictly(lib, pkijs.SafeContents, info.content.getValue(), what) };
    }
    if (info.contentType === pkijs.ContentInfo.ENCRYPTED_DATA) {
      try {
        return { encrypted: new pkijs.EncryptedData({ schema: info.content }) };
      } catch (e) {
        throw bad(`The PFX is malformed: ${what} could not be read.`, e);
      }
    }
    throw bad(
      `The PFX's ${what} is of a type (${info.contentType}) that is not supported: data or password-encrypted data are.`,
    );
  });
  const macIterations = pfx.macData ? (pfx.macData.iterations ?? 1) : 0;
  if (macIterations > PFX_MAX_MAC_ITERATIONS)
    throw bad(
      `The PFX's MAC asks for ${n(macIterations)} key-derivation iterations; at most ${n(PFX_MAX_MAC_ITERATIONS)} are accepted (export it with fewer: openssl pkcs12 -iter ${n(PFX_MAX_MAC_ITERATIONS).replace(',', '')} or less, or -nomaciter).`,
    );
  kdf.spend(
    ...(pfx.macData ? [macIterations] : []),
    ...safes.flatMap((s) =>
      'encrypted' in s
        ? [pbes2Iterations(pkijs, s.encrypted.encryptedContentInfo.contentEncryptionAlgorithm)]
        : [],
    ),
  );
  return { pfx, safes };
}
