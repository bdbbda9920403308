// `latchkey server` (the production configuration path) started as a real process with
// LATCHKEY_TOKEN_EXCHANGE_AUDIENCES set: a managed identity's workload, through the identity
// endpoint of a `latchkey agent` enrolled against that server (`latchkey run`), gets a token for
// the operator's exchange audience and for api://AzureADTokenExchange, and is refused one the
// operator did not list (docs/federation.md, "Latchkey as an issuer"). With
// LATCHKEY_FEDERATION_ALLOWED_ISSUERS set too, the CLI's `latchkey tenant federation-issuers`
// against that server (docs/federation.md, "Per-tenant issuer allow-list").
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { type CliUser, cliUser, REPO_ROOT, runCli, type ServerProcess, spawnServer } from './helpers/cli.js';
import { issueServerCert, makeTestCa } from './helpers/tls-ca.js';

const BIN = join(REPO_ROOT, 'bin', 'latchkey.js');
const OPERATOR_AUD = 'api://latchkey-server-exchange';
const NOT_LISTED = 'api://not-listed-by-the-operator';
const ISSUER_A = 'https://issuer-a.example';
const ISSUER_B = 'https://issuer-b.example/tenant';

/** The workload: asks the identity endpoint (App Service protocol) for each resource, prints the answers. */
const CHILD = `
const out = {};
for (const resource of JSON.parse(process.env.RESOURCES)) {
  const url = process.env.IDENTITY_ENDPOINT + '?' + new URLSearchParams({ 'api-version': '2019-08-01', resource });
  const r = await fetch(url, { headers: { 'X-IDENTITY-HEADER': process.env.IDENTITY_HEADER } });
  out[resource] = { status: r.status, body: await r.json().catch(() => null) };
}
console.log(JSON.stringify(out));
`;

describe('latchkey server (production configuration) with exchange audiences and federation issuers', () => {
  let root: string;
  let server: ServerProcess<{ authority: string; port: number }>;
  let agent: ServerProcess<{ identityEndpoint: string; hostName: string }> | undefined;
  let cli: CliUser;
  let stateDir: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'latchkey-fed-server-'));
    const cfg = join(root, 'server-cfg');
    const keyFile = join(root, 'root.key');
    const gen = await runCli(['root-key', 'generate', '--out', keyFile], { configDir: cfg });
    assert.equal(gen.code, 0, gen.stderr);
    const ca = await makeTestCa();
    const leaf = await issueServerCert(ca, ['localhost', '*.vault.localhost']);
    writeFileSync(join(root, 'tls.pem'), leaf.certPem);
    writeFileSync(join(root, 'tls.key'), leaf.keyPem, { mode: 0o600 });
    writeFileSync(join(root, 'ca.pem'), ca.certPem);
    const adminFile = join(root, 'admin.json');
    server = await spawnServer(
      [
        'server',
        '--json',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--root-key-file',
        keyFile,
        '--tls-cert',
        join(root, 'tls.pem'),
        '--tls-key',
        join(root, 'tls.key'),
        '--storage',
        `sqlite:${join(root, 'prod.db')}`,
        '--public-host',
        'localhost',
        '--vault-domain',
        'vault.localhost',
        '--log-level',
        'warn',
        '--bootstrap-admin',
        adminFile,
      ],
      {
        configDir: cfg,
        env: {
          LATCHKEY_TOKEN_EXCHANGE_AUDIENCES: `${OPERATOR_AUD}, urn:example:other-exchange`,
          LATCHKEY_FEDERATION_ALLOWED_ISSUERS: `${ISSUER_A},${ISSUER_B}`,
        },
        timeoutMs: 60_000,
      },
    );
    const admin = JSON.parse(readFileSync(adminFile, 'utf8')) as {
      userName: string;
      password: string;
      tenantId: string;
    };
    cli = cliUser(join(root, 'cli'));
    const login = await cli.run(
      '--server',
      server.info.authority,
      '--ca-file',
      join(root, 'ca.pem'),
      'login',
      '-u',
      admin.userName,
      '-p',
      admin.password,
      '--tenant',
      admin.tenantId,
    );
    assert.equal(login.code, 0, login.stderr);
    stateDir = join(root, 'agent-state');
    agent = await spawnServer(
      ['agent', '--enroll', '--json', '--port', '0', '--state-dir', stateDir, '--host-name', 'edge-x'],
      { configDir: cli.configDir, timeoutMs: 60_000 },
    );
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
    cli?.cleanup();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('issues a token for the listed audience (and Azure exchange audience), refuses one not listed', async () => {
    const app = await cli.run('app', 'create', '-n', 'exchanger', '--host', 'edge-x', '--assign-identity');
    assert.equal(app.code, 0, app.stderr);
    const principalId = app.json.identity.principalId as string;
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(
        process.execPath,
        [
          BIN,
          'run',
          '--app',
          'exchanger',
          '--state-dir',
          stateDir,
          '--',
          process.execPath,
          '--input-type=module',
          '-e',
          CHILD,
        ],
        {
          cwd: REPO_ROOT,
          env: {
            PATH: process.env.PATH ?? '',
            HOME: root,
            RESOURCES: JSON.stringify([OPERATOR_AUD, 'api://AzureADTokenExchange', NOT_LISTED]),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => {
        stdout += d;
      });
      c.stderr.on('data', (d: Buffer) => {
        stderr += d;
      });
      c.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<
      string,
      { status: number; body: { access_token?: string } & Record<string, unknown> }
    >;
    for (const aud of [OPERATOR_AUD, 'api://AzureADTokenExchange']) {
      const r = out[aud]!;
      assert.equal(r.status, 200, `${aud}: ${JSON.stringify(r.body)}`);
      const claims = decodeJwt(r.body.access_token!);
      assert.equal(claims.aud, aud, `the token is for ${aud}`);
      assert.equal(claims.sub, principalId, "the managed identity's token");
      assert.equal(claims.iss, `${server.info.authority}/${app.json.identity.tenantId}/v2.0`);
    }
    const refused = out[NOT_LISTED]!;
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.access_token, undefined, 'no token for an audience the operator did not list');
    assert.match(JSON.stringify(refused.body), /token-exchange audience the operator allows/);
  });

  test('latchkey tenant federation-issuers: show, narrow, refuse a widening, back to the server list', async () => {
    const show = await cli.run('tenant', 'federation-issuers', 'show');
    assert.equal(show.code, 0, show.stderr);
    assert.equal(show.json.allowedIssuers, null);
    assert.deepEqual(show.json.serverAllowedIssuers, [ISSUER_A, ISSUER_B]);
    const narrowed = await cli.run('tenant', 'federation-issuers', 'set', '--issuers', ISSUER_B);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.deepEqual(narrowed.json.effectiveIssuers, [ISSUER_B]);
    // A credential naming the issuer taken off is refused (the CLI's own federated-credential verb).
    const identity = await cli.run('identity', 'create', '-n', 'narrowed', '-g', 'default');
    assert.equal(identity.code, 0, identity.stderr);
    const fic = await cli.run(
      'identity',
      'federated-credential',
      'create',
      '--identity-name',
      'narrowed',
      '-g',
      'default',
      '-n',
      'on-a',
      '--issuer',
      ISSUER_A,
      '--subject',
      'repo:org/repo:ref:refs/heads/main',
    );
    assert.equal(fic.code, 1, fic.stdout);
    assert.match(fic.stderr, /not on this tenant's list of allowed federation issuers/);
    const widen = await cli.run(
      'tenant',
      'federation-issuers',
      'set',
      '--issuers',
      'https://elsewhere.example',
    );
    assert.equal(widen.code, 1, widen.stdout);
    assert.match(widen.stderr, /can only narrow/);
    const none = await cli.run('tenant', 'federation-issuers', 'set', '--none');
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(none.json.allowedIssuers, []);
    const ambiguous = await cli.run('tenant', 'federation-issuers', 'set', '--none', '--server-list');
    assert.equal(ambiguous.code, 2, ambiguous.stderr);
    const back = await cli.run('tenant', 'federation-issuers', 'set', '--server-list');
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.json.allowedIssuers, null);
    assert.deepEqual(back.json.effectiveIssuers, [ISSUER_A, ISSUER_B]);
  });
});
