import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assignRole } from './helpers/access.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const AZ = process.env.LATCHKEY_TEST_AZ ?? '/usr/bin/az';
const EXCHANGE_AUD = 'api://AzureADTokenExchange';

/**
 * `az login --service-principal --federated-token` (Debian's azure-cli 2.45) against installation B,
 * with a token issued by installation A (Latchkey as the issuer, docs/federation.md): B's
 * application trusts A's issuer and A's workload through a Graph federated credential.
 */
describe('az login --federated-token against Latchkey', {
  // Skipped only where az is missing; CI sets LATCHKEY_REQUIRE_AZURE_CLI=1 so it fails there instead.
  skip:
    !existsSync(AZ) &&
    process.env.LATCHKEY_REQUIRE_AZURE_CLI !== '1' &&
    `${AZ} is missing (apt-get install azure-cli)`,
}, () => {
  let a: TestServer;
  let b: TestServer;
  let dir: string;
  before(async () => {
    a = await startTestServer({ identityPort: null });
    b = await startTestServer({
      identityPort: null,
      federation: {
        allowedIssuers: [`${a.info.authority}/${a.info.tenantId}/v2.0`],
        caPem: a.ca,
        fetchTimeoutMs: 3000,
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'latchkey-az-fed-'));
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const az = (args: string[]): Promise<{ code: number; out: string; err: string }> =>
    new Promise((resolve) => {
      execFile(
        AZ,
        [...args, '--only-show-errors', '-o', 'json'],
        {
          timeout: 90_000,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            AZURE_CONFIG_DIR: dir,
            ARM_CLOUD_METADATA_URL: `${b.info.authority}/metadata/endpoints?api-version=2022-09-01`,
            REQUESTS_CA_BUNDLE: b.info.caCertPath,
            SSL_CERT_FILE: b.info.caCertPath,
            AZURE_CORE_COLLECT_TELEMETRY: 'no',
            AZURE_CORE_NO_COLOR: 'true',
            AZURE_CORE_SURVEY_MESSAGE: 'false',
          },
        },
        (e, out, err) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
      );
    });

  it("signs in with A's token as B's application, then lists B's resource groups; a wrong subject is refused", async () => {
    // A: the exchange audience and the workload whose token az presents.
    const graphA = { authorization: `Bearer ${await a.adminToken(a.info.authority)}` };
    const aud = await a.request('POST', '/v1.0/applications', {
      headers: graphA,
      json: { displayName: 'token-exchange', identifierUris: [EXCHANGE_AUD] },
    });
    assert.equal(aud.status, 201, aud.text);
    const tokenOf = async (displayName: string) => {
      const sp = await a.services.principals.createServicePrincipal(a.info.tenantId, { displayName });
      const secret = await a.services.credentials.addSecret(a.info.tenantId, sp.id);
      const r = await a.request('POST', `/${a.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: sp.appId!,
          client_secret: secret.secretText,
          scope: `${EXCHANGE_AUD}/.default`,
        },
      });
      assert.equal(r.status, 200, r.text);
      return { id: sp.id, token: r.json.access_token as string };
    };
    const workload = await tokenOf('workload');

    // B: an application trusting A's issuer for that workload, Reader on the subscription.
    const graphB = { authorization: `Bearer ${await b.adminToken(b.info.authority)}` };
    const app = await b.request('POST', '/v1.0/applications', {
      headers: graphB,
      json: { displayName: 'deployer' },
    });
    assert.equal(app.status, 201, app.text);
    const fic = await b.request('POST', `/v1.0/applications/${app.json.id}/federatedIdentityCredentials`, {
      headers: graphB,
      json: {
        name: 'installation-a',
        issuer: `${a.info.authority}/${a.info.tenantId}/v2.0`,
        subject: workload.id,
        audiences: [EXCHANGE_AUD],
      },
    });
    assert.equal(fic.status, 201, fic.text);
    await assignRole(b, app.json.id, 'Reader', `/subscriptions/${b.info.subscriptionId}`);

    const login = (token: string) =>
      az([
        'login',
        '--service-principal',
        '-u',
        app.json.appId,
        '--federated-token',
        token,
        '--tenant',
        b.info.tenantId,
      ]);
    const ok = await login(workload.token);
    assert.equal(ok.code, 0, `az login --federated-token: ${ok.err}`);
    assert.deepEqual(JSON.parse(ok.out)[0].user, { name: app.json.appId, type: 'servicePrincipal' });
    const groups = await az(['group', 'list']);
    assert.equal(groups.code, 0, groups.err);
    assert.deepEqual(
      JSON.parse(groups.out).map((g: { name: string }) => g.name),
      ['default'],
    );

    const stranger = await tokenOf('stranger');
    const refused = await login(stranger.token);
    assert.notEqual(refused.code, 0, 'a token of another principal of A is refused');
    assert.match(refused.err, /AADSTS700213/);
  });
});
