import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createVault } from './helpers/access.js';
import { CHROMIUM, chromiumAvailable, launchChromium } from './helpers/browser.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant } from './helpers/vault.js';

const VAULT = 'certsettings';

/**
 * The Certificates tab in headless Chromium (Debian's, through playwright-core): its views of the
 * vault's certificate issuers and contacts, and a certificate's key and secret shown as managed
 * (a note, no buttons the vault refuses). Each change is checked through the vault's REST API.
 */
describe('web console: certificate issuers, contacts, managed key and secret (Chromium)', {
  skip:
    !chromiumAvailable() &&
    process.env.LATCHKEY_REQUIRE_BROWSER !== '1' &&
    `${CHROMIUM} is missing (apt-get install chromium)`,
}, () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const url = (path: string) => `${s.info.authority}${path}`;
  const base = `/console/vaults/default/${VAULT}`;
  /** The vault's REST API as the admin (a vault-audience token). */
  const rest = async (method: string, path: string, json?: unknown) =>
    s.request(method, `${s.vaultUrl(VAULT)}${path}?api-version=7.5`, {
      headers: { authorization: `Bearer ${await s.adminToken(s.info.vaultResource)}` },
      ...(json !== undefined ? { json } : {}),
    });
  const flash = async () => (await page.locator('.alert-success').first().textContent()) ?? '';
  const errorText = async () => (await page.locator('.alert-error').first().textContent()) ?? '';
  /** Every form control has an accessible name, and the page has one h1 (as console.e2e checks). */
  async function accessible() {
    // Runs in the page (a string: this file is compiled without the DOM library).
    const report = (await page.evaluate(`(() => ({
      unlabelled: [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
        .filter((el) => el.tagName === 'BUTTON'
          ? !(el.textContent.trim() || el.getAttribute('aria-label'))
          : !(el.labels && el.labels.length > 0) && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML.slice(0, 120)),
      h1: document.querySelectorAll('h1').length,
    }))()`)) as { unlabelled: string[]; h1: number };
    assert.deepEqual(report.unlabelled, [], `unlabelled controls on ${page.url()}`);
    assert.equal(report.h1, 1, `one h1 on ${page.url()}`);
  }
  const submit = (button: string) =>
    Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: button }).click()]);

  before(async () => {
    s = await startTestServer();
    const vault = await createVault(s, VAULT);
    const me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal.id;
    await grant(s, me, 'Key Vault Administrator', vault.id);
    browser = await launchChromium();
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await ctx.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    // The console asks before a delete (data-confirm): accept, as a user would.
    page.on('dialog', (d) => void d.accept());
    await page.goto(url('/console/'));
    await page.waitForSelector('#username');
    await page.fill('#username', s.admin.userName);
    await page.fill('#password', s.admin.password);
    await Promise.all([page.waitForURL('**/console/'), page.press('#password', 'Enter')]);
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  test('issuers: the tab links to them; add one (provider Latchkey, an administrator), refuse a built-in name, delete', async () => {
    await page.goto(url(`${base}/certificates`));
    await Promise.all([
      page.waitForURL(`**${base}/certificates/issuers`),
      page.locator('#certificate-links').getByRole('link', { name: 'Issuers' }).click(),
    ]);
    assert.match((await page.locator('main').textContent()) ?? '', /No issuers in this vault yet/);
    await accessible();
    await page.locator('summary', { hasText: 'Add an issuer' }).click();
    await page.fill('#issuer-name', 'corp-ca');
    assert.deepEqual(
      await page
        .locator('#issuer-provider option')
        .evaluateAll((os) => os.map((o) => (o as { value: string }).value)),
      ['Latchkey'],
      'the one provider the vault supports',
    );
    await page.fill('#issuer-account', 'acct-1');
    await page.fill('#issuer-org', 'org-1');
    await page.fill('#issuer-admin-email', 'ada@example.com');
    await page.fill('#issuer-admin-first', 'Ada');
    await page.fill('#issuer-admin-last', 'Lovelace');
    await submit('Add issuer');
    assert.match(await flash(), /Issuer corp-ca saved\./);
    const row = page.locator('#certificate-issuers tbody tr', { hasText: 'corp-ca' });
    const cells = await row.locator('td').allTextContents();
    assert.ok(
      cells.some((c) => c.includes('Latchkey')),
      `provider shown: ${cells}`,
    );
    assert.ok(
      cells.some((c) => c.includes('org-1')),
      `organization shown: ${cells}`,
    );
    assert.ok(
      cells.some((c) => c.includes('Ada Lovelace <ada@example.com>')),
      `admin shown: ${cells}`,
    );
    const got = await rest('GET', '/certificates/issuers/corp-ca');
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json.provider, 'Latchkey');
    assert.equal(got.json.credentials.account_id, 'acct-1');
    assert.deepEqual(got.json.org_details, {
      id: 'org-1',
      admin_details: [{ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com' }],
    });
    assert.equal(got.json.attributes.enabled, true);
    // The issuer issues: a certificate created on the tab through it is signed by the tenant's CA.
    const create = async (name: string, issuer: string) => {
      await page.goto(url(`${base}/certificates`));
      await page.locator('summary', { hasText: 'Create a certificate' }).click();
      await page.fill('#certificate-name', name);
      await page.fill('#certificate-subject', `CN=${name}.example`);
      await page.fill('#certificate-issuer', issuer);
      await submit('Create certificate');
    };
    await create('by-corp', 'corp-ca');
    assert.match(await flash(), /Certificate by-corp created\./);
    const issuerRow = (await page.locator('dt:text-is("Issuer") + dd').textContent()) ?? '';
    assert.match(issuerRow, /CN=Latchkey CA .*\(issuer corp-ca\)/);
    assert.equal((await rest('GET', '/certificates/by-corp/policy')).json.issuer.name, 'corp-ca');
    await create('by-unknown', 'Unknown');
    assert.match(await errorText(), /Issuer Unknown makes a signing request/);
    assert.equal((await rest('GET', '/certificates/by-unknown')).status, 404, 'nothing made');

    // A built-in name is the service's 400, shown on the page; nothing is added.
    await page.goto(url(`${base}/certificates/issuers`));
    await page.locator('summary', { hasText: 'Add an issuer' }).click();
    await page.fill('#issuer-name', 'Self');
    await submit('Add issuer');
    assert.match(await errorText(), /Self/);
    assert.equal((await rest('GET', '/certificates/issuers')).json.value.length, 1);

    await page.goto(url(`${base}/certificates/issuers`));
    await Promise.all([
      page.waitForLoadState('load'),
      page
        .locator('#certificate-issuers tbody tr', { hasText: 'corp-ca' })
        .getByRole('button', { name: 'Delete' })
        .click(),
    ]);
    assert.match(await flash(), /Issuer corp-ca deleted\./);
    assert.equal((await rest('GET', '/certificates/issuers/corp-ca')).status, 404);
    assert.match((await page.locator('main').textContent()) ?? '', /No issuers in this vault yet/);
  });

  test('contacts: set two (a row each), a bad address is refused and changes nothing, delete all', async () => {
    await page.goto(url(`${base}/certificates/issuers`));
    await Promise.all([
      page.waitForURL(`**${base}/certificates/contacts`),
      page.locator('#certificate-links').getByRole('link', { name: 'Contacts' }).click(),
    ]);
    assert.match((await page.locator('main').textContent()) ?? '', /No contacts are set for this vault/);
    await accessible();
    await page.fill('#contact-email-0', 'ops@example.com');
    await page.fill('#contact-name-0', 'Ops');
    await page.fill('#contact-phone-0', '555-0101');
    await submit('Save contacts');
    assert.match(await flash(), /1 contact\(s\) saved\./);
    // The saved row is shown with a new empty row under it.
    await page.locator('summary', { hasText: 'Set contacts' }).click();
    assert.equal(await page.inputValue('#contact-email-0'), 'ops@example.com');
    await page.fill('#contact-email-1', 'pki@example.com');
    await submit('Save contacts');
    assert.match(await flash(), /2 contact\(s\) saved\./);
    await accessible();
    const got = await rest('GET', '/certificates/contacts');
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json.contacts, [
      { email: 'ops@example.com', name: 'Ops', phone: '555-0101' },
      { email: 'pki@example.com' },
    ]);
    const table = await page.locator('#certificate-contacts tbody').textContent();
    assert.match(table ?? '', /ops@example\.com[\s\S]*Ops[\s\S]*555-0101[\s\S]*pki@example\.com/);

    await page.locator('summary', { hasText: 'Set contacts' }).click();
    await page.fill('#contact-email-1', 'not an address');
    await submit('Save contacts');
    assert.match(await errorText(), /email/i);
    assert.equal((await rest('GET', '/certificates/contacts')).json.contacts.length, 2, 'nothing changed');

    await page.goto(url(`${base}/certificates/contacts`));
    await page.check('#contacts-delete-confirm');
    await submit('Delete all contacts');
    assert.match(await flash(), /Contacts deleted\./);
    assert.equal((await rest('GET', '/certificates/contacts')).status, 404);
  });

  test("a certificate's key and secret: shown as managed, without the buttons the vault refuses", async () => {
    const made = await rest('POST', '/certificates/tls/create', {
      policy: { issuer: { name: 'Self' }, x509_props: { subject: 'CN=tls' } },
    });
    assert.equal(made.status, 202, made.text);
    assert.equal((await rest('PUT', '/secrets/plain', { value: 'ordinary' })).status, 200);

    await page.goto(url(`${base}/certificates/tls`));
    const links = page.locator('#certificate-managed');
    assert.match((await links.textContent()) ?? '', /key tls and secret tls managed/);
    await Promise.all([
      page.waitForURL(`**${base}/keys/tls`),
      links.getByRole('link', { name: 'key tls' }).click(),
    ]);
    assert.match((await page.locator('#managed-note').textContent()) ?? '', /managed by the certificate tls/);
    assert.equal(await page.locator('#key-versions tbody tr').count(), 1, 'its versions are shown');
    assert.equal(await page.getByRole('button', { name: 'Rotate now' }).count(), 0, 'no Rotate');
    assert.equal(await page.getByRole('button', { name: 'Delete key' }).count(), 0, 'no Delete');
    await page.locator('#managed-note').getByRole('link', { name: 'tls' }).click();
    await page.waitForURL(`**${base}/certificates/tls`);

    await Promise.all([
      page.waitForURL(`**${base}/secrets/tls`),
      page.locator('#certificate-managed').getByRole('link', { name: 'secret tls' }).click(),
    ]);
    assert.match((await page.locator('#managed-note').textContent()) ?? '', /managed by the certificate tls/);
    assert.equal(await page.getByRole('button', { name: 'Show value' }).count(), 1, 'it can be read');
    for (const b of ['Disable', 'Save expiry', 'Delete secret', 'Create version'])
      assert.equal(await page.getByRole('button', { name: b }).count(), 0, `no ${b}`);
    assert.equal(await page.locator('summary', { hasText: 'New version' }).count(), 0, 'no New version');

    // The lists mark them; an ordinary secret is not marked and keeps its buttons.
    await page.goto(url(`${base}/secrets`));
    const rowOf = (name: string) => page.locator('#secrets tbody tr', { hasText: name });
    assert.match((await rowOf('tls').textContent()) ?? '', /managed/);
    assert.doesNotMatch((await rowOf('plain').textContent()) ?? '', /managed/);
    await page.goto(url(`${base}/keys`));
    assert.match((await page.locator('#keys tbody tr', { hasText: 'tls' }).textContent()) ?? '', /managed/);
    await page.goto(url(`${base}/secrets/plain`));
    assert.equal(await page.locator('#managed-note').count(), 0);
    for (const b of ['Disable', 'Save expiry', 'Delete secret'])
      assert.equal(await page.getByRole('button', { name: b }).count(), 1, `an ordinary secret has ${b}`);
    assert.deepEqual(problems, [], 'no script errors');
  });
});
