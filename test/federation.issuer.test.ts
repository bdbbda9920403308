import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ClientAssertionCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { decodeJwt } from 'jose';
import { loadProductionConfig } from '../src/server/production.js';
import { credentialOptions } from './helpers/authority.js';
import { appServiceToken, arm, putApp, putIdentity, session, uaiId } from './helpers/identity.js';
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

describe("a managed identity's token for an exchange audience, from its identity endpoint, exchanged at B", () => {
  const OPERATOR_AUD = 'api://latchkey-b-exchange';
  let a: TestServer;
  let b: TestServer;
  let issuerA: string;
  before(async () => {
    // A serves an identity endpoint and allows one exchange audience besides Azure's; no
    // application registration names either audience.
    a = await startTestServer({ tokenExchangeAudiences: [OPERATOR_AUD] });
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

  test('resource=api://AzureADTokenExchange and an operator audience are issued; others refused; B exchanges it', async () => {
    const app = await putApp(a, 'exchanger', { identity: { type: 'SystemAssigned' } });
    const mi = app.identity.principalId!;
    const sess = await session(a, 'exchanger');

    const got = await appServiceToken(a, sess, EXCHANGE_AUD);
    assert.equal(
      got.status,
      200,
      `exchange audience from the identity endpoint: ${JSON.stringify(got.json)}`,
    );
    const claims = decodeJwt(got.json.access_token as string);
    assert.equal(claims.aud, EXCHANGE_AUD, 'aud is the exchange audience');
    assert.equal(claims.sub, mi, "sub is the managed identity's object id");
    assert.equal(claims.iss, issuerA, "iss is A's issuer");

    const operator = await appServiceToken(a, sess, OPERATOR_AUD);
    assert.equal(operator.status, 200, `operator audience: ${JSON.stringify(operator.json)}`);
    assert.equal(
      decodeJwt(operator.json.access_token as string).aud,
      OPERATOR_AUD,
      'aud is the operator audience',
    );

    const refused = await appServiceToken(a, sess, 'api://not-allowed-here');
    assert.equal(refused.status, 400, `an audience nobody allowed: ${JSON.stringify(refused.json)}`);
    assert.equal(refused.json.access_token, undefined, 'no token for an audience nobody allowed');
    assert.match(
      JSON.stringify(refused.json),
      /not known in tenant.*token-exchange audience the operator allows/,
      'the refusal says which audiences may be asked for',
    );

    // At B: an identity trusting A's issuer for that managed identity exchanges the token.
    const id = (await putIdentity(b, 'from-a-mi')).properties;
    const fic = await arm(b, 'PUT', `${uaiId(b, 'from-a-mi')}/federatedIdentityCredentials/a-endpoint`, {
      properties: { issuer: issuerA, subject: mi, audiences: [EXCHANGE_AUD] },
    });
    assert.equal(fic.status, 201, fic.text);
    const exchange = (assertion: string) =>
      b.request('POST', `/${b.info.tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: id.clientId,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
          scope: `${b.info.vaultResource}/.default`,
        },
      });
    const exchanged = await exchange(got.json.access_token as string);
    assert.equal(exchanged.status, 200, `B exchanged A's managed-identity token: ${exchanged.text}`);
    assert.equal(decodeJwt(exchanged.json.access_token as string).appid, id.clientId, "B's identity");
    // The operator audience is not the credential's: B refuses it (AADSTS700212).
    const wrongAud = await exchange(operator.json.access_token as string);
    assert.equal(wrongAud.status, 401, `another audience: ${wrongAud.text}`);
    assert.deepEqual(wrongAud.json.error_codes, [700212], 'refused for its audience');
  });

  test('an invalid exchange audience in the configuration stops the start', async () => {
    // A server that starts anyway is stopped, so a failure here fails instead of hanging the run.
    const outcome = await startTestServer({
      identityPort: null,
      tokenExchangeAudiences: ['http://plain.example'],
    }).then(
      async (srv) => {
        await srv.stop();
        return 'started';
      },
      (e: Error) => e.message,
    );
    assert.match(outcome, /tokenExchangeAudiences: 'http:\/\/plain\.example'/, 'an http audience is refused');
    const problems = (env: NodeJS.ProcessEnv) => {
      try {
        loadProductionConfig({ host: '0.0.0.0', port: 443 }, env);
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    };
    assert.match(
      problems({ LATCHKEY_TOKEN_EXCHANGE_AUDIENCES: 'api://ok, http://plain.example' }),
      /LATCHKEY_TOKEN_EXCHANGE_AUDIENCES: 'http:\/\/plain\.example' is not an api:\/\/, https:\/\/ or urn: audience/,
      'latchkey server names the bad entry',
    );
    assert.doesNotMatch(
      problems({ LATCHKEY_TOKEN_EXCHANGE_AUDIENCES: 'api://ok,urn:example:exchange,https://sts.example/x' }),
      /TOKEN_EXCHANGE/,
      'good entries pass',
    );
  });
});
