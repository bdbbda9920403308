import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CertificateClient } from '@azure/keyvault-certificates';
import type { RestError } from '@azure/keyvault-secrets';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import {
  grant,
  putVault,
  type VaultTestPrincipal,
  vaultPath,
  vaultPrincipal,
  vaultToken,
} from './helpers/vault.js';

const status = (code: number, errorCode: string) => (e: RestError) => {
  assert.equal(e.statusCode, code, e.message);
  assert.equal(e.code, errorCode, e.message);
  return true;
};
/** The SDK's contacts without its undefined fields. */
const plain = (l: unknown) => JSON.parse(JSON.stringify(l ?? null)) as unknown;
const contacts = [
  { email: 'ops@example.com', name: 'Ops', phone: '+1 555 0100' },
  { email: 'pki@example.com' },
];

/** Certificate contacts with the official CertificateClient (RBAC vaults, SQLite). */
describe('certificate contacts (official SDK)', () => {
  let s: TestServer;
  let officer: VaultTestPrincipal; // Certificates Officer on both vaults
  let user: VaultTestPrincipal; // Certificate User on the first
  const client = (p: VaultTestPrincipal, vault = 'certct') =>
    new CertificateClient(s.vaultUrl(vault), p.credential, { agent: s.agent });

  before(async () => {
    s = await startTestServer();
    const a = await putVault(s, 'certct');
    const b = await putVault(s, 'certct2');
    officer = await vaultPrincipal(s, 'ct-officer');
    user = await vaultPrincipal(s, 'ct-user');
    for (const v of [a, b]) await grant(s, officer.id, 'Key Vault Certificates Officer', v.id);
    await grant(s, user.id, 'Key Vault Certificate User', a.id);
  });
  after(async () => {
    await s?.stop();
  });

  test('set, get, delete: the list comes back as set; 404 when none are set', async () => {
    const c = client(officer);
    await assert.rejects(c.getContacts(), status(404, 'NotFound'));
    await assert.rejects(c.deleteContacts(), status(404, 'NotFound'));
    const set = await c.setContacts(contacts);
    assert.deepEqual(plain(set), contacts);
    assert.deepEqual(plain(await c.getContacts()), contacts);
    // The wire shape: Azure's Contacts with the id of the collection.
    const raw = await s.request('GET', `${s.vaultUrl('certct')}/certificates/contacts?api-version=7.5`, {
      headers: { authorization: `Bearer ${await vaultToken(s, officer)}` },
    });
    assert.equal(raw.status, 200);
    assert.equal(raw.json.id, `${s.vaultUrl('certct')}/certificates/contacts`);
    assert.deepEqual(raw.json.contacts, contacts);
    // A set replaces the whole list.
    assert.deepEqual(plain(await c.setContacts([{ email: 'only@example.com' }])), [
      { email: 'only@example.com' },
    ]);
    // The wire answer of a delete is the deleted list (the SDK 4.x reads its raw body as the generated
    // model and always returns [] from deleteContacts: checked on the wire instead).
    const del = await s.request('DELETE', `${s.vaultUrl('certct')}/certificates/contacts?api-version=7.5`, {
      headers: { authorization: `Bearer ${await vaultToken(s, officer)}` },
    });
    assert.equal(del.status, 200);
    assert.deepEqual(del.json, {
      id: `${s.vaultUrl('certct')}/certificates/contacts`,
      contacts: [{ email: 'only@example.com' }],
    });
    await assert.rejects(c.getContacts(), status(404, 'NotFound'));
    // Audited by operation on the contacts' path; the addresses are not written to the audit.
    const events = await s.services.db.all<Record<string, unknown>>('SELECT * FROM audit_events');
    const text = JSON.stringify(events);
    for (const op of ['CertificateContactsSet', 'CertificateContactsDelete'])
      assert.ok(text.includes(op), `${op} audited`);
    assert.ok(text.includes('/certificates/contacts'), "text.includes('/certificates/contacts')");
    assert.ok(!text.includes('only@example.com'), "!text.includes('only@example.com')");
  });

  test('a Certificate User may not read or manage contacts (403, nothing changed)', async () => {
    await client(officer).setContacts(contacts);
    const u = client(user);
    await assert.rejects(u.getContacts(), status(403, 'Forbidden'));
    await assert.rejects(u.setContacts([{ email: 'evil@example.com' }]), status(403, 'Forbidden'));
    await assert.rejects(u.deleteContacts(), status(403, 'Forbidden'));
    assert.deepEqual(plain(await client(officer).getContacts()), contacts);
  });

  test("another vault's contacts are not visible", async () => {
    await client(officer).setContacts(contacts);
    await assert.rejects(client(officer, 'certct2').getContacts(), status(404, 'NotFound'));
    await client(officer, 'certct2').setContacts([{ email: 'b@example.com' }]);
    assert.deepEqual(plain(await client(officer).getContacts()), contacts);
  });

  test('bad input: 400 BadParameter, nothing changed', async () => {
    const c = client(officer);
    await c.setContacts(contacts);
    const tooMany = Array.from({ length: 33 }, (_, i) => ({ email: `c${i}@example.com` }));
    for (const bad of [
      tooMany,
      [],
      [{ email: 'not-an-address' }],
      [{ email: '' }],
      [{ email: `${'a'.repeat(250)}@example.com` }],
      [{ email: 'a@example.com', name: 'n'.repeat(257) }],
      [{ email: 'a@example.com', phone: '1'.repeat(65) }],
      [{ email: 'a@example.com', name: 'line\nbreak' }],
    ])
      await assert.rejects(c.setContacts(bad), status(400, 'BadParameter'), JSON.stringify(bad).slice(0, 80));
    // 32 is allowed.
    assert.equal((await c.setContacts(tooMany.slice(0, 32)))?.length, 32);
    await c.setContacts(contacts);
    assert.deepEqual(plain(await c.getContacts()), contacts);
  });
});

/** Access-policy vaults: `managecontacts` guards all three, as Azure. */
describe('certificate contacts on an access-policy vault', () => {
  let s: TestServer;
  let manager: VaultTestPrincipal;
  let other: VaultTestPrincipal;

  before(async () => {
    s = await startTestServer();
    manager = await vaultPrincipal(s, 'ap-ct-manager');
    other = await vaultPrincipal(s, 'ap-ct-other');
    const policy = (objectId: string, certificates: string[]) => ({
      tenantId: s.info.tenantId,
      objectId,
      permissions: { certificates },
    });
    await putVault(s, 'certctap', {
      properties: {
        enableRbacAuthorization: false,
        accessPolicies: [
          policy(manager.id, ['managecontacts']),
          policy(other.id, ['get', 'list', 'create', 'update', 'delete', 'getissuers', 'manageissuers']),
        ],
      },
    });
  });
  after(async () => {
    await s?.stop();
  });

  test('managecontacts may set, get and delete; every other certificate permission may not', async () => {
    const m = new CertificateClient(s.vaultUrl('certctap'), manager.credential, { agent: s.agent });
    const o = new CertificateClient(s.vaultUrl('certctap'), other.credential, { agent: s.agent });
    assert.deepEqual(plain(await m.setContacts(contacts)), contacts);
    await assert.rejects(o.getContacts(), status(403, 'Forbidden'));
    await assert.rejects(o.setContacts(contacts), status(403, 'Forbidden'));
    await assert.rejects(o.deleteContacts(), status(403, 'Forbidden'));
    assert.deepEqual(plain(await m.getContacts()), contacts);
    await m.deleteContacts();
    await assert.rejects(m.getContacts(), status(404, 'NotFound'));
  });
});

/** The same on PostgreSQL, and the contacts go with a purged vault. */
describe('certificate contacts on PostgreSQL', () => {
  let s: TestServer;
  let schema: TestSchema;
  let admin: VaultTestPrincipal;

  before(async () => {
    schema = await createTestSchema();
    s = await startTestServer({ storageUrl: schema.url });
  });
  after(async () => {
    await s?.stop();
    await schema?.drop();
  });

  test('set, get, delete; a purged vault takes its contacts with it', async () => {
    const v = await putVault(s, 'certctpg');
    admin = await vaultPrincipal(s, 'cert-ct-pg');
    await grant(s, admin.id, 'Key Vault Administrator', v.id);
    const c = new CertificateClient(s.vaultUrl('certctpg'), admin.credential, { agent: s.agent });
    assert.deepEqual(plain(await c.setContacts(contacts)), contacts);
    assert.deepEqual(plain(await c.getContacts()), contacts);
    await c.deleteContacts();
    await assert.rejects(c.getContacts(), status(404, 'NotFound'));
    await c.setContacts(contacts);
    const vaultId = (await s.services.vaults.byName('certctpg'))!.id;

    const arm = async (method: string, path: string) =>
      s.request(method, `${path}?api-version=2023-07-01`, {
        headers: { authorization: `Bearer ${await s.adminToken()}` },
      });
    assert.equal((await arm('DELETE', vaultPath(s, 'certctpg'))).status, 200);
    const before = await s.services.db.get<{ n: number | string }>(
      'SELECT COUNT(*) AS n FROM certificate_contacts WHERE vault_id = $1',
      [vaultId],
    );
    assert.equal(Number(before?.n), 1, 'a soft-deleted vault keeps its contacts');
    const purged = await arm(
      'POST',
      `/subscriptions/${s.info.subscriptionId}/providers/Microsoft.KeyVault/locations/local/deletedVaults/certctpg/purge`,
    );
    assert.equal(purged.status, 200, purged.text);
    const left = await s.services.db.get<{ n: number | string }>(
      'SELECT COUNT(*) AS n FROM certificate_contacts WHERE vault_id = $1',
      [vaultId],
    );
    assert.equal(Number(left?.n), 0);
  });
});
