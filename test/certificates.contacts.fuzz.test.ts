import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { fuzzSeed } from './helpers/fuzz-seed.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, vaultPrincipal, vaultToken } from './helpers/vault.js';

// One seed for the whole file (the properties share state): replay a failure with LATCHKEY_FUZZ_SEED.
fuzzSeed();

const anyValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.double(),
);
const email = fc.oneof(
  fc.emailAddress(),
  fc.string({ maxLength: 30 }),
  fc.constantFrom('', ' ', 'a@b', '@x', 'x@', `${'a'.repeat(260)}@x.y`, 'a b@c.d', 'a@b\n'),
  anyValue,
);
const text = (max: number) =>
  fc.oneof(fc.string({ maxLength: max + 5 }), fc.constantFrom('x'.repeat(max + 1), 'a\u0000b'), anyValue);
const contactArb = fc.oneof(
  fc.record({ email, name: text(256), phone: text(64) }, { requiredKeys: [] }),
  anyValue,
);
const validArb = fc
  .array(
    fc.record(
      {
        email: fc.emailAddress().filter((e) => e.length <= 254),
        name: fc.string({ maxLength: 20 }),
        phone: fc.stringMatching(/^\+?[0-9 ]{0,20}$/),
      },
      { requiredKeys: ['email'] },
    ),
    { minLength: 1, maxLength: 5 },
  )
  .map((contacts) => JSON.stringify({ contacts }));
const bodyArb = fc.oneof(
  { arbitrary: validArb, weight: 3 },
  fc.record({ contacts: fc.array(contactArb, { maxLength: 40 }) }).map((b) => JSON.stringify(b)),
  fc.record({ contacts: anyValue, id: anyValue }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom('', '{', 'null', '[]', '{"contacts":[]}', '{"contacts":{}}'),
);

/** Random contacts requests by a Certificates Officer: never a 5xx; a refusal changes nothing. */
describe('certificate contacts fuzzing (fast-check)', () => {
  let s: TestServer;
  let token: string;
  let url: string;
  const stored = async () =>
    JSON.stringify(
      await s.services.db.all('SELECT vault_id, contacts FROM certificate_contacts ORDER BY vault_id'),
    );

  before(async () => {
    s = await startTestServer({ limits: { perAddressRate: 0 } });
    const v = await putVault(s, 'ctfuzz');
    const sp = await vaultPrincipal(s, 'ct-fuzz-officer');
    await grant(s, sp.id, 'Key Vault Certificates Officer', v.id);
    token = await vaultToken(s, sp);
    url = `${s.vaultUrl('ctfuzz')}/certificates/contacts?api-version=7.5`;
  });
  after(async () => {
    await s?.stop();
  });

  test('random bodies and methods: 200 with the list as stored, or an Azure-shaped 4xx and nothing changed', async (t) => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'PUT', 'PUT', 'DELETE', 'POST', 'PATCH'),
        bodyArb,
        async (method, body) => {
          const headers: Record<string, string> = { authorization: `Bearer ${token}` };
          const sendBody = method !== 'GET' && method !== 'DELETE';
          if (sendBody) headers['content-type'] = 'application/json';
          const before = await stored();
          const r = await s.request(method, url, { headers, ...(sendBody ? { body } : {}) });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          assert.ok(r.status < 500, `${method} ${body} → ${r.status} ${r.text.slice(0, 200)}`);
          if (r.status >= 400) {
            assert.equal(await stored(), before, `${method} → ${r.status} changed state`);
            assert.equal(typeof r.json?.error?.code, 'string', r.text.slice(0, 100));
            return;
          }
          assert.equal(r.status, 200);
          const list = r.json.contacts as { email: string; name?: string; phone?: string }[];
          assert.ok(list.length >= 1 && list.length <= 32, 'list.length >= 1 && list.length <= 32');
          for (const c of list) {
            assert.ok(c.email.length <= 254 && /^[^\s@]+@[^\s@]+$/.test(c.email), c.email);
            assert.ok(
              (c.name ?? '').length <= 256 && (c.phone ?? '').length <= 64,
              "(c.name ?? '').length <= 256 && (c.phone ?? '').length <= 64",
            );
          }
          if (method === 'PUT')
            assert.equal(
              JSON.stringify(
                JSON.parse(
                  (await s.services.db.get<{ contacts: string }>(
                    'SELECT contacts FROM certificate_contacts',
                  ))!.contacts,
                ),
              ),
              JSON.stringify(list),
            );
        },
      ),
      { numRuns: 300 },
    );
    t.diagnostic(`statuses: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}`);
    assert.ok((statuses.get(200) ?? 0) > 10, 'the run reached the operations');
    assert.ok((statuses.get(400) ?? 0) > 50, '(statuses.get(400) ?? 0) > 50');
  });
});
