import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ConsoleClient, consoleSignIn } from './helpers/console.js';
import { putIdentity } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const GH = 'https://token.actions.githubusercontent.com';
const K8S = 'https://oidc.cluster.example';
const K8S_SUB = 'system:serviceaccount:ns:name';

/** The federated-credentials table as text, one `[name, issuer, subject, audience]` per row. */
function tableRows(page: string): string[][] {
  const table = /<table[^>]*id="federated-credentials"[^>]*>([\s\S]*?)<\/table>/.exec(page)?.[1] ?? '';
  const text = (cell: string) =>
    cell
      .replace(/<[^>]+>/g, '')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&')
      .trim();
  return [...table.matchAll(/<tr>([\s\S]*?)<\/tr>/g)]
    .map((row) => [...row[1]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) => text(c[1]!)).slice(0, 4))
    .filter((cells) => cells.length > 0);
}

/** The identity page's federated credentials (docs/federation.md), over plain HTTP as a browser posts them. */
describe('console: federated credentials on the identity page', () => {
  let s: TestServer;
  let c: ConsoleClient;
  const PAGE = '/console/identities/default/fed-console';
  before(async () => {
    s = await startTestServer({ identityPort: null, federation: { allowedIssuers: [GH, K8S] } });
    c = await consoleSignIn(s);
    await putIdentity(s, 'fed-console');
  });
  after(async () => {
    await s?.stop();
  });
  /** Opens `page`, posts its form for `action` with the page's CSRF token. */
  async function act(action: string, form: Record<string, string>, status = 303) {
    const p = await c.get(PAGE);
    assert.equal(p.status, 200, p.text.slice(0, 300));
    const token = c.csrf(p.text, action);
    assert.ok(token, `no form for ${action} on ${PAGE}`);
    const r = await c.post(action, { ...form, _csrf: token! });
    const error = /<div class="alert alert-error"[^>]*>([\s\S]*?)<\/div>/.exec(r.text)?.[1];
    assert.equal(r.status, status, `${action}: ${error ?? r.text.slice(0, 300)}`);
    return { ...r, error };
  }
  const stored = async () => {
    const me = (await s.services.principals.byUserName(s.info.tenantId, s.admin.userName))!.principal.id;
    const caller = { tenantId: s.info.tenantId, oid: me, appId: null, kind: 'user' as const };
    const path = { sub: s.info.subscriptionId, rg: 'default', identity: 'fed-console' };
    return (await s.services.federatedCredentials.list(caller, path)).map(
      (f) => `${f.name} ${f.issuer} ${f.subject} ${f.audiences.join(',')}`,
    );
  };

  test('listed from the identity list, added, refused off the allow-list, deleted', async () => {
    const list = await c.get('/console/identities');
    assert.ok(list.text.includes(`href="${PAGE}"`), 'the list links to the identity page');
    const empty = await c.get(PAGE);
    assert.match(empty.text, /No federated credentials\./);

    await act(`${PAGE}/federated-credentials`, {
      name: 'github-main',
      issuer: GH,
      subject: 'repo:org/repo:ref:refs/heads/main',
      audience: 'api://AzureADTokenExchange',
    });
    const page = await c.get(PAGE);
    assert.match(page.text, /repo:org\/repo:ref:refs\/heads\/main/);
    assert.deepEqual(await stored(), [
      `github-main ${GH} repo:org/repo:ref:refs/heads/main api://AzureADTokenExchange`,
    ]);

    const off = await act(
      `${PAGE}/federated-credentials`,
      {
        name: 'elsewhere',
        issuer: 'https://gitlab.com',
        subject: 'x',
        audience: 'api://AzureADTokenExchange',
      },
      400,
    );
    assert.match(off.error ?? '', /not on this server(&#39;|')s list of allowed federation issuers/);

    await act(`${PAGE}/federated-credentials/github-main/delete`, { confirm: 'yes' });
    assert.deepEqual(await stored(), []);
  });

  test('each column shows its own field; a typed audience is kept; a refusal keeps what was typed', async () => {
    await act(`${PAGE}/federated-credentials`, {
      name: 'k8s-pod',
      issuer: K8S,
      subject: K8S_SUB,
      audience: 'api://custom-exchange',
    });
    await act(`${PAGE}/federated-credentials`, {
      name: 'gh-env',
      issuer: GH,
      subject: 'repo:org/repo:environment:prod',
      audience: 'api://AzureADTokenExchange',
    });
    assert.deepEqual(await stored(), [
      `gh-env ${GH} repo:org/repo:environment:prod api://AzureADTokenExchange`,
      `k8s-pod ${K8S} ${K8S_SUB} api://custom-exchange`,
    ]);
    assert.deepEqual(tableRows((await c.get(PAGE)).text), [
      ['gh-env', GH, 'repo:org/repo:environment:prod', 'api://AzureADTokenExchange'],
      ['k8s-pod', K8S, K8S_SUB, 'api://custom-exchange'],
    ]);
    // The tenant admin narrows the tenant's issuers: the console refuses the issuer taken off,
    // says which list refused it, and shows the form again with what was typed.
    const narrowed = await s.request('PUT', `/api/tenants/${s.info.tenantId}/settings/federation`, {
      headers: { authorization: `Bearer ${await s.adminToken()}` },
      json: { allowedIssuers: [GH] },
    });
    assert.equal(narrowed.status, 200, narrowed.text);
    const off = await act(
      `${PAGE}/federated-credentials`,
      { name: 'k8s-other', issuer: K8S, subject: 'typed-subject-kept', audience: 'api://typed-aud' },
      400,
    );
    assert.match(off.error ?? '', /not on this tenant(&#39;|')s list of allowed federation issuers/);
    for (const kept of ['k8s-other', K8S, 'typed-subject-kept', 'api://typed-aud'])
      assert.ok(off.text.includes(`value="${kept}"`), `the form keeps ${kept}`);
    for (const name of ['gh-env', 'k8s-pod'])
      await act(`${PAGE}/federated-credentials/${name}/delete`, { confirm: 'yes' });
    assert.deepEqual(await stored(), []);
  });
});
