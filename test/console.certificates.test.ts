import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { assignRole, createVault, unassignRole } from './helpers/access.js';
import { type ConsoleClient, consoleSignIn } from './helpers/console.js';
import { startTestApp, type TestServer } from './helpers/server.js';
import { grant } from './helpers/vault.js';

const CERTIFICATES_OFFICER = 'a4417e6f-fecd-4de8-b567-7b0420556985';

/**
 * The vault page's Certificates tab: list, a certificate's details (subject, issuer, SANs,
 * thumbprint, validity, versions), create a self-signed one, delete / recover / purge; CSRF,
 * the signed-in user's own access, and "Grant yourself …" on a 403.
 */
describe('web console: certificates', () => {
  let s: TestServer;
  let admin: ConsoleClient;
  let reader: ConsoleClient;
  let me: string;
  const v = '/console/vaults/default/certcon';
  const count = async () =>
    Number((await s.services.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM certificate_versions'))!.n);
  /** A create through the vault's REST API as the admin (a vault-audience token). */
  const restCreate = async (vault: string, name: string, policy: Record<string, unknown>) =>
    s.request('POST', `${s.vaultUrl(vault)}/certificates/${name}/create?api-version=7.5`, {
      headers: { authorization: `Bearer ${await s.adminToken(s.info.vaultResource)}` },
      json: { policy },
    });
  const errorOf = (text: string) => /<div class="alert alert-error"[^>]*>([\s\S]*?)<\/div>/.exec(text)?.[1];

  async function act(c: ConsoleClient, page: string, action: string, form: Record<string, string> = {}) {
    const p = await c.get(page);
    assert.equal(p.status, 200, `${page}: ${p.text.slice(0, 300)}`);
    const token = c.csrf(p.text, action);
    assert.ok(token, `no form for ${action} on ${page}`);
    return c.post(action, { ...form, _csrf: token! });
  }
  const ok = async (c: ConsoleClient, page: string, action: string, form: Record<string, string> = {}) => {
    const r = await act(c, page, action, form);
    assert.equal(r.status, 303, `${action}: ${errorOf(r.text) ?? r.text.slice(0, 300)}`);
    return r;
  };

  before(async () => {
    s = await startTestApp();
    admin = await consoleSignIn(s);
    me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal.id;
    const vault = await createVault(s, 'certcon');
    await grant(s, me, 'Key Vault Certificates Officer', vault.id);
    const user = { userName: 'cert-reader@latchkey.localhost', password: 'cert reader password 123' };
    const p = await s.services.principals.createUser(s.info.tenantId, {
      userName: user.userName,
      displayName: 'Cert Reader',
      password: user.password,
    });
    await grant(s, p.id, 'Reader', `/subscriptions/${s.info.subscriptionId}`);
    reader = await consoleSignIn(s, user);
  });
  after(async () => {
    await s?.stop();
  });

  test('the tab lists certificates; create a self-signed one; its page shows what the X.509 says', async () => {
    const empty = await admin.get(`${v}/certificates`);
    assert.equal(empty.status, 200);
    assert.match(
      empty.text,
      /<a href="\/console\/vaults\/default\/certcon\/certificates"[^>]*>Certificates</,
    );
    assert.match(empty.text, /No certificates in this vault yet/);

    const r = await ok(admin, `${v}/certificates`, `${v}/certificates`, {
      name: 'web',
      subject: 'CN=web.example, O=Contoso',
      validity: '6',
      key: 'EC:P-384',
    });
    assert.equal(r.headers.location, `${v}/certificates/web`);
    const page = await admin.get(`${v}/certificates/web`);
    assert.equal(page.status, 200);
    assert.match(page.text, /Certificate web created\./);
    const rec = await s.services.db.get<{ cer: Uint8Array; x5t: string }>(
      "SELECT cer, x5t FROM certificate_versions WHERE name_lower = 'web'",
    );
    const x = new X509Certificate(Buffer.from(rec!.cer));
    const hex = x.fingerprint.replaceAll(':', '');
    assert.equal(hex, Buffer.from(rec!.x5t, 'base64url').toString('hex').toUpperCase());
    assert.ok(page.text.includes(hex), 'the thumbprint is shown');
    assert.match(page.text, /<dt>Subject<\/dt><dd><span class="mono">CN=web\.example, O=Contoso<\/span>/);
    assert.match(
      page.text,
      /<dt>Issuer<\/dt><dd><span class="mono">CN=web\.example, O=Contoso<\/span> <span class="muted">\(issuer Self\)/,
    );
    assert.match(page.text, /<dt>Key<\/dt><dd>EC P-384<\/dd>/);
    assert.match(page.text, /application\/x-pkcs12/);
    assert.match(page.text, /id="certificate-versions"/);
    const expires = new Date(x.validTo).toISOString().slice(0, 16).replace('T', ' ');
    assert.ok(page.text.includes(`${expires} UTC`), `expiry ${expires} shown`);

    // SANs come from the certificate (made through the vault's API here: the form asks for a subject).
    const made = await restCreate('certcon', 'sans', {
      issuer: { name: 'Self' },
      x509_props: {
        subject: 'CN=sans.example',
        sans: { dns_names: ['sans.example', '*.sans.example'], emails: ['ops@sans.example'] },
      },
    });
    assert.equal(made.status, 202, made.text);
    const sans = await admin.get(`${v}/certificates/sans`);
    assert.match(
      sans.text,
      /<li class="mono">DNS:sans\.example<\/li><li class="mono">DNS:\*\.sans\.example<\/li><li class="mono">email:ops@sans\.example<\/li>/,
    );
    const list = await admin.get(`${v}/certificates`);
    assert.match(list.text, /id="certificates"/);
    assert.match(list.text, /<a href="\/console\/vaults\/default\/certcon\/certificates\/web">web<\/a>/);
    assert.ok(list.text.includes(hex), 'list.text.includes(hex)');
  });

  test('refused input: bad subject, validity out of range, unknown key type, no CSRF token; nothing is written', async () => {
    const before = await count();
    for (const [form, message] of [
      [{ name: 'bad', subject: 'not a name', validity: '12', key: 'RSA:2048' }, /subject/i],
      [
        { name: 'bad', subject: 'CN=x', validity: '0', key: 'RSA:2048' },
        /validity \(months\) must be a whole number from 1 to 1200/,
      ],
      [{ name: 'bad', subject: 'CN=x', validity: '1201', key: 'RSA:2048' }, /from 1 to 1200/],
      [{ name: 'bad', subject: 'CN=x', validity: '12', key: 'RSA:1024' }, /Choose a key type/],
      [{ name: 'bad name!', subject: 'CN=x', validity: '12', key: 'RSA:2048' }, /name is invalid/],
      [{ name: 'bad', subject: `CN=${'x'.repeat(1100)}`, validity: '12', key: 'RSA:2048' }, /subject/i],
    ] as const) {
      const r = await act(admin, `${v}/certificates`, `${v}/certificates`, { ...form });
      assert.equal(r.status, 400, JSON.stringify(form));
      assert.match(errorOf(r.text) ?? '', message, JSON.stringify(form));
    }
    const noToken = await admin.post(`${v}/certificates`, {
      name: 'csrf',
      subject: 'CN=csrf',
      validity: '12',
      key: 'RSA:2048',
    });
    assert.equal(noToken.status, 403);
    assert.match(noToken.text, /CSRF token/);
    assert.equal(await count(), before);
  });

  test('random create forms: a 303 that made one certificate, or a 4xx page that wrote nothing; never a 5xx', async () => {
    const page = await admin.get(`${v}/certificates`);
    const token = admin.csrf(page.text, `${v}/certificates`)!;
    const field = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        'CN=fz',
        'CN=a, O=b',
        '12',
        '0',
        '-1',
        'RSA:2048',
        'EC:P-256',
        'EC:P-256K',
        'x'.repeat(2000),
      ),
    );
    let created = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ name: field, subject: field, validity: field, key: field }, { requiredKeys: [] }),
          fc.record({
            name: fc.stringMatching(/^fz-[a-z0-9]{1,8}$/),
            subject: fc.constantFrom('CN=fz', 'CN=a, O=b'),
            validity: fc.integer({ min: 1, max: 1200 }).map(String),
            key: fc.constantFrom('RSA:2048', 'EC:P-256', 'EC:P-384'),
          }),
        ),
        async (form) => {
          const before = await count();
          const r = await admin.post(`${v}/certificates`, { ...form, _csrf: token });
          assert.ok(r.status < 500, `${JSON.stringify(form).slice(0, 200)} → ${r.status}`);
          if (r.status === 303) {
            created++;
            assert.equal(await count(), before + 1);
          } else {
            assert.ok(r.status >= 400, String(r.status));
            assert.equal(await count(), before);
          }
        },
      ),
      { numRuns: 60 },
    );
    assert.ok(created > 0, 'the run reached a create');
  });

  test('delete, recover, delete, purge (with confirmation)', async () => {
    await ok(admin, `${v}/certificates`, `${v}/certificates`, {
      name: 'gone',
      subject: 'CN=gone',
      validity: '1',
      key: 'RSA:2048',
    });
    const del = await ok(admin, `${v}/certificates/gone`, `${v}/certificates/gone/delete`);
    assert.equal(del.headers.location, `${v}/certificates`);
    const list = await admin.get(`${v}/certificates`);
    assert.match(list.text, /Certificate gone deleted; it can be recovered below\./);
    assert.match(list.text, /id="deleted-certificates"/);
    await ok(admin, `${v}/certificates`, `${v}/deleted-certificates/gone/recover`);
    assert.equal((await admin.get(`${v}/certificates/gone`)).status, 200);
    // Its key and secret followed it.
    assert.equal(
      (await s.services.db.get<{ d: number | null }>(
        "SELECT deleted_at AS d FROM secrets WHERE name_lower = 'gone'",
      ))!.d,
      null,
    );
    await ok(admin, `${v}/certificates/gone`, `${v}/certificates/gone/delete`);
    const unconfirmed = await act(admin, `${v}/certificates`, `${v}/deleted-certificates/gone/purge`);
    assert.equal(unconfirmed.status, 400);
    await ok(admin, `${v}/certificates`, `${v}/deleted-certificates/gone/purge`, { confirm: 'yes' });
    assert.equal(
      await s.services.db.get("SELECT 1 AS x FROM certificates WHERE name_lower = 'gone'"),
      undefined,
    );
    assert.equal((await admin.get(`${v}/certificates/gone`)).status, 404);
  });

  test('a 403: an Owner gets "Grant yourself Key Vault Certificates Officer" that returns to the tab; a Reader is told what to ask for', async () => {
    await createVault(s, 'certgrant');
    const g = '/console/vaults/default/certgrant';
    const page = await admin.get(`${g}/certificates`);
    assert.equal(page.status, 200);
    assert.match(page.text, /\(403 Forbidden\)/);
    assert.match(page.text, /Grant yourself Key Vault Certificates Officer on this vault/);
    const forReader = await reader.get(`${g}/certificates`);
    assert.doesNotMatch(forReader.text, /grant-yourself/);
    assert.match(
      forReader.text,
      /Ask an Owner of certgrant for Key Vault Certificates Officer on this vault\./,
    );
    // A Reader cannot create either (the data plane decides, as at the vault's URL).
    const refused = await act(reader, `${g}/certificates`, `${g}/certificates`, {
      name: 'nope',
      subject: 'CN=nope',
      validity: '12',
      key: 'RSA:2048',
    });
    assert.equal(refused.status, 403);

    const r = await ok(admin, `${g}/certificates`, `${g}/iam`, {
      role: CERTIFICATES_OFFICER,
      assignee: me,
      back: 'certificates',
    });
    assert.equal(r.headers.location, `${g}/certificates`);
    const after = await admin.get(`${g}/certificates`);
    assert.match(after.text, /Key Vault Certificates Officer granted to/);
    assert.doesNotMatch(after.text, /\(403 Forbidden\)|grant-yourself/);
    assert.match(after.text, /No certificates in this vault yet/);
  });

  test("a 403 on a certificate's page offers the grant and returns there", async () => {
    const d = '/console/vaults/default/certdetail';
    const vault = await createVault(s, 'certdetail');
    // Made while the admin held a data role, which is then removed.
    const temp = await assignRole(s, me, 'Key Vault Administrator', vault.id);
    const made = await restCreate('certdetail', 'svc', {
      issuer: { name: 'Self' },
      x509_props: { subject: 'CN=svc' },
    });
    assert.equal(made.status, 202, made.text);
    await unassignRole(s, temp);
    const page = await admin.get(`${d}/certificates/svc`);
    assert.equal(page.status, 200);
    assert.match(page.text, /\(403 Forbidden\)/);
    assert.match(page.text, /Grant yourself Key Vault Certificates Officer on this vault/);
    assert.ok(
      page.text.includes('name="back" value="certificates/svc"'),
      'page.text.includes(\'name="back" value="certificates/svc"\')',
    );
    const r = await ok(admin, `${d}/certificates/svc`, `${d}/iam`, {
      role: CERTIFICATES_OFFICER,
      assignee: me,
      back: 'certificates/svc',
    });
    assert.equal(r.headers.location, `${d}/certificates/svc`);
    const after = await admin.get(`${d}/certificates/svc`);
    assert.doesNotMatch(after.text, /\(403 Forbidden\)|grant-yourself/);
    assert.match(after.text, /id="certificate-versions"/);
    assert.match(after.text, /CN=svc/);
  });
});
