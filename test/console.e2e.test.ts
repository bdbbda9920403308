import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assignRole } from './helpers/access.js';
import { CHROMIUM, chromiumAvailable, launchChromium } from './helpers/browser.js';
import { REPO_ROOT } from './helpers/cli.js';
import { identityStateDir } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The web console in headless Chromium (Debian's package, driven by
 * playwright-core; never a downloaded browser). One browser for the file.
 * Screenshots go to docs/screenshots/ with LATCHKEY_UPDATE_SCREENSHOTS=1
 * (`npm run screenshots`), else to a temporary directory.
 */
const VALUE = 'e2e-SECRET-value-7f3a9c';
const VAULT = 'e2evault';
const APP = 'e2e-app';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const BIN = join(REPO_ROOT, 'bin', 'latchkey.js');
const CHILD = join(REPO_ROOT, 'test', 'fixtures', 'identity-child.mjs');
const DNS = join(REPO_ROOT, 'test', 'fixtures', 'localhost-dns.mjs');
const SHOTS = process.env.LATCHKEY_UPDATE_SCREENSHOTS === '1';

/** `latchkey run --app APP -- node identity-child.mjs ...`, in an environment without any credential. */
function latchkeyRun(s: TestServer, home: string, childArgs: string[]) {
  return new Promise<{ code: number | null; stderr: string; json: Record<string, unknown> | undefined }>(
    (resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          BIN,
          'run',
          '--app',
          APP,
          '--state-dir',
          identityStateDir(s),
          '--',
          process.execPath,
          '--import',
          DNS,
          CHILD,
          ...childArgs,
        ],
        {
          cwd: REPO_ROOT,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: home,
            LATCHKEY_CONFIG_DIR: join(home, '.latchkey'),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        stdout += c;
      });
      child.stderr.setEncoding('utf8').on('data', (c: string) => {
        stderr += c;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(stdout.trim().split('\n').pop() ?? '');
        } catch {}
        resolve({ code, stderr, json });
      });
    },
  );
}

describe('web console in headless Chromium', {
  // Skipped on a machine without Chromium, except in CI (.ci/run installs it and sets
  // LATCHKEY_REQUIRE_BROWSER=1, so a missing browser fails there instead of passing silently).
  skip:
    !chromiumAvailable() &&
    process.env.LATCHKEY_REQUIRE_BROWSER !== '1' &&
    `${CHROMIUM} is missing (apt-get install chromium)`,
}, () => {
  let s: TestServer;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  let home: string;
  let shotDir: string;
  const problems: string[] = [];
  const url = (path: string) => `${s.info.authority}${path}`;
  const vaultPage = (tab = '') => url(`/console/vaults/default/${VAULT}${tab}`);

  /** Fresh context: its own cookies and storage; every console error or CSP violation is recorded. */
  async function newContext(viewport = DESKTOP): Promise<BrowserContext> {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport, deviceScaleFactor: 1 });
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.info.authority });
    ctx.on('page', (p) => {
      p.on('console', (m) => {
        // The denied-action test answers 403 on purpose; anything else is a problem.
        if (m.type() === 'error' && !/status of 403/.test(m.text())) problems.push(m.text());
      });
      p.on('pageerror', (e) => problems.push(e.message));
    });
    return ctx;
  }

  async function signIn(p: Page, user: { userName: string; password: string }) {
    await p.goto(url('/console/'));
    await p.waitForSelector('#username');
    await p.fill('#username', user.userName);
    await p.fill('#password', user.password);
    await Promise.all([p.waitForURL('**/console/'), p.press('#password', 'Enter')]);
  }

  async function shot(p: Page, name: string) {
    await p.screenshot({ path: join(shotDir, `${name}.png`) });
  }

  /** Every form control has an accessible name; one h1; nothing wider than the viewport. */
  async function checkPage(p: Page) {
    // Runs in the page (a string: this file is compiled without the DOM library).
    const report = (await p.evaluate(`(() => {
      const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
        .filter((el) => el.tagName === 'BUTTON'
          ? !(el.textContent.trim() || el.getAttribute('aria-label'))
          : !(el.labels && el.labels.length > 0) && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML.slice(0, 120));
      return {
        unlabelled,
        h1: document.querySelectorAll('h1').length,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
      };
    })()`)) as { unlabelled: string[]; h1: number; overflow: number };
    assert.deepEqual(report.unlabelled, [], `unlabelled controls on ${p.url()}`);
    assert.equal(report.h1, 1, `one h1 on ${p.url()}`);
    assert.ok(report.overflow <= 0, `no horizontal scrolling on ${p.url()} (${report.overflow}px)`);
  }

  /**
   * On a phone, tables are stacked cards: label on the left, value on the right.
   * Every part of a value (ids, notes, buttons, dates) stays in the value column,
   * buttons keep their own width, a date stays on one line; the menu is one row.
   */
  async function checkPhoneLayout(p: Page) {
    const report = (await p.evaluate(`(() => {
      const bad = [];
      for (const td of document.querySelectorAll('table.stack td')) {
        if (getComputedStyle(td).display !== 'grid') continue;
        const cell = td.querySelector(':scope > .cell');
        if (!cell || td.children.length !== 1) { bad.push('no single value wrapper: ' + td.outerHTML.slice(0, 80)); continue; }
        const left = cell.getBoundingClientRect().left;
        for (const el of cell.querySelectorAll('*')) {
          const r = el.getBoundingClientRect();
          if (r.width === 0 && r.height === 0) continue;
          if (r.left < left - 1) bad.push(td.dataset.label + ': ' + el.outerHTML.slice(0, 80) + ' in the label column');
          if (el.tagName === 'BUTTON' && r.width > cell.getBoundingClientRect().width - 1 && cell.getBoundingClientRect().width > 160)
            bad.push(td.dataset.label + ': stretched button');
          if (el.tagName === 'TIME' && r.height > 1.6 * parseFloat(getComputedStyle(el).lineHeight || '20'))
            bad.push(td.dataset.label + ': date on several lines');
        }
      }
      const nav = document.querySelector('.sidenav');
      return { bad, nav: nav ? nav.getBoundingClientRect().height : 0, screen: window.innerHeight };
    })()`)) as { bad: string[]; nav: number; screen: number };
    assert.deepEqual(report.bad, [], `phone layout on ${p.url()}`);
    assert.ok(report.nav < report.screen / 8, `the menu is one row on ${p.url()} (${report.nav}px)`);
  }

  async function flash(p: Page): Promise<string> {
    return (await p.locator('.alert-success').first().textContent()) ?? '';
  }

  before(async () => {
    s = await startTestServer();
    home = mkdtempSync(join(tmpdir(), 'latchkey-console-home-'));
    shotDir = SHOTS ? join(REPO_ROOT, 'docs', 'screenshots') : mkdtempSync(join(tmpdir(), 'latchkey-shots-'));
    mkdirSync(shotDir, { recursive: true });
    browser = await launchChromium();
    admin = await newContext();
    page = await admin.newPage();
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
    if (shotDir && !SHOTS) rmSync(shotDir, { recursive: true, force: true });
  });

  test('sign in with the keyboard; the skip link leads to the main content', async () => {
    await page.goto(url('/console/'));
    await page.waitForSelector('#username');
    assert.match(page.url(), /\/oauth2\/v2\.0\/authorize\?/);
    await shot(page, 'desktop-sign-in');
    await checkPage(page);
    // The user name field has focus; type, Tab to the password, Enter submits.
    await page.keyboard.type(s.admin.userName);
    await page.keyboard.press('Tab');
    await page.keyboard.type(s.admin.password);
    await Promise.all([page.waitForURL('**/console/'), page.keyboard.press('Enter')]);
    assert.equal(new URL(page.url()).search, '', 'no code or state left in the address');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement.textContent'), 'Skip to main content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate('document.activeElement.id'), 'main');
    await checkPage(page);
  });

  test('create a vault, a secret, an app with a system-assigned identity, grant it in IAM; latchkey run reads the secret', async () => {
    await page.goto(url('/console/vaults'));
    await page.fill('#vault-name', VAULT);
    await Promise.all([
      page.waitForURL(`**/console/vaults/default/${VAULT}`),
      page.click('button:text("Create vault")'),
    ]);
    assert.match(await flash(page), new RegExp(`Vault ${VAULT} created`));
    await checkPage(page);

    // An RBAC vault: the creator needs a data role to add secrets (as in Azure).
    await page.click('a:text("Access control (IAM)")');
    await page.selectOption('#iam-role', { label: 'Key Vault Secrets Officer' });
    await page.fill('#iam-assignee', s.admin.userName);
    await Promise.all([page.waitForURL('**/iam'), page.click('button:text("Add role assignment")')]);
    assert.match(await flash(page), /Key Vault Secrets Officer granted/);

    await page.click('nav.tabs a:text("Secrets")');
    await page.click('summary:text("Add a secret")');
    await page.fill('#new-secret-name', 'greeting');
    await page.fill('#new-secret-value', VALUE);
    await Promise.all([page.waitForURL('**/secrets/greeting'), page.click('button:text("Add secret")')]);
    assert.match(await flash(page), /Secret greeting saved/);
    assert.ok(!(await page.content()).includes(VALUE), 'the value is not on the page after saving');

    await page.goto(url('/console/apps'));
    await page.fill('#app-name', APP);
    await page.check('#app-system');
    await Promise.all([
      page.waitForURL(`**/apps/default/${APP}/identity`),
      page.click('button:text("Create app")'),
    ]);
    const principalId = (await page.textContent('#system-principal-id'))!.trim();
    assert.match(principalId, /^[0-9a-f-]{36}$/);
    await checkPage(page);
    await shot(page, 'desktop-app-identity');

    await page.goto(vaultPage('/iam'));
    await page.selectOption('#iam-role', { label: 'Key Vault Secrets User' });
    await page.fill('#iam-assignee', principalId);
    await Promise.all([page.waitForURL('**/iam'), page.click('button:text("Add role assignment")')]);
    assert.match(await flash(page), /Key Vault Secrets User granted/);
    assert.ok(
      await page.locator(`#role-assignments :text("${principalId}")`).count(),
      'await page.locator(\'#role-assignments :text("{principalId}")\').count()',
    );
    await checkPage(page);
    await shot(page, 'desktop-vault-iam');

    await page.goto(url(`/console/apps/default/${APP}/settings`));
    await page.fill('#setting-name', 'GREETING');
    await page.fill('#setting-value', `@Microsoft.KeyVault(VaultName=${VAULT};SecretName=greeting)`);
    await Promise.all([page.waitForURL('**/settings'), page.click('button:text("Save setting")')]);
    assert.match(await flash(page), /Setting GREETING saved/);
    assert.equal(await page.locator('#settings .badge:text("Resolved")').count(), 1);

    // The workload: its setting resolved through its identity, and the official SDK reading the secret itself.
    const env = await latchkeyRun(s, home, ['env']);
    assert.equal(env.code, 0, env.stderr);
    assert.equal((env.json!.env as Record<string, string>).GREETING, VALUE);
    const sdk = await latchkeyRun(s, home, ['appservice', s.vaultUrl(VAULT), s.info.vaultResource]);
    assert.equal(sdk.code, 0, sdk.stderr);
    assert.equal((sdk.json!.managedIdentity as { secret?: string }).secret, VALUE, JSON.stringify(sdk.json));
  });

  test('a secret value appears only after an explicit reveal: not in the page before, the URL or browser storage', async () => {
    await page.goto(vaultPage('/secrets/greeting'));
    assert.ok(!(await page.content()).includes(VALUE), 'absent before reveal');
    assert.equal(await page.locator('#secret-value').count(), 0);
    const [response] = await Promise.all([
      page.waitForResponse(
        (r) => r.url().endsWith('/secrets/greeting/reveal') && r.request().method() === 'POST',
      ),
      page.click('button:text("Show value")'),
    ]);
    assert.equal(response.headers()['cache-control'], 'no-store');
    assert.equal((await page.textContent('#secret-value'))?.trim(), VALUE);
    assert.ok(!page.url().includes(VALUE) && !page.url().includes('value='), 'not in the URL');
    const storage = await page.evaluate(
      'JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])',
    );
    assert.equal(storage, '[[],[]]');
    assert.ok(
      (await admin.cookies()).every((c) => !c.value.includes(VALUE)),
      'not in a cookie',
    );
    // The copy button is an enhancement: present only with JavaScript, and it copies.
    const copy = page.locator('button[data-copy="secret-value"]');
    assert.equal(await copy.isVisible(), true);
    await copy.click();
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), VALUE);
    await checkPage(page);
    await shot(page, 'desktop-secret-revealed');
    await page.click('a:text("Hide")');
    await page.waitForURL('**/secrets/greeting');
    assert.ok(!(await page.content()).includes(VALUE), 'gone again');
  });

  test('a denied action: a Reader adding a secret sees a clear 403 and nothing changes', async () => {
    const reader = { userName: 'reader@latchkey.localhost', password: 'reader password 1234' };
    const p = await s.services.principals.createUser(s.info.tenantId, {
      ...reader,
      displayName: 'Rita Reader',
    });
    await assignRole(s, p.id, 'Reader', '/');
    const ctx = await newContext();
    try {
      const rp = await ctx.newPage();
      await signIn(rp, reader);
      await rp.goto(vaultPage('/secrets'));
      // Listing is a data action Reader does not have: the section says so.
      assert.match((await rp.textContent('#error')) ?? '', /403 Forbidden/);
      const before = Number(
        (await s.services.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM secret_versions'))!.n,
      );
      await rp.click('summary:text("Add a secret")');
      await rp.fill('#new-secret-name', 'reader-attempt');
      await rp.fill('#new-secret-value', 'should-not-be-stored');
      const [res] = await Promise.all([
        rp.waitForResponse((r) => r.request().method() === 'POST'),
        rp.click('button:text("Add secret")'),
      ]);
      assert.equal(res.status(), 403);
      const error = (await rp.textContent('#error')) ?? '';
      assert.match(error, /You do not have permission to do this \(403 Forbidden\)/);
      assert.match(error, /secrets\/setSecret\/action/);
      assert.match(error, /Nothing was changed/);
      const after = Number(
        (await s.services.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM secret_versions'))!.n,
      );
      assert.equal(after, before);
      const audited = await s.services.db.get<{ status: number; caller_kind: string }>(
        "SELECT status, caller_kind FROM audit_events WHERE operation = 'SecretSet' AND caller_oid = $1",
        [p.id],
      );
      assert.deepEqual(audited, { status: 403, caller_kind: 'user' });
      await checkPage(rp);
      await shot(rp, 'desktop-denied');
    } finally {
      await ctx.close();
    }
  });

  test('provisioning keys: the value is shown once, with a copy button', async () => {
    await page.goto(url('/console/provisioning-keys'));
    await page.check('#pk-scope-secrets-write');
    await page.fill('#pk-name', 'ci-pipeline');
    await page.click('button:text("Create key")');
    await page.waitForSelector('#provisioning-key-value');
    const key = (await page.textContent('#provisioning-key-value'))!.trim();
    assert.match(key, /^lkp_[a-z0-9]{16}\.[\w-]{43}$/);
    assert.equal(await page.locator('button[data-copy="provisioning-key-value"]').isVisible(), true);
    await checkPage(page);
    await shot(page, 'desktop-provisioning-key-created');
    await page.goto(url('/console/provisioning-keys'));
    assert.ok(!(await page.content()).includes(key.split('.')[1]!), 'never shown again');
    assert.equal(await page.locator('#provisioning-keys :text("ci-pipeline")').count(), 1);
  });

  test('app registrations: the client secret is shown once, with the ids a client needs', async () => {
    await page.goto(url('/console/app-registrations'));
    // The managed identities of earlier tests are listed, so the form starts folded.
    await page.click('summary:text("Register an application")');
    await page.fill('#sp-name', 'release-pipeline');
    await page.selectOption('#sp-secret', '90d');
    await page.click('button:text("Register")');
    await page.waitForSelector('#client-secret-value');
    const secret = (await page.textContent('#client-secret-value'))!.trim();
    assert.ok(secret.length >= 32, 'a client secret');
    assert.equal(await page.locator('button[data-copy="client-secret-value"]').isVisible(), true);
    assert.match(await page.content(), /Application \(client\) ID/);
    await checkPage(page);
    await shot(page, 'desktop-app-registration-created');
    await page.goto(url('/console/app-registrations'));
    assert.ok(!(await page.content()).includes(secret), 'never shown again');
    await page.click('#app-registrations a:text("release-pipeline")');
    await page.waitForSelector('#credentials');
    assert.equal(await page.locator('#credentials tbody tr').count(), 1);
    await checkPage(page);
  });

  test('audit log: filters and the chain verification', async () => {
    await page.goto(url('/console/audit'));
    // Changes by default: the console's own reads are not among them.
    const changes = await page.locator('#audit-events td[data-label="Operation"]').allTextContents();
    assert.ok(
      changes.length > 0 && !changes.includes('SecretGet') && !changes.includes('AuditList'),
      "changes.length > 0 && !changes.includes('SecretGet') && !changes.includes('AuditList')",
    );
    await page.selectOption('#f-show', 'reads');
    await page.fill('#f-operation', 'SecretGet');
    await Promise.all([page.waitForURL('**/audit?**'), page.click('button:text("Apply filters")')]);
    const ops = await page.locator('#audit-events td[data-label="Operation"]').allTextContents();
    assert.ok(ops.length > 0 && ops.every((o) => o === 'SecretGet'), ops.join(','));
    await page.click('button:text("Verify the chain now")');
    await page.waitForSelector('#chain-status.alert-success');
    assert.match((await page.textContent('#chain-status')) ?? '', /Chain verified: intact/);
    await checkPage(page);
    await shot(page, 'desktop-audit');
    await page.goto(url('/console/'));
    await shot(page, 'desktop-overview');
  });

  test('IAM at the subscription: the member picker finds the app identity by name', async () => {
    await page.goto(url('/console/resource-groups'));
    await page.click('#resource-groups a:text("Access control (IAM)")');
    await page.waitForURL('**/resource-groups/default/iam');
    await page.goto(url('/console/subscription/iam'));
    await page.fill('#member-search', APP);
    await Promise.all([page.waitForURL('**/iam?member=*'), page.press('#member-search', 'Enter')]);
    await page.waitForSelector('#member-results');
    assert.match((await page.textContent('#member-results')) ?? '', new RegExp(APP));
    await page.selectOption('#iam-role', { label: 'Reader' });
    await checkPage(page);
    await shot(page, 'desktop-subscription-iam');
    await Promise.all([
      page.waitForURL('**/subscription/iam'),
      page.click('button:text("Add role assignment")'),
    ]);
    assert.match(await flash(page), new RegExp(`Reader granted to ${APP}`));
  });

  test('vault IAM: the member picker searches as you type (JavaScript), desktop and phone', async () => {
    const iam = `/console/vaults/default/${VAULT}/iam`;
    for (const viewport of [DESKTOP, PHONE]) {
      const ctx = await newContext(viewport);
      try {
        const p = await ctx.newPage();
        await signIn(p, s.admin);
        await p.goto(url(iam));
        await p.fill('#member-search', APP.slice(0, 6));
        await p.waitForSelector('#member-live input[type=radio]');
        assert.equal(p.url(), url(iam), 'no page load: the matches came from the JSON search');
        assert.match((await p.textContent('#member-live')) ?? '', new RegExp(`${APP} managed identity`));
        assert.equal(await p.isHidden('#member-field'), true, 'the typed field gives way to the matches');
        await checkPage(p);
        if (viewport === PHONE) await checkPhoneLayout(p);
        await shot(p, viewport === PHONE ? 'phone-vault-iam-picker' : 'desktop-vault-iam-picker');
        if (viewport === DESKTOP) {
          await p.selectOption('#iam-role', { label: 'Key Vault Reader' });
          await Promise.all([p.waitForURL(`**${iam}`), p.click('button:text("Add role assignment")')]);
          assert.match(await flash(p), new RegExp(`Key Vault Reader granted to ${APP}`));
        }
        // Clearing the search brings the typed field back.
        await p.fill('#member-search', '');
        await p.waitForSelector('#iam-assignee', { state: 'visible' });
      } finally {
        await ctx.close();
      }
    }
  });

  test('phone width (390 px): the main pages fit, nothing scrolls sideways', async () => {
    const ctx = await newContext(PHONE);
    try {
      const p = await ctx.newPage();
      await signIn(p, s.admin);
      for (const [path, name] of [
        ['/console/', 'phone-overview'],
        [`/console/vaults/default/${VAULT}/secrets`, 'phone-vault-secrets'],
        [`/console/apps/default/${APP}/identity`, 'phone-app-identity'],
        ['/console/audit?show=all', 'phone-audit'],
        ['/console/resource-groups', undefined],
        [`/console/subscription/iam?member=${APP}`, undefined],
        ['/console/provisioning-keys', undefined],
        ['/console/app-registrations', undefined],
        ['/console/users', undefined],
        [`/console/vaults/default/${VAULT}/iam`, undefined],
        [`/console/vaults/default/${VAULT}/secrets/greeting`, undefined],
        ['/console/identities', undefined],
        ['/console/vaults?q=e2e', undefined],
        [`/console/vaults/default/${VAULT}/access-policies`, undefined],
      ] as const) {
        await p.goto(url(path));
        await checkPage(p);
        await checkPhoneLayout(p);
        if (name) await shot(p, name);
      }
    } finally {
      await ctx.close();
    }
  });

  test('works with JavaScript off: sign in, add a secret, no copy buttons', async () => {
    const ctx = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: DESKTOP,
      javaScriptEnabled: false,
    });
    try {
      const p = await ctx.newPage();
      await signIn(p, s.admin);
      await p.goto(vaultPage('/secrets'));
      await p.click('summary:text("Add a secret")');
      await p.fill('#new-secret-name', 'no-script');
      await p.fill('#new-secret-value', 'typed without JavaScript');
      await Promise.all([p.waitForURL('**/secrets/no-script'), p.click('button:text("Add secret")')]);
      assert.match(await flash(p), /Secret no-script saved/);
      await p.click('button:text("Show value")');
      assert.equal((await p.textContent('#secret-value'))?.trim(), 'typed without JavaScript');
      assert.equal(await p.locator('button[data-copy="secret-value"]').isVisible(), false);
    } finally {
      await ctx.close();
    }
  });

  test('device sign-in page: enter the code, sign in; the waiting device gets its token', async () => {
    const start = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/devicecode`, {
      form: {
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        scope: `${s.info.managementResource}/.default openid`,
      },
    });
    assert.equal(start.status, 200, start.text);
    const ctx = await newContext();
    const p = await ctx.newPage();
    await p.goto(start.json.verification_uri);
    await p.waitForSelector('#user_code');
    await checkPage(p);
    await p.fill('#user_code', start.json.user_code.toLowerCase());
    await Promise.all([p.waitForSelector('#username'), p.press('#user_code', 'Enter')]);
    assert.match(await p.content(), /to <strong>Azure CLI<\/strong>/);
    await checkPage(p);
    await p.fill('#username', s.admin.userName);
    await p.fill('#password', s.admin.password);
    await shot(p, 'desktop-device-login');
    await Promise.all([p.waitForSelector('h1:text("Signed in")'), p.press('#password', 'Enter')]);
    await checkPage(p);
    await ctx.close();
    const token = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        device_code: start.json.device_code,
      },
    });
    assert.equal(token.status, 200, token.text);
  });

  test('no page raised a script error or a Content-Security-Policy violation', () => {
    assert.deepEqual(problems, []);
  });
});
