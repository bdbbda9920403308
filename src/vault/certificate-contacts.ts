import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import { certificateContactStore as store } from '../storage/vault/certificate-contact-store.js';
import { type CertificateGuard, CERTIFICATE_OPERATIONS as OPS } from './certificate-guard.js';
import type { ObjectCallContext } from './objects.js';

/** One certificate contact (Azure's `Contact`: `email`, `name`, `phone`). */
export interface CertificateContact {
  email: string;
  name?: string;
  phone?: string;
}

/**
 * Bounds: Azure documents none; 32 contacts per vault, an address as RFC 5321's 254
 * characters, a name 256, a phone number 64.
 */
export const CONTACT_LIMITS = { contacts: 32, email: 254, name: 256, phone: 64 } as const;

const bad = (message: string) => new LatchkeyError('BadParameter', message);
const notFound = () => new LatchkeyError('NotFound', 'Contacts not found');
// One @ with something on both sides, no spaces or control characters.
const EMAIL = /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+$/u;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Checks a contact list as given on the wire; returns it normalized (empty name/phone dropped). */
export function checkContacts(input: readonly CertificateContact[]): CertificateContact[] {
  if (input.length === 0) throw bad('At least one contact is required (DELETE removes them all).');
  if (input.length > CONTACT_LIMITS.contacts)
    throw bad(`At most ${CONTACT_LIMITS.contacts} certificate contacts are allowed.`);
  return input.map((c, i) => {
    const email = c.email.trim();
    if (!email || email.length > CONTACT_LIMITS.email || !EMAIL.test(email))
      throw bad(`Contact ${i + 1}: a valid email address is required.`);
    const out: CertificateContact = { email };
    for (const field of ['name', 'phone'] as const) {
      const v = c[field]?.trim();
      if (!v) continue;
      if (v.length > CONTACT_LIMITS[field] || CONTROL.test(v))
        throw bad(`Contact ${i + 1}: ${field} is too long or holds control characters.`);
      out[field] = v;
    }
    return out;
  });
}

/** What a write answers (`name` never set: the audit target is the contacts' path). */
type Written = { contacts: CertificateContact[]; name?: string };

/**
 * A vault's certificate contacts (`/certificates/contacts`): one list per vault, replaced
 * whole by a set, read and deleted whole; 404 when none are set. Authorized and audited
 * through the certificate guard (the audit names the operation, never the addresses).
 */
export function createCertificateContacts(deps: { db: Database; clock: Clock; guard: CertificateGuard }) {
  const { db, clock, guard } = deps;
  const parse = (json: string): CertificateContact[] => JSON.parse(json) as CertificateContact[];
  return {
    async getContacts(ctx: ObjectCallContext): Promise<CertificateContact[]> {
      return guard.read(ctx, OPS.getContacts, null, async () => {
        const r = await store.get(db, ctx.vault.id);
        if (!r) throw notFound();
        return parse(r.json);
      });
    },
    async setContacts(
      ctx: ObjectCallContext,
      input: readonly CertificateContact[],
    ): Promise<CertificateContact[]> {
      const contacts = checkContacts(input);
      const r = await guard.write<Written>(ctx, OPS.setContacts, null, async (tx) => {
        await store.put(tx, ctx.vault.id, JSON.stringify(contacts), clock.now());
        return { contacts };
      });
      return r.contacts;
    },
    /** Removes the vault's contacts and answers them; 404 when there were none. */
    async deleteContacts(ctx: ObjectCallContext): Promise<CertificateContact[]> {
      const r = await guard.write<Written>(ctx, OPS.deleteContacts, null, async (tx) => {
        const old = await store.delete(tx, ctx.vault.id);
        if (!old) throw notFound();
        return { contacts: parse(old.json) };
      });
      return r.contacts;
    },
  };
}
