import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assignRole } from './helpers/access.js';
import { CHROMIUM, chromiumAvailable, launchChromium } from './helpers/browser.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const GH = 'https://token.actions.githubusercontent.com';
const K8S = 'https://oidc.cluster.example';
const EXCHANGE = 'api://AzureADTokenExchange';
const CONTRIBUTOR = { userName: 'cora@latchkey.localhost', password: 'contributor password 1234' };

/**
 * The console's federation pages in headless Chromium (Debian's, through playwright-core): an
 * application registration's federated identity credentials, and the tenant's federation issuers.
 * Every change made on a page is checked through the REST API (Graph, and
 * `/api/tenants/{tenant}/settings/federation`); a Contributor sees the server's refusals.
 */
describe('web console: application federated credentials and the tenant issuer list (Chromium)', {
  skip:
    !chromiumAvailable() &&
    process.env.LATCHKEY_REQUIRE_BROWSER !== '1' &&
    `${CHROMIUM} is missing (apt-get install chromium)`,
}, () => {
  let s: TestServer;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  let appId: string;
  const problems: string[] = [];
  const url = (path: string) => `${s.info.authority}${path}`;
  const SETTINGS = '/console/settings/federation';
  const appPage = () => `/console/app-registrations/${appId}`;
  const graph = async (method: string, path: string, json?: unknown) =>
    s.request(method, path, {
      headers: { authorization: `Bearer ${await s.adminToken(s.info.authority)}` },
      ...(json !== undefined ? { json } : {}),
    });
  /** The application's credentials through Graph, one `name issuer subject audience description` each. */
  const graphCredentials = async () => {
    const r = await graph('GET', `/v1.0/applications/${appId}/federatedIdentityCredentials`);
    assert.equal(r.status, 200, r.text);
    return (
      r.json.value as {
        name: string;
        issuer: string;
        subject: string;
        audiences: string[];
        description: string | null;
      }[]
    )
      .map((c) => `${c.name} ${c.issuer} ${c.subject} ${c.audiences.join(',')} ${c.description ?? '-'}`)
      .sort();
  };
  const federationSettings = async () => {
    const r = await s.request('GET', `/api/tenants/${s.info.tenantId}/settings/federation`, {
      headers: { authorization: `Bearer ${await s.adminToken()}` },
    });
    assert.equal(r.status, 200, r.text);
    return r.json as {
      allowedIssuers: string[] | null;
      serverAllowedIssuers: string[];
      effectiveIssuers: string[];
    };
  };
  const flash = async (p = page) => (await p.locator('.alert-success').first().textContent()) ?? '';
  const errorText = async (p = page) => (await p.locator('#error').first().textContent()) ?? '';
  const listText = async (id: string, p = page) =>
    (await p.locator(`#${id} li`).allTextContents()).map((t) => t.trim());
  /** The credentials table, one `[name, issuer, subject, audience, description]` per row. */
  const tableRows = async (p = page) => {
    const rows = await p.locator('#federated-credentials tbody tr').all();
    const out: string[][] = [];
    for (const row of rows)
      out.push((await row.locator('td .cell').allTextContents()).slice(0, 5).map((t) => t.trim()));
    return out;
  };
  /**
   * Clicks what posts a form and waits for the page it leads to (the redirect's, or the refusal's):
   * the POST's status.
   */
  async function post(p: Page, click: () => Promise<void>): Promise<number> {
    const [res] = await Promise.all([
      p.waitForResponse((r) => r.request().method() === 'POST'),
      p.waitForEvent('framenavigated', { predicate: (f) => f === p.mainFrame() }),
      click(),
    ]);
    await p.waitForLoadState('load');
    return res.status();
  }
  const submit = (p: Page, button: string) => post(p, () => p.getByRole('button', { name: button }).click());
  const deleteCredential = (p: Page, name: string) =>
    post(p, async () => {
      await p.check(`#delete-fic-${name}`);
      await p.locator(`form[action="${appPage()}/federated-credentials/${name}/delete"] button`).click();
    });
  async function signIn(p: Page, user: { userName: string; password: string }) {
    await p.goto(url('/console/'));
    await p.waitForSelector('#username');
    await p.fill('#username', user.userName);
    await p.fill('#password', user.password);
    await Promise.all([p.waitForURL('**/console/'), p.press('#password', 'Enter')]);
  }
  async function addCredential(
    p: Page,
    f: { name: string; issuer: string; subject: string; audience?: string; description?: string },
  ) {
    await p.goto(url(appPage()));
    // The form's panel is open on an empty list and closed otherwise: open it either way.
    await p.evaluate(`document.querySelectorAll('details').forEach((d) => { d.open = true; })`);
    await p.fill('#fic-name', f.name);
    await p.fill('#fic-issuer', f.issuer);
    await p.fill('#fic-subject', f.subject);
    if (f.audience) await p.fill('#fic-audience', f.audience);
    if (f.description) await p.fill('#fic-description', f.description);
    return submit(p, 'Add federated credential');
  }
  /** Breaks the CSRF token of the form posting to `action` on the open page. */
  const spoilCsrf = (p: Page, action: string) =>
    p.evaluate(`document.querySelector('form[action="${action}"] input[name="_csrf"]').value = 'forged'`);

  before(async () => {
    s = await startTestServer({ identityPort: null, federation: { allowedIssuers: [GH, K8S] } });
    const created = await graph('POST', '/v1.0/applications', { displayName: 'ci-deployer' });
    assert.equal(created.status, 201, created.text);
    appId = created.json.id as string;
    const cora = await s.services.principals.createUser(s.info.tenantId, {
      ...CONTRIBUTOR,
      displayName: 'Cora Contributor',
    });
    await assignRole(s, cora.id, 'Contributor', '/');
    browser = await launchChromium();
    admin = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await admin.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('dialog', (d) => void d.accept());
    await signIn(page, s.admin);
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  test('an application: add (every field), refused off the allow-list and on a taken name, listed from Graph, deleted', async () => {
    await page.goto(url('/console/app-registrations'));
    await Promise.all([
      page.waitForURL(`**${appPage()}`),
      page.getByRole('link', { name: 'ci-deployer' }).click(),
    ]);
    assert.match(
      (await page.locator('#federated-credentials').textContent()) ?? '',
      /No federated credentials\./,
    );
    assert.equal(await page.inputValue('#fic-audience'), EXCHANGE, 'the exchange audience is offered');

    assert.equal(
      await addCredential(page, {
        name: 'gh-main',
        issuer: GH,
        subject: 'repo:org/repo:ref:refs/heads/main',
        description: 'deploys from main',
      }),
      303,
    );
    assert.match(await flash(), /Federated credential gh-main saved\./);
    assert.deepEqual(await graphCredentials(), [
      `gh-main ${GH} repo:org/repo:ref:refs/heads/main ${EXCHANGE} deploys from main`,
    ]);
    assert.equal(
      await addCredential(page, {
        name: 'k8s-pod',
        issuer: K8S,
        subject: 'system:serviceaccount:ns:name',
        audience: 'api://custom-exchange',
      }),
      303,
    );
    assert.deepEqual(await tableRows(), [
      ['gh-main', GH, 'repo:org/repo:ref:refs/heads/main', EXCHANGE, 'deploys from main'],
      ['k8s-pod', K8S, 'system:serviceaccount:ns:name', 'api://custom-exchange', '—'],
    ]);

    // Off the server's list: the service's 400 on the page, what was typed kept, nothing stored.
    assert.equal(
      await addCredential(page, { name: 'gitlab', issuer: 'https://gitlab.com', subject: 'typed-subject' }),
      400,
    );
    assert.match(await errorText(), /not on this server's list of allowed federation issuers/);
    assert.equal(await page.inputValue('#fic-subject'), 'typed-subject', 'the typed subject is kept');
    // A name taken: the application's service refuses it (Graph's rule), nothing replaced.
    assert.equal(await addCredential(page, { name: 'gh-main', issuer: GH, subject: 'other' }), 400);
    assert.match(await errorText(), /named 'gh-main' already exists/);
    assert.equal((await graphCredentials()).length, 2, 'nothing added by the refusals');

    // One made through Graph is listed on the page.
    const viaGraph = await graph('POST', `/v1.0/applications/${appId}/federatedIdentityCredentials`, {
      name: 'from-graph',
      issuer: GH,
      subject: 'repo:org/repo:environment:prod',
      audiences: [EXCHANGE],
    });
    assert.equal(viaGraph.status, 201, viaGraph.text);
    await page.goto(url(appPage()));
    assert.deepEqual(
      (await tableRows()).map((r) => r[0]),
      ['from-graph', 'gh-main', 'k8s-pod'],
    );

    // A forged CSRF token: refused, nothing deleted.
    await spoilCsrf(page, `${appPage()}/federated-credentials/gh-main/delete`);
    assert.equal(await deleteCredential(page, 'gh-main'), 403);
    assert.match(await errorText(), /missing or invalid CSRF token/);
    assert.equal((await graphCredentials()).length, 3, 'nothing deleted on a forged token');

    for (const name of ['gh-main', 'k8s-pod', 'from-graph']) {
      await page.goto(url(appPage()));
      assert.equal(await deleteCredential(page, name), 303);
      assert.match(await flash(), new RegExp(`Federated credential ${name} deleted\\.`));
    }
    assert.deepEqual(await graphCredentials(), []);
    assert.deepEqual(problems, [], 'no script errors');
  });

  test('the tenant issuer list: an Owner narrows it (checkboxes), the application page then refuses; back to the server list', async () => {
    await page.goto(url('/console/'));
    await Promise.all([
      page.waitForURL(`**${SETTINGS}`),
      page.getByRole('link', { name: 'Federation issuers' }).click(),
    ]);
    assert.deepEqual(await listText('server-issuers'), [GH, K8S]);
    assert.match((await page.locator('#tenant-issuers').textContent()) ?? '', /follows the server's list/);
    assert.deepEqual(await listText('effective-issuers'), [GH, K8S]);
    assert.equal(await page.isChecked('#issuers-follow'), true, 'following is chosen');

    await page.check('#issuers-own');
    await page.uncheck('#issuer-1');
    await submit(page, 'Save issuers');
    assert.match(await flash(), /Federation issuers saved: 1 allowed\./);
    assert.deepEqual(await federationSettings(), {
      tenantId: s.info.tenantId,
      allowedIssuers: [GH],
      serverAllowedIssuers: [GH, K8S],
      effectiveIssuers: [GH],
    });
    assert.deepEqual(await listText('tenant-issuers'), [GH]);
    assert.deepEqual(await listText('effective-issuers'), [GH]);
    assert.equal(await page.isChecked('#issuer-0'), true, 'the tenant issuer is ticked');
    assert.equal(await page.isChecked('#issuer-1'), false, 'the issuer taken off is not');

    // The application page now refuses the issuer taken off, naming the tenant's list.
    assert.equal(await addCredential(page, { name: 'k8s-later', issuer: K8S, subject: 'x' }), 400);
    assert.match(await errorText(), /not on this tenant's list of allowed federation issuers/);

    // None ticked: an empty list, every issuer refused.
    await page.goto(url(SETTINGS));
    await page.uncheck('#issuer-0');
    await submit(page, 'Save issuers');
    assert.match(await flash(), /saved: 0 allowed/);
    assert.deepEqual((await federationSettings()).allowedIssuers, []);
    assert.match(
      (await page.locator('#effective-issuers').textContent()) ?? '',
      /every exchange of this tenant is refused/,
    );

    // A forged CSRF token: refused, the list unchanged.
    await page.check('#issuers-follow');
    await spoilCsrf(page, SETTINGS);
    assert.equal(await submit(page, 'Save issuers'), 403);
    assert.match(await errorText(), /missing or invalid CSRF token/);
    assert.deepEqual((await federationSettings()).allowedIssuers, [], 'unchanged on a forged token');

    await page.goto(url(SETTINGS));
    await page.check('#issuers-follow');
    await submit(page, 'Save issuers');
    assert.match(await flash(), /follows the server's list/);
    assert.equal((await federationSettings()).allowedIssuers, null);
    assert.deepEqual(await listText('effective-issuers'), [GH, K8S]);
  });

  test("a Contributor: sees the application's credentials, is refused adding and deleting; the issuer list is refused", async () => {
    const seeded = await graph('POST', `/v1.0/applications/${appId}/federatedIdentityCredentials`, {
      name: 'seeded',
      issuer: GH,
      subject: 'repo:org/repo:ref:refs/heads/release',
      audiences: [EXCHANGE],
    });
    assert.equal(seeded.status, 201, seeded.text);
    const before = await graphCredentials();
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const p = await ctx.newPage();
      p.on('dialog', (d) => void d.accept());
      await signIn(p, CONTRIBUTOR);
      assert.equal(await addCredential(p, { name: 'cora-try', issuer: GH, subject: 'cora' }), 403);
      const refused = await errorText(p);
      assert.match(refused, /You do not have permission to do this \(403 /);
      assert.match(refused, /servicePrincipals\/credentials\/write/);
      assert.ok(
        (await tableRows(p)).some((r) => r[0] === 'seeded'),
        'the list is shown with the refusal',
      );
      await p.goto(url(appPage()));
      assert.equal(await deleteCredential(p, 'seeded'), 403);
      assert.match(await errorText(p), /servicePrincipals\/credentials\/write/);
      assert.ok(
        before.includes(`seeded ${GH} repo:org/repo:ref:refs/heads/release ${EXCHANGE} -`),
        `seeded through Graph: ${before.join('; ')}`,
      );
      assert.deepEqual(await graphCredentials(), before, 'nothing added or deleted by the refusals');

      await p.goto(url(SETTINGS));
      assert.match(await errorText(p), /You do not have permission to do this \(403 /);
      assert.equal(await p.locator(`form[action="${SETTINGS}"]`).count(), 0, 'no form for a Contributor');
      assert.equal(await p.locator('#server-issuers').count(), 0, 'no list for a Contributor');
    } finally {
      await ctx.close();
    }
  });
});
