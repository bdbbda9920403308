// Provisioning manifests: existing application registrations' federated credentials
// (`applications[].federatedCredentials`, issue 21): apply, re-apply, change, absent, export, the dry
// run's refusals (the same as the apply's, nothing changed), permissions and provisioning keys.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.js';

const GH = 'https://token.actions.githubusercontent.com';
const GITLAB = 'https://gitlab.com';
const ELSEWHERE = 'https://issuer.example.com';
const MUTATION = /Create|Update|SecretSet|Write|Delete/;

type Plan = { json: { plan: { action: string; kind: string; name: string }[] } };
const plan = (r: Plan) => r.json.plan.map((p) => `${p.action} ${p.kind} ${p.name}`);

describe('manifests: application registrations’ federated credentials', () => {
  let s: TestServer;
  let admin: Record<string, string>;
  before(async () => {
    s = await startTestServer({ federation: { allowedIssuers: [GH, GITLAB] } });
    admin = { authorization: `Bearer ${await s.adminToken()}` };
  });
  after(() => s.stop());

  const apply = (headers: Record<string, string>, items: Record<string, unknown>, dryRun = false) =>
    s.request('POST', `/api/provisioning/apply?dryRun=${dryRun}`, {
      headers,
      json: { apiVersion: 'latchkey/v1', tenant: s.info.tenantId, ...items },
    });
  const application = async (displayName: string) => {
    const sp = await s.services.principals.createServicePrincipal(s.info.tenantId, { displayName });
    return { id: sp.id, tenantId: sp.tenantId, appId: sp.appId! };
  };
  const fics = (appId: string, list: Record<string, unknown>[]) => ({
    applications: [{ appId, federatedCredentials: list }],
  });
  const stored = async (app: { id: string; tenantId: string }) =>
    (await s.services.appFederatedCredentials.list(app))
      .map((c) => `${c.name} ${c.issuer} ${c.subject} ${c.audiences.join(',')} ${c.description}`)
      .sort();
  const digest = async () => {
    const h = createHash('sha256');
    for (const t of ['app_federated_credentials', 'federated_credentials', 'principals'])
      h.update(JSON.stringify(await s.services.db.all(`SELECT * FROM ${t} ORDER BY 1`)));
    return h.digest('hex');
  };
  const mutations = async () => {
    await s.services.audit.drain();
    const all = await s.services.audit.list({ tenantId: s.info.tenantId, limit: 10_000 });
    return all.filter((e) => MUTATION.test(e.operation) && e.status < 400).length;
  };
  /** The dry run and the apply both fail with `code` and the same message; nothing changes. */
  const refusedBoth = async (
    headers: Record<string, string>,
    items: Record<string, unknown>,
    status: number,
    code: string,
    re: RegExp,
  ) => {
    const before = await digest();
    const messages: string[] = [];
    for (const dryRun of [true, false]) {
      const r = await apply(headers, items, dryRun);
      assert.equal(r.status, status, `dryRun=${dryRun}: ${r.text}`);
      assert.equal(r.json.error.code, code, `dryRun=${dryRun}: ${r.text}`);
      assert.match(r.json.error.message, re, `dryRun=${dryRun}`);
      messages.push(r.json.error.message);
    }
    assert.equal(messages[0], messages[1], 'the dry run refuses with the apply’s own error');
    assert.equal(await digest(), before, 'nothing changed');
  };
  const spToken = async (sp: { id: string; appId: string }) => {
    const c = await s.services.credentials.addSecret(s.info.tenantId, sp.id);
    const t = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: sp.appId,
        client_secret: c.secretText,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    assert.equal(t.status, 200, t.text);
    return { authorization: `Bearer ${t.json.access_token}` };
  };
  const newKey = async (body: Record<string, unknown>) => {
    const r = await s.request('POST', '/api/provisioning/keys', {
      headers: admin,
      json: { expiresInSeconds: 600, ...body },
    });
    assert.equal(r.status, 201, r.text);
    return { authorization: `ProvisioningKey ${(r.json as { key: string }).key}` };
  };

  test('create, re-apply unchanged, change, export round-trip, absent', async () => {
    const app = await application('release-pipeline');
    const main = { name: 'gh-main', issuer: GH, subject: 'repo:org/shop:ref:refs/heads/main' };
    const tag = {
      name: 'gl-tag',
      issuer: GITLAB,
      subject: 'project_path:org/shop:ref_type:tag',
      description: 'tags',
    };
    const first = await apply(admin, fics(app.appId, [main, tag]));
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(plan(first), [
      `create applicationFederatedCredential ${app.appId}/gh-main`,
      `create applicationFederatedCredential ${app.appId}/gl-tag`,
    ]);
    assert.deepEqual(await stored(app), [
      `gh-main ${GH} repo:org/shop:ref:refs/heads/main api://AzureADTokenExchange `,
      `gl-tag ${GITLAB} project_path:org/shop:ref_type:tag api://AzureADTokenExchange tags`,
    ]);

    const before = await mutations();
    const again = await apply(admin, fics(app.appId, [main, tag]));
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(plan(again), [
      `unchanged applicationFederatedCredential ${app.appId}/gh-main`,
      `unchanged applicationFederatedCredential ${app.appId}/gl-tag`,
    ]);
    assert.equal(await mutations(), before, 'a re-apply changes nothing');

    // The appId in capitals names the same application; a changed subject is an update in place.
    const changed = await apply(
      admin,
      fics(app.appId.toUpperCase(), [{ ...main, subject: 'repo:org/shop:environment:prod' }]),
    );
    assert.equal(changed.status, 200, changed.text);
    assert.deepEqual(plan(changed), [`update applicationFederatedCredential ${app.appId}/gh-main`]);
    assert.deepEqual(await stored(app), [
      `gh-main ${GH} repo:org/shop:environment:prod api://AzureADTokenExchange `,
      `gl-tag ${GITLAB} project_path:org/shop:ref_type:tag api://AzureADTokenExchange tags`,
    ]);
    await s.services.audit.drain();
    const ops = (await s.services.audit.list({ tenantId: s.info.tenantId, limit: 10_000 })).map(
      (e) => e.operation,
    );
    assert.ok(ops.includes('FederatedIdentityCredentialUpdate'), `the update is audited: ${ops.join(' ')}`);

    const exp = await s.request('GET', '/api/provisioning/export', { headers: admin });
    assert.equal(exp.status, 200, exp.text);
    const exported = exp.json.applications.find((a: { appId: string }) => a.appId === app.appId);
    assert.deepEqual(exported, {
      appId: app.appId,
      federatedCredentials: [
        { ...main, subject: 'repo:org/shop:environment:prod', audiences: ['api://AzureADTokenExchange'] },
        { ...tag, audiences: ['api://AzureADTokenExchange'] },
      ],
    });
    const reapplied = await apply(admin, { applications: [exported] }, true);
    assert.equal(reapplied.status, 200, reapplied.text);
    assert.deepEqual(plan(reapplied), [
      `unchanged applicationFederatedCredential ${app.appId}/gh-main`,
      `unchanged applicationFederatedCredential ${app.appId}/gl-tag`,
    ]);

    // `absent` deletes; a credential the manifest does not name is left alone; absent twice is a no-op.
    const gone = await apply(admin, fics(app.appId, [{ name: 'gh-main', state: 'absent' }]));
    assert.equal(gone.status, 200, gone.text);
    assert.deepEqual(plan(gone), [`delete applicationFederatedCredential ${app.appId}/gh-main`]);
    assert.deepEqual(await stored(app), [
      `gl-tag ${GITLAB} project_path:org/shop:ref_type:tag api://AzureADTokenExchange tags`,
    ]);
    const twice = await apply(admin, fics(app.appId, [{ name: 'gh-main', state: 'absent' }]));
    assert.deepEqual(plan(twice), [], twice.text);
  });

  test('the dry run refuses what the apply refuses, with the same error, and changes nothing', async () => {
    const app = await application('dry-run-app');
    const cred = (n: number, issuer = GH) => ({ name: `cred-${n}`, issuer, subject: `repo:org/r:ref:${n}` });
    const nineteen = Array.from({ length: 19 }, (_, n) => cred(n));
    assert.equal((await apply(admin, fics(app.appId, nineteen))).status, 200);
    const path = /\(at applications\[0\]\.federatedCredentials\[1\]\)/;

    // The server's allow-list, the tenant's, the name.
    await refusedBoth(
      admin,
      fics(app.appId, [cred(0), cred(19, ELSEWHERE)]),
      400,
      'BadParameter',
      /server's list/,
    );
    await refusedBoth(admin, fics(app.appId, [cred(0), cred(19, ELSEWHERE)]), 400, 'BadParameter', path);
    const settings = `/api/tenants/${s.info.tenantId}/settings/federation`;
    const narrow = await s.request('PUT', settings, { headers: admin, json: { allowedIssuers: [GH] } });
    assert.equal(narrow.status, 200, narrow.text);
    try {
      await refusedBoth(
        admin,
        fics(app.appId, [cred(0), cred(19, GITLAB)]),
        400,
        'BadParameter',
        /tenant's list/,
      );
    } finally {
      await s.request('PUT', settings, { headers: admin, json: { allowedIssuers: null } });
    }
    await refusedBoth(
      admin,
      fics(app.appId, [cred(0), { ...cred(19), name: 'bad name!' }]),
      400,
      'BadParameter',
      /Invalid federated identity credential name/,
    );
    // At most 20: the 20th is fine, a 21st is not (in the same manifest).
    await refusedBoth(admin, fics(app.appId, [cred(19), cred(20)]), 400, 'BadParameter', /at most 20/);
    // …and a deletion in the same apply frees no place: deletions run last.
    await refusedBoth(
      admin,
      fics(app.appId, [cred(19), cred(20), { name: 'cred-0', state: 'absent' }]),
      400,
      'BadParameter',
      /at most 20/,
    );
    // No two with one issuer and subject: against a stored credential the manifest does not name…
    await refusedBoth(
      admin,
      fics(app.appId, [{ ...cred(19), subject: 'repo:org/r:ref:3' }]),
      400,
      'BadParameter',
      /'cred-3' already has this issuer and subject/,
    );
    // …against one created earlier in the same manifest, and against one updated to it.
    await refusedBoth(
      admin,
      fics(app.appId, [cred(19), { ...cred(1), subject: 'repo:org/r:ref:19' }]),
      400,
      'BadParameter',
      /'cred-19' already has this issuer and subject/,
    );
    // Declared twice; no subject; not a GUID.
    await refusedBoth(admin, fics(app.appId, [cred(1), cred(1)]), 400, 'ManifestInvalid', /declared twice/);
    await refusedBoth(
      admin,
      fics(app.appId, [{ name: 'no-subject', issuer: GH }]),
      400,
      'ManifestInvalid',
      /issuer and a subject/,
    );
    await refusedBoth(
      admin,
      fics('release-pipeline', [cred(1)]),
      400,
      'ManifestInvalid',
      /applications\[0\]\.appId/,
    );

    const ok = await apply(admin, fics(app.appId, [cred(19)]), true);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(plan(ok), [`create applicationFederatedCredential ${app.appId}/cred-19`]);
  });

  test('identities’ credentials: the dry run checks at most 20 and issuer+subject as the apply does', async () => {
    const cred = (n: number) => ({ name: `idc-${n}`, issuer: GH, subject: `repo:org/id:ref:${n}` });
    const m = (list: Record<string, unknown>[]) => ({
      identities: [{ name: 'dry-identity', federatedCredentials: list }],
    });
    const setup = await apply(admin, m(Array.from({ length: 19 }, (_, n) => cred(n))));
    assert.equal(setup.status, 200, setup.text);
    await refusedBoth(admin, m([cred(19), cred(20)]), 400, 'BadParameter', /at most 20/);
    await refusedBoth(
      admin,
      m([cred(19), { ...cred(1), subject: 'repo:org/id:ref:19' }]),
      400,
      'BadParameter',
      /'idc-19' already has this issuer and subject\. \(at identities\[0\]\.federatedCredentials\[1\]\)/,
    );
    const ok = await apply(admin, m([cred(19)]), true);
    assert.equal(ok.status, 200, ok.text);
  });

  test('an unknown application is a clear error at its path', async () => {
    const identity = await apply(admin, { identities: [{ name: 'not-an-app' }] });
    assert.equal(identity.status, 200, identity.text);
    const uai = await s.services.userIdentities.find(
      s.info.tenantId,
      s.info.subscriptionId,
      'default',
      'not-an-app',
    );
    assert.ok(uai, 'the identity exists');
    for (const appId of ['00000000-0000-4000-8000-000000000001', uai.clientId]) {
      await refusedBoth(
        admin,
        fics(appId, [{ name: 'x-cred', issuer: GH, subject: 'x' }]),
        400,
        'InvalidReference',
        new RegExp(
          `No application registration with application \\(client\\) id '${appId}'.*\\(at applications\\[0\\]\\.appId\\)`,
        ),
      );
    }
  });

  test('permissions: the Graph route’s (directory read, then the credentials action at /)', async () => {
    const app = await application('guarded-app');
    const main = { name: 'gh-main', issuer: GH, subject: 'repo:org/guarded:ref:refs/heads/main' };
    assert.equal((await apply(admin, fics(app.appId, [main]))).status, 200);

    // No role at all: refused before the application is looked up (an unknown one alike).
    const nobody = await spToken(await application('nobody'));
    for (const appId of [app.appId, '00000000-0000-4000-8000-000000000002'])
      await refusedBoth(nobody, fics(appId, [main]), 403, 'Forbidden', /servicePrincipals\/read/);

    // Contributor at `/` reads (an unchanged plan is fine) but may not change credentials.
    const contributorSp = await application('contributor');
    const assigned = await apply(admin, {
      roleAssignments: [
        { principal: { servicePrincipal: contributorSp.appId }, role: 'Contributor', scope: '/' },
      ],
    });
    assert.equal(assigned.status, 200, assigned.text);
    const contributor = await spToken(contributorSp);
    const same = await apply(contributor, fics(app.appId, [main]));
    assert.equal(same.status, 200, same.text);
    assert.deepEqual(plan(same), [`unchanged applicationFederatedCredential ${app.appId}/gh-main`]);
    await refusedBoth(
      contributor,
      fics(app.appId, [{ ...main, subject: 'repo:org/guarded:ref:refs/heads/evil' }]),
      403,
      'Forbidden',
      /servicePrincipals\/credentials\/write/,
    );
    await refusedBoth(
      contributor,
      fics(app.appId, [{ name: 'gh-main', state: 'absent' }]),
      403,
      'Forbidden',
      /servicePrincipals\/credentials\/write/,
    );
  });

  test('provisioning keys: applications:credentials is needed; a key bound to a resource group never has it', async () => {
    const app = await application('keyed-app');
    const m = fics(app.appId, [
      { name: 'by-key', issuer: GH, subject: 'repo:org/keyed:ref:refs/heads/main' },
    ]);
    const every = await newKey({
      scopes: [
        'hosts:enroll',
        'identities:write',
        'apps:write',
        'vaults:write',
        'roleAssignments:write',
        'secrets:write',
      ],
    });
    await refusedBoth(
      every,
      m,
      403,
      'ProvisioningScopeMissing',
      /needs the scope 'applications:credentials'/,
    );
    const bound = await newKey({
      scopes: ['applications:credentials'],
      resourceGroup: `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`,
    });
    await refusedBoth(bound, m, 403, 'ProvisioningScopeMissing', /limited to resource group/);
    const k = await newKey({ scopes: ['applications:credentials'] });
    const r = await apply(k, m);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(plan(r), [`create applicationFederatedCredential ${app.appId}/by-key`]);
    assert.equal((await stored(app)).length, 1, 'the key created the credential');
  });
});
