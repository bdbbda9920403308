import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { SecretClient } from '@azure/keyvault-secrets';
import ts from 'typescript';
import {
  AggregateCredentialError,
  DefaultLatchkeyCredential,
  type TokenCredential,
} from '../src/sdk/index.js';
import { selfSignedRsaCert } from './helpers/certs.js';
import { cliUser, REPO_ROOT } from './helpers/cli.js';
import { claimsOf, putApp, putIdentity, session } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, vaultPrincipal } from './helpers/vault.js';

const SDK_DIR = join(REPO_ROOT, 'src', 'sdk');
const BIN = join(REPO_ROOT, 'bin', 'latchkey.js');

describe('latchkey/identity: the SDK stays free of server code', () => {
  const out = join(REPO_ROOT, 'node_modules', '.cache', `latchkey-sdk-test-${process.pid}`);
  after(() => rmSync(out, { recursive: true, force: true }));

  test('its import graph is src/sdk + node built-ins + jose, and it builds alone', async () => {
    const program = ts.createProgram([join(SDK_DIR, 'index.ts')], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      skipLibCheck: true,
      types: ['node'],
      outDir: out,
      rootDir: SDK_DIR,
      declaration: true,
    });
    const own = program
      .getSourceFiles()
      .filter((f) => !f.isDeclarationFile && !f.fileName.includes('/node_modules/'))
      .map((f) => relative(REPO_ROOT, f.fileName));
    assert.ok(own.length >= 5, 'own.length >= 5');
    assert.deepEqual(
      own.filter((f) => !f.startsWith('src/sdk/')),
      [],
      'the SDK imports repository code outside src/sdk',
    );
    // Every import of every SDK file: its own files, node built-ins, jose.
    for (const f of program.getSourceFiles().filter((x) => x.fileName.startsWith(`${SDK_DIR}/`))) {
      for (const imp of ts.preProcessFile(f.text, true, true).importedFiles) {
        const spec = imp.fileName;
        const ok =
          spec.startsWith('node:') ||
          spec === 'jose' ||
          (spec.startsWith('.') && resolve(dirname(f.fileName), spec).startsWith(`${SDK_DIR}/`));
        assert.ok(ok, `${relative(REPO_ROOT, f.fileName)} imports ${spec}`);
      }
    }
    const emit = program.emit();
    const errors = ts.getPreEmitDiagnostics(program).concat(emit.diagnostics);
    assert.deepEqual(
      errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
      [],
      'the SDK compiles on its own',
    );
    // The built JavaScript imports only built-ins, jose and its own files.
    for (const f of readdirSync(out).filter((x) => x.endsWith('.js'))) {
      const js = readFileSync(join(out, f), 'utf8');
      for (const imp of ts.preProcessFile(js, true, true).importedFiles) {
        const spec = imp.fileName;
        const ok =
          spec.startsWith('node:') ||
          spec === 'jose' ||
          (spec.startsWith('./') && resolve(out, spec).startsWith(out) && !spec.includes('..'));
        assert.ok(ok, `${f} imports ${spec}`);
      }
    }
    const built = (await import(
      pathToFileURL(join(out, 'index.js')).href
    )) as typeof import('../src/sdk/index.js');
    assert.equal(typeof built.DefaultLatchkeyCredential, 'function');
  });
});

describe('DefaultLatchkeyCredential against a running Latchkey', () => {
  let s: TestServer;
  let vaultId: string;
  const tmp = mkdtempSync(join(tmpdir(), 'latchkey-sdk-'));
  const vaultScope = () => `${s.info.vaultResource}/.default`;
  /** The official SecretClient with the credential: it is an @azure/core-auth TokenCredential. */
  const readGreeting = async (cred: TokenCredential) =>
    (
      await new SecretClient(s.vaultUrl('sdkidvault'), cred, { agent: s.agent } as never).getSecret(
        'greeting',
      )
    ).value;

  before(async () => {
    s = await startTestServer();
    vaultId = (await putVault(s, 'sdkidvault')).id;
    const officer = await vaultPrincipal(s, 'sdk-officer');
    await grant(s, officer.id, 'Key Vault Secrets Officer', vaultId);
    await secretClient(s, 'sdkidvault', officer).setSecret('greeting', 'hello sdk');
  });
  after(async () => {
    await s?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('environment: a client secret, then a certificate (PS256 assertion)', async () => {
    const sp = await vaultPrincipal(s, 'sdk-env');
    await grant(s, sp.id, 'Key Vault Secrets User', vaultId);
    const env = {
      AZURE_TENANT_ID: s.info.tenantId,
      AZURE_CLIENT_ID: sp.appId,
      AZURE_CLIENT_SECRET: sp.secret,
      LATCHKEY_AUTHORITY: s.info.authority,
    };
    const cred = new DefaultLatchkeyCredential({ env, ca: s.ca });
    const t = await cred.getToken(vaultScope());
    assert.equal(cred.sourceName, 'EnvironmentCredential');
    assert.equal(claimsOf(t.token).appid, sp.appId);
    assert.ok(t.expiresOnTimestamp > Date.now() + 3_000_000, 't.expiresOnTimestamp > Date.now() + 3_000_000');
    assert.ok(
      t.refreshAfterTimestamp! < t.expiresOnTimestamp - 300_000,
      't.refreshAfterTimestamp! < t.expiresOnTimestamp - 300_000',
    );
    assert.equal((await cred.getToken(vaultScope())).token, t.token, 'cached');
    assert.equal(await readGreeting(cred), 'hello sdk');

    const cert = await selfSignedRsaCert('sdk-cert');
    const certSp = await s.services.principals.createServicePrincipal(s.info.tenantId, {
      displayName: 'sdk-cert',
    });
    await s.services.credentials.addCertificate(s.info.tenantId, certSp.id, cert.certPem);
    const pem = join(tmp, 'client.pem');
    writeFileSync(pem, cert.combinedPem, { mode: 0o600 });
    const certCred = new DefaultLatchkeyCredential({
      env: {
        AZURE_TENANT_ID: s.info.tenantId,
        AZURE_CLIENT_ID: certSp.appId!,
        AZURE_CLIENT_CERTIFICATE_PATH: pem,
        AZURE_AUTHORITY_HOST: s.info.authority,
      },
      ca: s.ca,
    });
    const ct = claimsOf((await certCred.getToken(vaultScope())).token);
    assert.equal(ct.appid, certSp.appId);
    assert.equal(ct.azpacr, '2');
  });

  test('managed identity: App Service variables, IMDS, a user-assigned identity by resource id', async () => {
    const app = await putApp(s, 'sdk-app', { identity: { type: 'SystemAssigned' } });
    await grant(s, app.identity.principalId!, 'Key Vault Secrets User', vaultId);
    const sess = await session(s, 'sdk-app');
    const appService = new DefaultLatchkeyCredential({
      env: { IDENTITY_ENDPOINT: sess.identityEndpoint, IDENTITY_HEADER: sess.identityHeader },
    });
    const t = await appService.getToken(vaultScope());
    assert.equal(appService.sourceName, 'ManagedIdentityCredential');
    assert.equal(claimsOf(t.token).oid, app.identity.principalId);
    assert.ok(t.expiresOnTimestamp > Date.now() + 3_000_000, 'expires_on was read');
    assert.equal(await readGreeting(appService), 'hello sdk');

    const imds = new DefaultLatchkeyCredential({
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: sess.imdsAuthorityHost },
    });
    assert.equal(claimsOf((await imds.getToken(vaultScope())).token).oid, app.identity.principalId);

    const u = await putIdentity(s, 'sdk-uai');
    await putApp(s, 'sdk-app', {
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u.id]: {} } },
    });
    const user = new DefaultLatchkeyCredential({
      env: { IDENTITY_ENDPOINT: sess.identityEndpoint, IDENTITY_HEADER: sess.identityHeader },
      managedIdentityResourceId: u.id,
    });
    assert.equal(claimsOf((await user.getToken(vaultScope())).token).oid, u.properties.principalId);
  });

  test('the CLI login, when neither the environment nor a managed identity is there', async () => {
    const cli = cliUser(join(tmp, 'cli'));
    const login = await cli.run(
      '--server',
      s.info.authority,
      '--ca-file',
      s.info.caCertPath,
      'login',
      '-u',
      s.admin.userName,
      '-p',
      s.admin.password,
      '--tenant',
      s.info.tenantId,
    );
    assert.equal(login.code, 0, login.stderr);
    const cred = new DefaultLatchkeyCredential({
      env: { PATH: process.env.PATH ?? '', LATCHKEY_CONFIG_DIR: cli.configDir },
      cli: { command: [process.execPath, BIN] },
    });
    const t = await cred.getToken(vaultScope());
    assert.equal(cred.sourceName, 'LatchkeyCliCredential');
    const c = claimsOf(t.token);
    assert.equal(c.preferred_username, s.admin.userName);
    assert.equal(c.aud, s.info.vaultResource);
  });

  test('errors: every source is listed with what it said; a refusal ends the chain', async () => {
    const none = new DefaultLatchkeyCredential({
      env: { PATH: process.env.PATH ?? '', AZURE_POD_IDENTITY_AUTHORITY_HOST: 'http://127.0.0.1:9' },
      cli: { command: [join(tmp, 'no-such-latchkey')] },
    });
    const e = await none.getToken(vaultScope()).catch((x: unknown) => x);
    assert.ok(e instanceof AggregateCredentialError, 'e instanceof AggregateCredentialError');
    assert.deepEqual(
      e.attempts.map((a) => a.source),
      ['EnvironmentCredential', 'ManagedIdentityCredential', 'LatchkeyCliCredential'],
    );
    assert.match(e.message, /EnvironmentCredential: environment variables not set: AZURE_TENANT_ID/);
    assert.match(
      e.message,
      /ManagedIdentityCredential: the managed identity endpoint .* could not be reached/,
    );
    assert.match(e.message, /LatchkeyCliCredential: the latchkey CLI is not installed/);

    const wrong = new DefaultLatchkeyCredential({
      env: {
        AZURE_TENANT_ID: s.info.tenantId,
        AZURE_CLIENT_ID: (await vaultPrincipal(s, 'sdk-wrong')).appId,
        AZURE_CLIENT_SECRET: 'lks~not-the-secret',
        LATCHKEY_AUTHORITY: s.info.authority,
      },
      ca: s.ca,
    });
    const w = await wrong.getToken(vaultScope()).catch((x: unknown) => x);
    assert.ok(w instanceof AggregateCredentialError, 'w instanceof AggregateCredentialError');
    assert.deepEqual(
      w.attempts.map((a) => a.source),
      ['EnvironmentCredential'],
    );
    assert.match(w.message, /invalid_client/);
    assert.doesNotMatch(w.message, /not-the-secret/);

    const refused = new DefaultLatchkeyCredential({
      env: { IDENTITY_ENDPOINT: `${s.info.identityEndpoint}/msi/token`, IDENTITY_HEADER: 'wrong' },
    });
    const r = await refused.getToken(vaultScope()).catch((x: unknown) => x);
    assert.ok(r instanceof AggregateCredentialError, 'r instanceof AggregateCredentialError');
    assert.match(r.message, /ManagedIdentityCredential: the managed identity endpoint refused: unauthorized/);
    await assert.rejects(none.getToken(['a/.default', 'b/.default']), TypeError);
  });
});
