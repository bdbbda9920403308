import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ClientAssertionCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { decodeJwt } from 'jose';
import { credentialOptions } from './helpers/authority.js';
import { arm, putIdentity, uaiId } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault } from './helpers/vault.js';

/**
 * Latchkey as an issuer another system trusts (docs/federation.md, "Latchkey as an issuer"):
 * a principal of installation A gets a token for `api://AzureADTokenExchange` (an application
 * registration in A with that identifier URI), and installation B's identity, trusting A's
 * issuer and that principal's object id, exchanges it for B's own token. No secret of B anywhere.
 */
const EXCHANGE_AUD = 'api://AzureADTokenExchange';
/** Debian's Python with Debian's Azure SDK (python3-azure), as test/python.test.ts. */
const PYTHON = process.env.LATCHKEY_TEST_PYTHON ?? '/usr/bin/python3';

describe('Latchkey as an issuer: a token of installation A exchanged at installation B', () => {
  let a: TestServer;
  let b: TestServer;
  let issuerA: string;
  before(async () => {
    a = await startTestServer({ identityPort: null });
    issuerA = `${a.info.authority}/${a.info.tenantId}/v2.0`;
    b = await startTestServer({
      identityPort: null,
      federation: { allowedIssuers: [issuerA], caPem: a.ca, fetchTimeoutMs: 3000 },
    });
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });

  test("A's workload token (aud api://AzureADTokenExchange) reaches B's vault through B's federated credential", async () => {
    // In A: the exchange audience as an application's identifier URI, and the workload.
    const graph = { authorization: `Bearer ${await a.adminToken(a.info.authority)}` };
    const audApp = await a.request('POST', '/v1.0/applications', {
      headers: graph,
      json: { displayName: 'token-exchange', identifierUris: [EXCHANGE_AUD] },
    });
    assert.equal(audApp.status, 201, audApp.text);
    const sp = await a.services.principals.createServicePrincipal(a.info.tenantId, {
      displayName: 'workload',
    });
    const secret = await a.services.credentials.addSecret(a.info.tenantId, sp.id);
    const tokenOfA = async () => {
      const r = await a.request('POST', `/${a.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: sp.appId!,
          client_secret: secret.secretText,
          scope: `${EXCHANGE_AUD}/.default`,
        },
      });
      assert.equal(r.status, 200, r.text);
      return r.json.access_token as string;
    };
    const claims = decodeJwt(await tokenOfA());
    assert.equal(claims.iss, issuerA);
    assert.equal(claims.aud, EXCHANGE_AUD);
    assert.equal(claims.sub, sp.id);

    // In B: an identity trusting A's issuer for that workload, with a role on a vault.
    const id = (await putIdentity(b, 'from-a')).properties;
    const fic = await arm(b, 'PUT', `${uaiId(b, 'from-a')}/federatedIdentityCredentials/installation-a`, {
      properties: { issuer: issuerA, subject: sp.id, audiences: [EXCHANGE_AUD] },
    });
    assert.equal(fic.status, 201, fic.text);
    const vault = await putVault(b, 'crossvault');
    await grant(b, id.principalId, 'Key Vault Secrets Officer', vault.id);

    const cred = new ClientAssertionCredential(b.info.tenantId, id.clientId, tokenOfA, credentialOptions(b));
    const kv = new SecretClient(b.vaultUrl('crossvault'), cred, { agent: b.agent });
    await kv.setSecret('crossed', 'from installation A');
    assert.equal((await kv.getSecret('crossed')).value, 'from installation A');

    // Another principal of A (same issuer, other subject) is refused.
    const other = await a.services.principals.createServicePrincipal(a.info.tenantId, {
      displayName: 'other',
    });
    const otherSecret = await a.services.credentials.addSecret(a.info.tenantId, other.id);
    const otherToken = await a.request('POST', `/${a.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: other.appId!,
        client_secret: otherSecret.secretText,
        scope: `${EXCHANGE_AUD}/.default`,
      },
    });
    const refused = await b.request('POST', `/${b.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: id.clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: otherToken.json.access_token,
        scope: `${b.info.vaultResource}/.default`,
      },
    });
    assert.equal(refused.status, 401, refused.text);
    assert.deepEqual(refused.json.error_codes, [700213]);

    // Python: Debian's azure-identity (1.13 has ClientAssertionCredential, not yet
    // WorkloadIdentityCredential) exchanges the same token at B.
    // Asynchronously: B answers from this process.
    const py = await promisify(execFile)(
      PYTHON,
      [
        '-c',
        [
          'import os',
          'from azure.identity import ClientAssertionCredential',
          // No keyword arguments: 1.13 passes them on to object.__init__ and fails; the authority
          // comes from AZURE_AUTHORITY_HOST.
          'c = ClientAssertionCredential(os.environ["T"], os.environ["C"], lambda: os.environ["FED"])',
          'print(c.get_token(os.environ["SCOPE"]).token)',
        ].join('\n'),
      ],
      {
        timeout: 60_000,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          REQUESTS_CA_BUNDLE: b.info.caCertPath,
          SSL_CERT_FILE: b.info.caCertPath,
          T: b.info.tenantId,
          C: id.clientId,
          FED: await tokenOfA(),
          AZURE_AUTHORITY_HOST: b.info.authority,
          SCOPE: `${b.info.vaultResource}/.default`,
        },
      },
    );
    const pyClaims = decodeJwt(py.stdout.trim());
    assert.equal(pyClaims.appid, id.clientId, 'Python got the identity of B');
    assert.equal(pyClaims.iss, `${b.info.authority}/${b.info.tenantId}/v2.0`);
  });
});
