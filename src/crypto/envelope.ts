import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { LatchkeyError } from '../errors/index.js';
import { randomBytesPooled } from '../lib/random.js';
import type { RootKey } from './root-key.js';

/**
 * Envelope encryption. The root key's KEK wraps data keys (table data_keys);
 * the active data key encrypts every secret value, private key and signing key
 * with AES-256-GCM. The additional authenticated data (AAD) names what the
 * ciphertext belongs to (tenant, vault, kind, name, version), so a ciphertext
 * copied to another row fails to decrypt.
 *
 * Blob layout: 0x01 | data-key id (16 bytes) | iv (12) | tag (16) | ciphertext.
 */
const VERSION = 1;
const HEADER = 1 + 16 + 12 + 16;

export interface Sealer {
  seal(plaintext: Buffer | string, aad: string): Buffer;
  open(blob: Buffer, aad: string): Buffer;
}

const uuidToBytes = (id: string): Buffer => Buffer.from(id.replaceAll('-', ''), 'hex');

function gcmSeal(key: Buffer, plaintext: Buffer, aad: Buffer): { iv: Buffer; tag: Buffer; ct: Buffer } {
  const iv = randomBytesPooled(12); // a fresh 96-bit IV per seal, never reused (lib/random.ts)
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv, tag: c.getAuthTag(), ct };
}

function gcmOpen(key: Buffer, iv: Buffer, tag: Buffer, ct: Buffer, aad: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(aad);
  d.setAuthTag(tag);
  const out = d.update(ct);
  // final() checks the tag (throws on a mismatch); GCM gives no bytes there, so nothing to copy.
  const tail = d.final();
  return tail.length === 0 ? out : Buffer.concat([out, tail]);
}

const integrityError = (cause?: unknown): LatchkeyError =>
  new LatchkeyError('InternalError', 'Stored data failed its integrity check.', { cause });

/** Where the sealer keeps its wrapped data keys (src/storage/crypto/data-key-store.ts). */
export interface DataKeys {
  list(): Promise<{ id: string; wrapped: Buffer; active: boolean }[]>;
  /** Adds the key `make` returns as the active one, unless an active key exists (atomically). */
  addActiveIfNone(make: () => { id: string; wrapped: Buffer }): Promise<void>;
}

/** Loads (or on first use creates) the data keys and returns a synchronous sealer. */
export async function createSealer(store: DataKeys, root: RootKey): Promise<Sealer> {
  const kek = root.derive('kek');
  const wrapAad = (id: string) => Buffer.from(`latchkey/v1/dek/${id}`);
  const keys = new Map<string, Buffer>();
  /** The same keys by the 32 hex digits of their id, as a blob's header carries it (for `open`). */
  const byHex = new Map<string, Buffer>();
  let activeId: string | undefined;

  const load = async () => {
    for (const r of await store.list()) {
      const w = r.wrapped;
      try {
        keys.set(r.id, gcmOpen(kek, w.subarray(0, 12), w.subarray(12, 28), w.subarray(28), wrapAad(r.id)));
      } catch (e) {
        throw new Error('the root key does not unwrap this database’s data keys (wrong root key?)', {
          cause: e,
        });
      }
      if (r.active) activeId = r.id;
    }
    for (const [id, key] of keys) byHex.set(uuidToBytes(id).toString('hex'), key);
  };
  await load();
  if (!activeId) {
    await store.addActiveIfNone(() => {
      const id = randomUUID();
      const { iv, tag, ct } = gcmSeal(kek, randomBytes(32), wrapAad(id));
      return { id, wrapped: Buffer.concat([iv, tag, ct]) };
    });
    await load();
  }
  const active = activeId!;
  const activeKey = keys.get(active)!;
  const activeIdBytes = uuidToBytes(active);

  return {
    seal(plaintext, aad) {
      const pt = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
      const { iv, tag, ct } = gcmSeal(activeKey, pt, Buffer.from(`latchkey/v1|${aad}`));
      return Buffer.concat([Buffer.from([VERSION]), activeIdBytes, iv, tag, ct]);
    },
    open(blob, aad) {
      // Read in place (every GET opens a value: no copy of the blob, no id formatting); a driver's
      // plain Uint8Array, despite the type, is copied into a Buffer as before.
      const b: Buffer = Buffer.isBuffer(blob) ? blob : Buffer.from(blob as Uint8Array);
      if (b.length < HEADER || b[0] !== VERSION) throw integrityError();
      const key = byHex.get(b.toString('hex', 1, 17));
      if (!key) throw integrityError();
      try {
        return gcmOpen(
          key,
          b.subarray(17, 29),
          b.subarray(29, 45),
          b.subarray(45),
          Buffer.from(`latchkey/v1|${aad}`),
        );
      } catch (e) {
        throw integrityError(e);
      }
    },
  };
}
