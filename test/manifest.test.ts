import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findRole } from '../src/access/roles.js';
import { assignRole, servicePrincipal } from './helpers/access.js';
import { runCli } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const TABLES = [
  'user_identities',
  'federated_credentials',
  'apps',
  'app_identities',
  'vaults',
  'role_assignments',
  'secrets',
  'secret_versions',
  'principals',
];
const MUTATION = /Create|Update|SecretSet|Write|Delete/;
const GH = 'https://token.actions.githubusercontent.com';

function shopManifest(adminUser: string, vault = 'shop-kv') {
  return {
    apiVersion: 'latchkey/v1',
    tenant: 'latchkey.localhost',
    resourceGroup: 'default',
    identities: [{ name: 'ci-deployer' }],
    vaults: [
      {
        name: vault,
        enableRbacAuthorization: true,
        softDeleteRetentionInDays: 7,
        enablePurgeProtection: false,
      },
    ],
    apps: [
      {
        name: 'shop-api',
        identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: ['ci-deployer'] },
        settings: { NPM_TOKEN: `@Microsoft.KeyVault(VaultName=${vault};SecretName=npm-token)` },
      },
    ],
    roleAssignments: [
      { principal: { user: adminUser }, role: 'Key Vault Secrets Officer', scope: { vault } },
      {
        principal: { app: 'shop-api' },
        role: 'Key Vault Secrets User',
        scope: { vault, secret: 'npm-token' },
      },
      { principal: { identity: 'ci-deployer' }, role: 'Key Vault Reader', scope: { vault } },
    ],
    secrets: [
      {
        vault,
        name: 'npm-token',
        contentType: 'text/plain',
        expires: '2027-01-01T00:00:00.000Z',
        value: { resolved: 'npm_s3cret_value' },
      },
      { vault, name: 'db-password', value: { generate: { length: 24 } } },
    ],
  };
}

describe('provisioning manifests', () => {
  let s: TestServer;
  let fresh: TestServer | undefined;
  let admin: Record<string, string>;
  const tmp = mkdtempSync(join(tmpdir(), 'latchkey-manifest-'));
  before(async () => {
    s = await startTestServer({ federation: { allowedIssuers: [GH] } });
    admin = { authorization: `Bearer ${await s.adminToken()}` };
  });
  after(async () => {
    await s.stop();
    await fresh?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const apply = (srv: TestServer, headers: Record<string, string>, body: unknown, dryRun = false) =>
    srv.request('POST', `/api/provisioning/apply?dryRun=${dryRun}`, { headers, json: body });
  const digest = async (srv: TestServer = s) => {
    const h = createHash('sha256');
    for (const t of TABLES)
      h.update(JSON.stringify(await srv.services.db.all(`SELECT * FROM ${t} ORDER BY 1`)));
    return h.digest('hex');
  };
  const mutations = async (srv: TestServer = s) => {
    await srv.services.audit.drain();
    const all = await srv.services.audit.list({ tenantId: srv.info.tenantId });
    return all.filter((e) => MUTATION.test(e.operation) && e.status < 400).length;
  };
  const newKey = async (body: Record<string, unknown>) => {
    const r = await s.request('POST', '/api/provisioning/keys', { headers: admin, json: body });
    assert.equal(r.status, 201, r.text);
    return r.json as { id: string; key: string };
  };
  const ALL_SCOPES = [
    'hosts:enroll',
    'identities:write',
    'apps:write',
    'vaults:write',
    'roleAssignments:write',
    'secrets:write',
  ];
  /** Applying `body` fails with `code` (and a message matching `re`) and changes nothing. */
  const refused = async (
    headers: Record<string, string>,
    body: unknown,
    status: number,
    code: string,
    re?: RegExp,
    dryRun = false,
  ) => {
    const before = await digest();
    const r = await apply(s, headers, body, dryRun);
    assert.equal(r.status, status, r.text);
    assert.equal(r.json.error.code, code, r.text);
    if (re) assert.match(r.json.error.message, re);
    assert.equal(await digest(), before, 'nothing changed');
    return r;
  };

  test('federated credentials on identities: create, unchanged, update, export, absent; refusals change nothing', async () => {
    const m = (fics: Record<string, unknown>[]) => ({
      apiVersion: 'latchkey/v1',
      tenant: 'latchkey.localhost',
      identities: [{ name: 'fed-ci', federatedCredentials: fics }],
    });
    const main = { name: 'gh-main', issuer: GH, subject: 'repo:org/repo:ref:refs/heads/main' };
    const plan = (r: { json: { plan: { action: string; kind: string; name: string }[] } }) =>
      r.json.plan.map((p) => `${p.action} ${p.kind} ${p.name}`);
    const first = await apply(s, admin, m([main]));
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(plan(first), ['create identity fed-ci', 'create federatedCredential fed-ci/gh-main']);
    const before = await mutations();
    const again = await apply(s, admin, m([main]));
    assert.deepEqual(plan(again), [
      'unchanged identity fed-ci',
      'unchanged federatedCredential fed-ci/gh-main',
    ]);
    assert.equal(await mutations(), before, 'a re-apply changes nothing');
    const changed = await apply(s, admin, m([{ ...main, subject: 'repo:org/repo:environment:prod' }]));
    assert.deepEqual(plan(changed), [
      'unchanged identity fed-ci',
      'update federatedCredential fed-ci/gh-main',
    ]);
    const ficPath = `/subscriptions/${s.info.subscriptionId}/resourceGroups/default/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fed-ci/federatedIdentityCredentials`;
    const stored = await s.request('GET', `${ficPath}/gh-main?api-version=2023-01-31`, { headers: admin });
    assert.equal(stored.json.properties.subject, 'repo:org/repo:environment:prod');
    assert.deepEqual(
      stored.json.properties.audiences,
      ['api://AzureADTokenExchange'],
      'the default audience',
    );

    const exp = await s.request('GET', '/api/provisioning/export', { headers: admin });
    assert.equal(exp.status, 200, exp.text);
    const exported = exp.json.identities.find((i: { name: string }) => i.name === 'fed-ci');
    assert.deepEqual(exported, {
      name: 'fed-ci',
      federatedCredentials: [
        { ...main, subject: 'repo:org/repo:environment:prod', audiences: ['api://AzureADTokenExchange'] },
      ],
    });
    const reapplied = await apply(s, admin, { ...exp.json, identities: [exported] }, true);
    assert.equal(reapplied.status, 200, reapplied.text);
    assert.ok(
      reapplied.json.plan.every((p: { action: string }) => p.action === 'unchanged'),
      `the export re-applies as a no-op: ${reapplied.text}`,
    );

    await refused(
      admin,
      m([{ name: 'no-subject', issuer: GH }]),
      400,
      'ManifestInvalid',
      /issuer and a subject/,
    );
    await refused(
      admin,
      m([main, { name: 'elsewhere', issuer: 'https://gitlab.com', subject: 'x' }]),
      400,
      'BadParameter',
      /not on this server's list of allowed federation issuers/,
    );
    // The dry run checks the allow-list as the apply does (same status, code and message).
    await refused(
      admin,
      m([main, { name: 'elsewhere', issuer: 'https://gitlab.com', subject: 'x' }]),
      400,
      'BadParameter',
      /not on this server's list of allowed federation issuers/,
      true,
    );
    await refused(
      admin,
      m([main, { name: 'bad name!', issuer: GH, subject: 'x' }]),
      400,
      'BadParameter',
      /Invalid federated identity credential name/,
      true,
    );
    const gone = await apply(s, admin, m([{ name: 'gh-main', state: 'absent' }]));
    assert.deepEqual(plan(gone), ['unchanged identity fed-ci', 'delete federatedCredential fed-ci/gh-main']);
    const list = await s.request('GET', `${ficPath}?api-version=2023-01-31`, { headers: admin });
    assert.deepEqual(list.json.value, []);
  });

  test('apply, apply again (all unchanged), export, apply the export to a fresh tenant', async () => {
    const m = shopManifest(s.admin.userName);
    const dry = await apply(s, admin, m, true);
    assert.equal(dry.status, 200, dry.text);
    assert.ok(
      dry.json.plan.every((p: { action: string }) => p.action === 'create'),
      dry.text,
    );
    const d0 = await digest();
    assert.equal(await digest(), d0, 'a dry run changes nothing');

    const first = await apply(s, admin, m);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.plan.length, 1 + 1 + 1 + 1 + 3 + 2);
    // The app's settings and the secret are really there.
    const app = await s.services.apps.byName(s.info.tenantId, 'shop-api');
    assert.ok(app?.systemPrincipalId, 'app?.systemPrincipalId');
    assert.deepEqual(await s.services.apps.readSettings(app), m.apps[0]!.settings);
    const versions = await s.services.db.all('SELECT * FROM secret_versions');
    assert.equal(versions.length, 2);

    const d1 = await digest();
    const m1 = await mutations();
    const second = await apply(s, admin, m);
    assert.equal(second.status, 200, second.text);
    assert.ok(
      second.json.plan.every((p: { action: string }) => p.action === 'unchanged'),
      second.text,
    );
    assert.equal(await digest(), d1, 'a second apply changes nothing');
    assert.equal(await mutations(), m1, 'and audits no mutation');

    // A changed value is an update (one new version), nothing else moves.
    const m2 = structuredClone(m);
    m2.secrets[0]!.value = { resolved: 'rotated' };
    const third = await apply(s, admin, m2);
    const changed = third.json.plan.filter((p: { action: string }) => p.action !== 'unchanged');
    assert.deepEqual(changed, [{ action: 'update', kind: 'secret', name: 'shop-kv/npm-token' }]);

    const exp = await s.request('GET', '/api/provisioning/export', { headers: admin });
    assert.equal(exp.status, 200, exp.text);
    assert.ok(!exp.text.includes('rotated') && !exp.text.includes('npm_s3cret'), 'no secret values');
    assert.equal(exp.json.secrets.length, 2);
    assert.equal(exp.json.roleAssignments.length, 3);
    // The export re-applies as a no-op here...
    const again = await apply(s, admin, exp.json);
    assert.ok(
      again.json.plan.every((p: { action: string }) => p.action === 'unchanged'),
      again.text,
    );

    // ...and builds the same state in a fresh installation.
    fresh = await startTestServer();
    const freshAdmin = { authorization: `Bearer ${await fresh.adminToken()}` };
    const body = structuredClone(exp.json);
    for (const ra of body.roleAssignments) if (ra.principal.user) ra.principal.user = fresh.admin.userName;
    const applied = await apply(fresh, freshAdmin, body);
    assert.equal(applied.status, 200, applied.text);
    const exp2 = await fresh.request('GET', '/api/provisioning/export', { headers: freshAdmin });
    const normalize = (x: { roleAssignments: { principal: { user?: string } }[] }) => {
      for (const ra of x.roleAssignments) if (ra.principal.user) ra.principal.user = 'ADMIN';
      return x;
    };
    assert.deepEqual(normalize(exp2.json), normalize(exp.json));
  });

  test('state: absent deletes; nothing is deleted implicitly', async () => {
    const m = {
      apiVersion: 'latchkey/v1',
      tenant: s.info.tenantId,
      identities: [{ name: 'temp-id' }],
    };
    assert.equal((await apply(s, admin, m)).status, 200);
    const omitted = await apply(s, admin, { ...m, identities: [] });
    assert.deepEqual(omitted.json.plan, []);
    assert.ok(
      await s.services.userIdentities.find(s.info.tenantId, s.info.subscriptionId, 'default', 'temp-id'),
      "await s.services.userIdentities.find(s.info.tenantId, s.info.subscriptionId, 'default',...",
    );
    const del = await apply(s, admin, { ...m, identities: [{ name: 'temp-id', state: 'absent' }] });
    assert.deepEqual(del.json.plan, [{ action: 'delete', kind: 'identity', name: 'temp-id' }]);
    assert.equal(
      await s.services.userIdentities.find(s.info.tenantId, s.info.subscriptionId, 'default', 'temp-id'),
      undefined,
    );
  });

  test('refusals change nothing: tenant, role, reference, schema, and a failure mid-apply', async () => {
    const base = shopManifest(s.admin.userName, 'other-kv');
    await refused(admin, { ...base, tenant: 'contoso.example' }, 400, 'TenantMismatch');
    const badRole = structuredClone(base);
    badRole.roleAssignments[1]!.role = 'Key Vault Wizard';
    await refused(admin, badRole, 400, 'UnknownRole', /roleAssignments\[1\]\.role/);
    const badRef = structuredClone(base);
    badRef.apps[0]!.identity.userAssignedIdentities = ['nobody'];
    await refused(admin, badRef, 400, 'InvalidReference', /nobody/);
    const badVault = structuredClone(base);
    badVault.secrets[0]!.vault = 'missing-kv';
    await refused(admin, badVault, 400, 'InvalidReference', /secrets\[0\]\.vault/);
    await refused(
      admin,
      { ...base, vaults: [{ name: 'x-kv', colour: 'red' }] },
      400,
      'ManifestInvalid',
      /vaults\[0\]\.colour/,
    );
    // Valid up front, fails late (a bad access-policy permission): everything before it rolls back.
    const late = structuredClone(base) as Record<string, unknown> & typeof base;
    late.secrets = [{ ...base.secrets[0]!, name: 'bad name!' }] as never;
    await refused(admin, late, 400, 'BadParameter');
    assert.equal(await s.services.vaults.byName('other-kv'), undefined, 'the vault made before it is gone');
    const badRg = structuredClone(base);
    badRg.roleAssignments[0]!.scope = { resourceGroup: 'no-such-rg' } as never;
    await refused(admin, badRg, 400, 'InvalidReference', /no-such-rg.*roleAssignments\[0\]\.scope/);
  });

  test('provisioning keys: audited by id; expired, revoked, used-up, wrong address, missing scope refused', async () => {
    const m = {
      apiVersion: 'latchkey/v1',
      tenant: 'latchkey.localhost',
      identities: [{ name: 'key-made' }],
      apps: [{ name: 'key-app', identity: { type: 'SystemAssigned' } }],
    };
    const k = await newKey({ scopes: ALL_SCOPES, expiresInSeconds: 600 });
    const r = await apply(s, { authorization: `ProvisioningKey ${k.key}` }, m);
    assert.equal(r.status, 200, r.text);
    await s.services.audit.drain();
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, provisioningKeyId: k.id });
    assert.ok(
      events.some((e) => e.operation === 'UserAssignedIdentityCreate'),
      JSON.stringify(events),
    );

    const m2 = { ...m, identities: [{ name: 'never-made' }] };
    const hdr = (key: string) => ({ authorization: `ProvisioningKey ${key}` });
    const revoked = await newKey({ scopes: ALL_SCOPES, expiresInSeconds: 600 });
    await s.request('POST', `/api/provisioning/keys/${revoked.id}/revoke`, { headers: admin });
    await refused(hdr(revoked.key), m2, 401, 'ProvisioningKeyRevoked');
    const once = await newKey({ scopes: ALL_SCOPES, expiresInSeconds: 600, maxUses: 1 });
    assert.equal((await apply(s, hdr(once.key), m2, true)).status, 200);
    const usedUp = await refused(hdr(once.key), m2, 401, 'ProvisioningKeyExhausted');
    assert.ok(usedUp, 'usedUp');
    const far = await newKey({ scopes: ALL_SCOPES, expiresInSeconds: 600, allowedCidrs: ['10.0.0.0/8'] });
    await refused(hdr(far.key), m2, 401, 'ProvisioningKeyAddressNotAllowed');
    const narrow = await newKey({ scopes: ['identities:write'], expiresInSeconds: 600 });
    await refused(
      hdr(narrow.key),
      { ...m2, apps: undefined, vaults: [{ name: 'narrow-kv' }] },
      403,
      'ProvisioningScopeMissing',
      /Microsoft\.KeyVault\/vaults\/read.*vaults:write/,
    );
    const short = await newKey({ scopes: ALL_SCOPES, expiresInSeconds: 600 });
    await s.services.db.run('UPDATE provisioning_keys SET expires_at = $1 WHERE id = $2', [
      Date.now() - 1000,
      short.id,
    ]);
    await refused(hdr(short.key), m2, 401, 'ProvisioningKeyExpired');
  });

  test('CLI: apply -f a YAML file with fromFile/fromEnv; a bad file names path and line', async () => {
    const k = await newKey({ scopes: ALL_SCOPES, expiresInSeconds: 600 });
    writeFileSync(join(tmp, 'token.txt'), 'from-file-value\n');
    const yaml = `apiVersion: latchkey/v1
tenant: latchkey.localhost
vaults:
  - name: cli-kv
    enableRbacAuthorization: true
    accessPolicies:
      - principal: { identity: cli-id }
        permissions: { secrets: [get, list] }
identities:
  - name: cli-id
secrets:
  - vault: cli-kv
    name: from-file
    value: { fromFile: ./token.txt }
  - vault: cli-kv
    name: from-env
    value: { fromEnv: CLI_SECRET }
`;
    writeFileSync(join(tmp, 'm.yaml'), yaml);
    const env = {
      LATCHKEY_SERVER: s.info.authority,
      LATCHKEY_CA_FILE: s.info.caCertPath,
      LATCHKEY_PROVISIONING_KEY: k.key,
      CLI_SECRET: 'from-env-value',
    };
    const cfg = mkdtempSync(join(tmp, 'cfg-'));
    const dry = await runCli(['apply', '-f', join(tmp, 'm.yaml'), '--dry-run'], { configDir: cfg, env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.ok(await s.services.vaults.byName('cli-kv').then((v) => !v), 'dry run created nothing');
    const r = await runCli(['apply', '-f', join(tmp, 'm.yaml')], { configDir: cfg, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.json as unknown[]).length, 4);
    const v = await s.services.vaults.byName('cli-kv');
    assert.equal(v?.accessPolicies.length, 1);
    // Values were read by the CLI and stored: ask the data plane as the server sees it.
    const rows = await s.services.db.all('SELECT * FROM secrets WHERE vault_id = $1', [v!.id]);
    assert.equal(rows.length, 2);

    writeFileSync(join(tmp, 'bad.yaml'), yaml.replace('name: cli-id', 'name: cli-id\n    colour: red'));
    const bad = await runCli(['apply', '-f', join(tmp, 'bad.yaml')], { configDir: cfg, env });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad\.yaml:11:5: identities\[0\]\.colour/);
    const noEnv = await runCli(['apply', '-f', join(tmp, 'm.yaml')], {
      configDir: cfg,
      env: { ...env, CLI_SECRET: undefined as never },
    });
    assert.equal(noEnv.code, 1);
    assert.match(noEnv.stderr, /m\.yaml:17:\d+: secrets\[1\]\.value\.fromEnv: CLI_SECRET is not set/);
    // A server-side error (unknown role) is also pointed at its line.
    writeFileSync(
      join(tmp, 'role.yaml'),
      `apiVersion: latchkey/v1\ntenant: latchkey.localhost\nroleAssignments:\n  - principal: { identity: cli-id }\n    role: Nope\n    scope: { vault: cli-kv }\n`,
    );
    const role = await runCli(['apply', '-f', join(tmp, 'role.yaml')], { configDir: cfg, env });
    assert.equal(role.code, 1);
    assert.match(role.stderr, /role\.yaml:5:5: .*UnknownRole.*roleAssignments\[0\]\.role/);
    const ex = await runCli(['export', '-f', join(tmp, 'out.yaml')], { configDir: cfg, env });
    assert.equal(ex.code, 0, ex.stderr);

    // Whoever edits a manifest that a runner applies cannot copy the runner's other files or its
    // own credentials into a vault: fromFile stays in the manifest's directory, fromEnv refuses them.
    const sub = mkdtempSync(join(tmp, 'repo-'));
    writeFileSync(join(tmp, 'outside.txt'), 'a file of the runner\n');
    symlinkSync(join(tmp, 'outside.txt'), join(sub, 'link.txt'));
    mkdirSync(join(sub, 'deploy'));
    writeFileSync(join(sub, 'deploy', 'inside.txt'), 'ok\n');
    writeFileSync(join(sub, 'key-copy.txt'), `token=${k.key}\n`);
    mkdirSync(join(sub, '.git'));
    writeFileSync(join(sub, '.git', 'config'), '[http]\n\textraheader = AUTHORIZATION: basic eC1hY2Nlc3M=\n');
    const one = (value: string) =>
      `apiVersion: latchkey/v1\ntenant: latchkey.localhost\nsecrets:\n  - vault: cli-kv\n    name: leak\n    value: ${value}\n`;
    const before = await s.services.db.all('SELECT * FROM secrets WHERE vault_id = $1', [v!.id]);
    for (const [value, re] of [
      [
        '{ fromFile: ../outside.txt }',
        /secrets\[0\]\.value\.fromFile: the file must be in the manifest's directory/,
      ],
      [`{ fromFile: ${join(tmp, 'outside.txt')} }`, /the file must be in the manifest's directory/],
      ['{ fromFile: ./link.txt }', /the file must be in the manifest's directory/],
      [
        '{ fromEnv: LATCHKEY_PROVISIONING_KEY }',
        /LATCHKEY_PROVISIONING_KEY holds a credential of the runner itself/,
      ],
      ['{ fromEnv: azure_client_secret }', /holds a credential of the runner itself/],
      ['{ fromEnv: GITHUB_TOKEN }', /holds a credential of the runner itself/],
      // The key the CLI signs in with, kept in a second variable (as a pipeline maps its secret)
      [
        '{ fromEnv: SHOP_PROVISIONING_KEY }',
        /SHOP_PROVISIONING_KEY holds a credential this CLI signs in with/,
      ],
      // ... or in a file of the repository
      ['{ fromFile: key-copy.txt }', /the file holds a credential this CLI signs in with/],
      // git's own files (actions/checkout keeps the job token in .git/config)
      ['{ fromFile: .git/config }', /files under \.git cannot be a secret's value/],
    ] as const) {
      writeFileSync(join(sub, 'leak.yaml'), one(value));
      const r = await runCli(['apply', '-f', join(sub, 'leak.yaml')], {
        configDir: cfg,
        env: {
          ...env,
          AZURE_CLIENT_SECRET: 'runner-secret',
          azure_client_secret: 'runner-secret',
          GITHUB_TOKEN: 'ghs_runner',
          SHOP_PROVISIONING_KEY: k.key,
        },
      });
      assert.equal(r.code, 1, `${value}: ${r.stdout}`);
      assert.match(r.stderr, re);
    }
    assert.deepEqual(await s.services.db.all('SELECT * FROM secrets WHERE vault_id = $1', [v!.id]), before);
    // A file below the manifest's directory is fine.
    writeFileSync(join(sub, 'ok.yaml'), one('{ fromFile: deploy/inside.txt }'));
    const fine = await runCli(['apply', '-f', join(sub, 'ok.yaml')], { configDir: cfg, env });
    assert.equal(fine.code, 0, fine.stderr);
  });
});

describe('manifests: no plan answer depends on a value the caller may not read (issue 14.4)', () => {
  let s: TestServer;
  let admin: Record<string, string>;
  const VAULT = 'oracle-kv';
  const RIGHT = 'hunter2-right-guess';
  before(async () => {
    s = await startTestServer();
    admin = { authorization: `Bearer ${await s.adminToken()}` };
    const setup = await apply({
      vaults: [{ name: VAULT, enableRbacAuthorization: true }],
      apps: [{ name: 'oracle-app', identity: { type: 'SystemAssigned' }, settings: { DB_PASSWORD: RIGHT } }],
      roleAssignments: [
        { principal: { user: s.admin.userName }, role: 'Key Vault Secrets Officer', scope: { vault: VAULT } },
      ],
      secrets: [{ vault: VAULT, name: 'api-key', value: { resolved: RIGHT } }],
    });
    assert.equal(setup.status, 200, setup.text);
  });
  after(() => s.stop());

  function apply(items: Record<string, unknown>, headers = admin, dryRun = false) {
    return s.request('POST', `/api/provisioning/apply?dryRun=${dryRun}`, {
      headers,
      json: { apiVersion: 'latchkey/v1', tenant: s.info.tenantId, ...items },
    });
  }
  const settingsGuess = (guess: string) => ({
    apps: [{ name: 'oracle-app', identity: { type: 'SystemAssigned' }, settings: { DB_PASSWORD: guess } }],
  });
  const secretGuess = (guess: string) => ({
    secrets: [{ vault: VAULT, name: 'api-key', value: { resolved: guess } }],
  });
  /** A dry run's whole answer (status and body) for a right and a wrong guess. */
  const answers = async (headers: Record<string, string>, guess: (g: string) => Record<string, unknown>) => {
    const right = await apply(guess(RIGHT), headers, true);
    const wrong = await apply(guess('wrong-guess'), headers, true);
    return {
      right: { status: right.status, body: right.json },
      wrong: { status: wrong.status, body: wrong.json },
    };
  };
  const key = async (scopes: string[]) => {
    const r = await s.request('POST', '/api/provisioning/keys', {
      headers: admin,
      json: { scopes, expiresInSeconds: 600 },
    });
    assert.equal(r.status, 201, r.text);
    return r.json as { id: string; key: string };
  };
  const events = async (
    filter: (e: { operation: string; callerOid: string | null; provisioningKeyId: string | null }) => boolean,
  ) => {
    await s.services.audit.drain();
    return (await s.services.audit.list({ tenantId: s.info.tenantId, limit: 1000 })).filter(filter);
  };

  test('a caller with no role assignments gets the same answer for a right and a wrong guess', async () => {
    const sp = await s.services.principals.createServicePrincipal(s.info.tenantId, { displayName: 'nobody' });
    const c = await s.services.credentials.addSecret(s.info.tenantId, sp.id);
    const t = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: sp.appId!,
        client_secret: c.secretText,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    assert.equal(t.status, 200, t.text);
    const nobody = { authorization: `Bearer ${t.json.access_token}` };
    for (const guess of [settingsGuess, secretGuess]) {
      const a = await answers(nobody, guess);
      assert.deepEqual(a.right, a.wrong);
      assert.equal(a.right.status, 403, JSON.stringify(a.right.body));
    }
    // An item it may not read is refused whether or not it exists (the refusal names the read).
    const ghost = await apply({ identities: [{ name: 'no-such-identity' }] }, nobody, true);
    const real = await apply(
      { apps: [{ name: 'oracle-app', identity: { type: 'SystemAssigned' } }] },
      nobody,
      true,
    );
    assert.equal(ghost.status, 403);
    assert.equal(real.status, 403);
    assert.match(real.json.error.message, /Microsoft\.Web\/sites\/read/);
    assert.deepEqual(
      await events((e) => e.callerOid === sp.id && /AppSettingsList|SecretGet/.test(e.operation)),
      [],
    );
  });

  test('a key that may not read there learns nothing of what exists: users, vaults, identities, resource groups', async () => {
    const auditor = await key(['audit:read']);
    const hdr = { authorization: `ProvisioningKey ${auditor.key}` };
    const dry = async (items: Record<string, unknown>) => {
      const r = await apply(items, hdr, true);
      return { status: r.status, code: r.json.error?.code, message: r.json.error?.message };
    };
    const ra = (principal: unknown, scope: unknown) => ({
      roleAssignments: [{ principal, role: 'Reader', scope }],
    });
    const pairs: [Record<string, unknown>, Record<string, unknown>][] = [
      // an existing user, and a made-up one
      [
        ra({ user: s.admin.userName }, { resourceGroup: 'default' }),
        ra({ user: 'nobody@latchkey.localhost' }, { resourceGroup: 'default' }),
      ],
      // an existing vault, and a made-up one (as a scope, and as a secret's vault)
      [
        ra({ user: s.admin.userName }, { vault: VAULT }),
        ra({ user: s.admin.userName }, { vault: 'nosuchkv' }),
      ],
      [
        { secrets: [{ vault: VAULT, name: 'x', value: { resolved: 'v' } }] },
        { secrets: [{ vault: 'nosuchkv', name: 'x', value: { resolved: 'v' } }] },
      ],
      // an existing resource group, and a made-up one
      [
        ra({ user: s.admin.userName }, { resourceGroup: 'default' }),
        ra({ user: s.admin.userName }, { resourceGroup: 'nosuchrg' }),
      ],
      // an existing app's identity, and a made-up app
      [
        ra({ app: 'oracle-app' }, { resourceGroup: 'default' }),
        ra({ app: 'nosuchapp' }, { resourceGroup: 'default' }),
      ],
      // a user-assigned identity an app would use: made-up either way, but asked before any lookup
      [
        {
          apps: [
            { name: 'oracle-app', identity: { type: 'UserAssigned', userAssignedIdentities: ['nosuchuai'] } },
          ],
        },
        {
          apps: [
            { name: 'nosuchapp2', identity: { type: 'UserAssigned', userAssignedIdentities: ['nosuchuai'] } },
          ],
        },
      ],
    ];
    for (const [real, madeUp] of pairs) {
      const a = await dry(real);
      const b = await dry(madeUp);
      assert.equal(a.status, 403, JSON.stringify(a));
      assert.equal(a.code, 'ProvisioningScopeMissing', JSON.stringify(a));
      assert.deepEqual(
        { status: b.status, code: b.code, message: b.message?.replace(/nosuch\w+/g, 'X') },
        {
          status: a.status,
          code: a.code,
          message: a.message?.replace(new RegExp(`${VAULT}|oracle-app|default`, 'g'), 'X'),
        },
        `${JSON.stringify(real)} vs ${JSON.stringify(madeUp)}`,
      );
    }
  });

  test('a Reader of a resource group cannot tell which user names exist through a dry run', async () => {
    const bob = { userName: 'bob.reader@latchkey.localhost', password: 'bob reads only 12345' };
    const p = await s.services.principals.createUser(s.info.tenantId, { ...bob, displayName: 'Bob' });
    await s.services.access.create(s.info.tenantId, {
      principalId: p.id,
      role: findRole('Reader')!,
      scope: `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`,
    });
    await s.services.principals.createUser(s.info.tenantId, {
      userName: 'carol.secret@latchkey.localhost',
      password: 'carol exists 123456',
      displayName: 'Carol',
    });
    const t = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'password',
        client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
        username: bob.userName,
        password: bob.password,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    assert.equal(t.status, 200, t.text);
    const hdr = { authorization: `Bearer ${t.json.access_token}` };
    const ra = (user: string) => ({
      roleAssignments: [
        { principal: { user }, role: 'Reader', scope: { resourceGroup: 'default' }, state: 'absent' },
      ],
    });
    const real = await apply(ra('carol.secret@latchkey.localhost'), hdr, true);
    const ghost = await apply(ra('nobody@latchkey.localhost'), hdr, true);
    assert.equal(real.status, 403, real.text);
    assert.deepEqual(
      { status: ghost.status, body: ghost.json },
      { status: real.status, body: real.json },
      'the same answer for a user who exists and one who does not',
    );
  });

  test('an apps:write key (with every write scope) cannot list settings; its dry run writes them without comparing', async () => {
    // Every write scope, and still no reading of settings.
    const k = await key([
      'apps:write',
      'identities:write',
      'vaults:write',
      'roleAssignments:write',
      'secrets:write',
    ]);
    const hdr = { authorization: `ProvisioningKey ${k.key}` };
    const appPath = `/subscriptions/${s.info.subscriptionId}/resourceGroups/default/providers/Microsoft.Web/sites/oracle-app`;
    const list = await s.request('POST', `${appPath}/config/appsettings/list?api-version=2023-12-01`, {
      headers: hdr,
    });
    assert.equal(list.status, 403, list.text);
    assert.ok(!list.text.includes(RIGHT), '!list.text.includes(RIGHT)');
    const a = await answers(hdr, settingsGuess);
    assert.deepEqual(a.right, a.wrong);
    assert.equal(a.right.status, 200, JSON.stringify(a.right.body));
    assert.deepEqual(a.right.body.plan, [
      { action: 'unchanged', kind: 'app', name: 'oracle-app' },
      {
        action: 'update',
        kind: 'appSettings',
        name: 'oracle-app',
        note: 'settings not compared: the caller may not list them',
      },
    ]);
    // Its export leaves the settings out (so re-applying it keeps them).
    const exp = await s.request('GET', '/api/provisioning/export', { headers: hdr });
    assert.equal(exp.status, 200, exp.text);
    assert.ok(!exp.text.includes(RIGHT), '!exp.text.includes(RIGHT)');
    assert.equal(exp.json.apps[0].settings, undefined);
  });

  test('a secrets:write + vaults:write key cannot read a secret; right and wrong guesses plan alike', async () => {
    const k = await key(['secrets:write', 'vaults:write']);
    const caller = await s.services.provisioningKeys.authenticate(k.key, {
      requestId: 'r',
      clientIp: '127.0.0.1',
    });
    const vault = (await s.services.vaults.byName(VAULT))!;
    const secretScope = `${vault.armId}/secrets/api-key`;
    assert.equal(
      await s.services.access.allows(
        caller,
        'Microsoft.KeyVault/vaults/secrets/getSecret/action',
        secretScope,
        true,
      ),
      false,
      'secrets:write does not imply getSecret',
    );
    assert.equal(
      await s.services.access.allows(
        caller,
        'Microsoft.KeyVault/vaults/secrets/backup/action',
        secretScope,
        true,
      ),
      false,
      'nor a backup (every value, sealed)',
    );
    const hdr = { authorization: `ProvisioningKey ${k.key}` };
    const a = await answers(hdr, secretGuess);
    assert.deepEqual(a.right, a.wrong);
    assert.deepEqual(a.right.body.plan, [
      {
        action: 'update',
        kind: 'secret',
        name: `${VAULT}/api-key`,
        note: 'value not compared: the caller may not read it',
      },
    ]);
    assert.deepEqual(await events((e) => e.provisioningKeyId === k.id && e.operation === 'SecretGet'), []);
    // And the apply writes it (one new version) without reading it.
    const before = (await s.services.db.all('SELECT * FROM secret_versions')).length;
    const applied = await apply(secretGuess(RIGHT), hdr);
    assert.equal(applied.status, 200, applied.text);
    assert.equal((await s.services.db.all('SELECT * FROM secret_versions')).length, before + 1);
  });

  test('a caller with read permission still sees unchanged for identical values; the reads are audited', async () => {
    const count = async () => {
      const ops = (await events((e) => /^(AppSettingsList|SecretGet)$/.test(e.operation))).map(
        (e) => e.operation,
      );
      return {
        settings: ops.filter((o) => o === 'AppSettingsList').length,
        secrets: ops.filter((o) => o === 'SecretGet').length,
      };
    };
    const mark = await count();
    const same = await apply({ ...settingsGuess(RIGHT), ...secretGuess(RIGHT) }, admin, true);
    assert.equal(same.status, 200, same.text);
    assert.ok(
      same.json.plan.every((p: { action: string; note?: string }) => p.action === 'unchanged' && !p.note),
      same.text,
    );
    const changed = await apply({ ...settingsGuess('other'), ...secretGuess('other') }, admin, true);
    assert.deepEqual(
      changed.json.plan.map((p: { action: string; kind: string }) => `${p.kind}:${p.action}`),
      ['app:unchanged', 'appSettings:update', 'secret:update'],
    );
    assert.deepEqual(await count(), { settings: mark.settings + 2, secrets: mark.secrets + 2 });
  });

  test('issue 14.5: a Key Vault reference outside this installation is refused, dry run included', async () => {
    for (const dryRun of [true, false]) {
      const r = await apply(
        {
          apps: [
            {
              name: 'oracle-app',
              identity: { type: 'SystemAssigned' },
              settings: {
                LEAK: '@Microsoft.KeyVault(SecretUri=https://oracle-kv.vault.localhost.evil.test/secrets/x)',
              },
            },
          ],
        },
        admin,
        dryRun,
      );
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.code, 'InvalidKeyVaultReference');
      assert.match(r.json.error.message, /App setting 'LEAK'/);
    }
    const app = await s.services.apps.byName(s.info.tenantId, 'oracle-app');
    assert.deepEqual(await s.services.apps.readSettings(app!), { DB_PASSWORD: RIGHT });
  });
});

/**
 * A manifest runs as one transaction. A step refused inside it (the caller removed its own role
 * earlier in the same manifest) is audited as a refusal; that record must not be awaited inside
 * the transaction: its batch waits for the transaction (the log's lock, SQLite's connection), and
 * before the fix the apply never answered and every write of the installation waited behind it.
 */
describe('manifests: a step refused inside the apply answers 403, and nothing waits for it', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  test('removing its own Owner, then another assignment: 403, rolled back, and other writes go on', async () => {
    const rg = `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`;
    const owner = await servicePrincipal(s, 'self-removing-owner');
    const other = await servicePrincipal(s, 'self-removing-other');
    await assignRole(s, owner.id, 'Owner', rg);
    await assignRole(s, other.id, 'Reader', rg);
    const headers = { authorization: `Bearer ${await owner.token(s.info.managementResource)}` };
    const body = {
      apiVersion: 'latchkey/v1',
      tenant: s.info.tenantId,
      resourceGroup: 'default',
      // Deletions run last-declared first: the Owner's own assignment goes before the other one.
      roleAssignments: [
        {
          principal: { servicePrincipal: other.appId },
          role: 'Reader',
          scope: { resourceGroup: 'default' },
          state: 'absent',
        },
        {
          principal: { servicePrincipal: owner.appId },
          role: 'Owner',
          scope: { resourceGroup: 'default' },
          state: 'absent',
        },
      ],
    };
    const r = await s.request('POST', '/api/provisioning/apply?dryRun=false', { headers, json: body });
    assert.equal(r.status, 403, r.text);
    // All or nothing: both assignments are still there.
    const left = await s.services.access.list(s.info.tenantId, {});
    assert.ok(
      left.some((a) => a.principalId === owner.id && a.roleDefinitionName === 'Owner'),
      'the Owner kept',
    );
    assert.ok(
      left.some((a) => a.principalId === other.id),
      'the other kept',
    );
    // The refusal is audited once the apply's transaction has ended; other writes were never held up.
    const admin = { authorization: `Bearer ${await s.adminToken()}` };
    const w = await s.request(
      'PUT',
      `/subscriptions/${s.info.subscriptionId}/resourcegroups/after-refusal?api-version=2021-04-01`,
      {
        headers: admin,
        json: { location: 'local' },
      },
    );
    assert.equal(w.status, 201, w.text);
    await s.services.audit.drain();
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, limit: 200 });
    assert.ok(
      events.some(
        (e) => e.operation === 'RoleAssignmentDelete' && e.status === 403 && e.callerOid === owner.id,
      ),
      'the refusal is audited',
    );
  });
});
