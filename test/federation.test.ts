import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClientAssertionCredential, WorkloadIdentityCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { createFederation } from '../src/authority/federation.js';
import { createTenantIssuers } from '../src/authority/tenant-issuers.js';
import { fakeClock } from '../src/lib/clock.js';
import { createChangeBus } from '../src/lib/events.js';
import { federatedCredentialStore } from '../src/storage/management/federated-credential-store.js';
import { type ChangeRelay, startChangeRelay } from '../src/storage/notify.js';
import { openDatabase } from '../src/storage/open.js';
import { credentialOptions } from './helpers/authority.js';
import { arm, putIdentity, uaiId } from './helpers/identity.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { issueServerCert, makeTestCa } from './helpers/tls-ca.js';
import { grant, putVault } from './helpers/vault.js';

/**
 * Workload identity federation (docs/federation.md), black-box where it can be: a local OIDC
 * issuer on https loopback (its own CA) stands in for GitHub Actions and Kubernetes, the official
 * `@azure/identity` credentials exchange its tokens, and the attacks are refused with AADSTS codes.
 */

const EXCHANGE_AUD = 'api://AzureADTokenExchange';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const GH_SUB = 'repo:org/repo:ref:refs/heads/main';
const K8S_SUB = 'system:serviceaccount:ns:name';

type Key = Awaited<ReturnType<typeof generateKeyPair>>;
interface FakeIssuer {
  name: string;
  url: string;
  alg: 'RS256' | 'ES256';
  kid: string;
  key: Key;
  jwk: JWK;
  hits: number;
  /**
   * How discovery answers: normally, a huge body, slowly, a redirect, a `jwks_uri` on another
   * origin (which would serve valid keys), another issuer's name, or a JWKS of too many keys.
   */
  mode: 'ok' | 'huge' | 'slow' | 'redirect' | 'foreign-jwks' | 'lying' | 'many-keys';
}

const clock = fakeClock();
let s: TestServer;
let server: https.Server;
const issuers = new Map<string, FakeIssuer>();
const dir = mkdtempSync(join(tmpdir(), 'latchkey-fed-'));
/** The fake issuers' CA (their https certificate chains to it). */
let issuerCaPem = '';

async function makeIssuer(
  base: string,
  name: string,
  alg: 'RS256' | 'ES256',
  mode: FakeIssuer['mode'] = 'ok',
) {
  const key = await generateKeyPair(alg, { extractable: true });
  const kid = `${name}-1`;
  const jwk = { ...(await exportJWK(key.publicKey)), kid, alg, use: 'sig' };
  const i: FakeIssuer = { name, url: `${base}/${name}`, alg, kid, key, jwk, hits: 0, mode };
  issuers.set(name, i);
  return i;
}

/** A token of `i` (claims as the real issuer's, overridable), signed with its key unless told otherwise. */
async function tokenOf(
  i: FakeIssuer,
  o: {
    sub?: string;
    aud?: string;
    iss?: string;
    expIn?: number;
    nbfIn?: number;
    kid?: string;
    key?: Key;
  } = {},
) {
  const now = Math.floor(clock.now() / 1000);
  const claims =
    i.name === 'k8s'
      ? { 'kubernetes.io': { namespace: 'ns', serviceaccount: { name: 'name', uid: randomUUID() } } }
      : {
          repository: 'org/repo',
          ref: 'refs/heads/main',
          job_workflow_ref: 'org/repo/.github/workflows/ci.yml@refs/heads/main',
        };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: i.alg, kid: o.kid ?? i.kid, typ: 'JWT' })
    .setIssuer(o.iss ?? i.url)
    .setSubject(o.sub ?? (i.name === 'k8s' ? K8S_SUB : GH_SUB))
    .setAudience(o.aud ?? EXCHANGE_AUD)
    .setIssuedAt(now)
    .setNotBefore(now + (o.nbfIn ?? 0))
    .setExpirationTime(now + (o.expIn ?? 600))
    .setJti(randomUUID())
    .sign((o.key ?? i.key).privateKey);
}

/** An identity with one federated credential (issuer, subject, audience), via ARM as the admin. */
async function identityTrusting(name: string, issuer: string, subject: string, audience = EXCHANGE_AUD) {
  const id = await putIdentity(s, name);
  const r = await arm(s, 'PUT', `${uaiId(s, name)}/federatedIdentityCredentials/trust`, {
    properties: { issuer, subject, audiences: [audience] },
  });
  assert.equal(r.status, 201, r.text);
  return id.properties;
}

async function exchange(clientId: string, assertion: string) {
  return s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'client_credentials',
      client_id: clientId,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: assertion,
      scope: `${s.info.vaultResource}/.default`,
    },
  });
}

/** Asserts a refusal with the AADSTS code (and no token). */
function refused(
  r: { status: number; json: { error_codes?: number[]; access_token?: string } },
  code: number,
) {
  assert.equal(r.json?.access_token, undefined, 'no token for a refused exchange');
  assert.ok(r.status === 400 || r.status === 401, `status ${r.status}`);
  assert.deepEqual(r.json.error_codes, [code], JSON.stringify(r.json));
}

before(async () => {
  const ca = await makeTestCa();
  issuerCaPem = ca.certPem;
  const tls = await issueServerCert(ca, ['localhost']);
  server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const [, name, ...rest] = (req.url ?? '').split('/');
    const i = issuers.get(name ?? '');
    if (!i) return void res.writeHead(404).end();
    i.hits++;
    const path = `/${rest.join('/')}`;
    if (path === '/.well-known/openid-configuration') {
      if (i.mode === 'huge') {
        // 4 MiB of valid JSON, streamed without a length: the reader must stop by itself.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"issuer":"${i.url}","jwks_uri":"${i.url}/jwks","pad":"`);
        for (let n = 0; n < 64; n++) res.write('x'.repeat(65_536));
        return void res.end('"}');
      }
      if (i.mode === 'slow') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"issuer":');
        const t = setInterval(() => res.write(' '), 100);
        res.on('close', () => clearInterval(t));
        return;
      }
      if (i.mode === 'redirect')
        return void res
          .writeHead(302, { location: `${issuers.get('gh')!.url}/.well-known/openid-configuration` })
          .end();
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          issuer: i.mode === 'lying' ? issuers.get('gh')!.url : i.url,
          // localhost is another origin than 127.0.0.1 (the certificate covers both names).
          jwks_uri:
            i.mode === 'foreign-jwks' ? `${i.url.replace('127.0.0.1', 'localhost')}/jwks` : `${i.url}/jwks`,
          id_token_signing_alg_values_supported: [i.alg],
        }),
      );
    }
    if (path === '/jwks') {
      const filler =
        i.mode === 'many-keys' ? Array.from({ length: 100 }, (_, n) => ({ ...i.jwk, kid: `f${n}` })) : [];
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: [...filler, i.jwk] }));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await makeIssuer(base, 'gh', 'RS256');
  await makeIssuer(base, 'k8s', 'ES256');
  await makeIssuer(base, 'flood', 'RS256');
  await makeIssuer(base, 'huge', 'RS256', 'huge');
  await makeIssuer(base, 'slow', 'RS256', 'slow');
  await makeIssuer(base, 'redirect', 'RS256', 'redirect');
  await makeIssuer(base, 'denied', 'RS256');
  await makeIssuer(base, 'foreign-jwks', 'RS256', 'foreign-jwks');
  await makeIssuer(base, 'lying', 'RS256', 'lying');
  await makeIssuer(base, 'many-keys', 'RS256', 'many-keys');
  await makeIssuer(base, 'metered', 'RS256');
  await makeIssuer(base, 'stepped', 'RS256');
  s = await startTestServer({
    clock,
    limits: { authFailureLimit: 10_000, authFailureSlowAfter: 10_000 },
    federation: {
      allowedIssuers: [
        'gh',
        'k8s',
        'flood',
        'huge',
        'slow',
        'redirect',
        'foreign-jwks',
        'lying',
        'many-keys',
        'metered',
        'stepped',
      ].map((n) => issuers.get(n)!.url),
      caPem: ca.certPem,
      fetchTimeoutMs: 1000,
    },
  });
});

after(async () => {
  await s?.stop();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('federated identity credentials (ARM)', () => {
  test('PUT/GET/LIST/DELETE in Azure shape; validation; at most 20; allow-list at creation', async () => {
    const gh = issuers.get('gh')!.url;
    await putIdentity(s, 'fic-arm');
    const base = `${uaiId(s, 'fic-arm')}/federatedIdentityCredentials`;
    const put = await arm(s, 'PUT', `${base}/github-main`, {
      properties: { issuer: gh, subject: GH_SUB, audiences: [EXCHANGE_AUD], description: 'CI on main' },
    });
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(put.json, {
      id: `${uaiId(s, 'fic-arm')}/federatedIdentityCredentials/github-main`,
      name: 'github-main',
      type: 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials',
      properties: { issuer: gh, subject: GH_SUB, audiences: [EXCHANGE_AUD], description: 'CI on main' },
    });
    const again = await arm(s, 'PUT', `${base}/github-main`, {
      properties: { issuer: gh, subject: `${GH_SUB}x`, audiences: [EXCHANGE_AUD] },
    });
    assert.equal(again.status, 200);
    assert.equal((await arm(s, 'GET', `${base}/GITHUB-MAIN`)).json.properties.subject, `${GH_SUB}x`);
    assert.deepEqual(
      (await arm(s, 'GET', base)).json.value.map((v: { name: string }) => v.name),
      ['github-main'],
    );
    const bad = async (name: string, properties: Record<string, unknown>) => {
      const r = await arm(s, 'PUT', `${base}/${name}`, { properties });
      assert.equal(r.status, 400, `${name}: ${r.text}`);
      return r.json.error.message as string;
    };
    const ok = { issuer: gh, subject: 'repo:org/repo:environment:prod', audiences: [EXCHANGE_AUD] };
    assert.match(await bad('plain-http', { ...ok, issuer: gh.replace('https:', 'http:') }), /https URL/);
    assert.match(
      await bad('two-aud', { ...ok, audiences: [EXCHANGE_AUD, 'api://other'] }),
      /Exactly one audience/,
    );
    assert.match(await bad('no-aud', { ...ok, audiences: [] }), /Exactly one audience/);
    assert.match(await bad('no-sub', { ...ok, subject: '' }), /subject/);
    assert.match(await bad('x', ok), /name/);
    assert.match(await bad('-dash', ok), /name/);
    assert.match(
      await bad('not-allowed', { ...ok, issuer: 'https://token.actions.githubusercontent.com' }),
      /not on this server's list of allowed federation issuers/,
    );
    assert.match(
      await bad('same-pair', { ...ok, subject: `${GH_SUB}x` }),
      /already has this issuer and subject/,
    );
    for (let n = 1; n < 20; n++) {
      const r = await arm(s, 'PUT', `${base}/env-${n}`, { properties: { ...ok, subject: `env:${n}` } });
      assert.equal(r.status, 201, r.text);
    }
    assert.match(await bad('env-20', { ...ok, subject: 'env:20' }), /at most 20/);
    assert.equal((await arm(s, 'DELETE', `${base}/env-1`)).status, 200);
    assert.equal((await arm(s, 'DELETE', `${base}/env-1`)).status, 204);
    assert.equal((await arm(s, 'GET', `${base}/env-1`)).status, 404);
    assert.equal(
      (await arm(s, 'GET', `${uaiId(s, 'nope-identity')}/federatedIdentityCredentials`)).status,
      404,
    );
  });

  test('writing needs write on the identity (Managed Identity Contributor); an Operator only reads', async () => {
    const gh = issuers.get('gh')!.url;
    await putIdentity(s, 'fic-rbac');
    const base = `${uaiId(s, 'fic-rbac')}/federatedIdentityCredentials`;
    const sp = await s.services.principals.createServicePrincipal(s.info.tenantId, { displayName: 'fic-op' });
    const secret = await s.services.credentials.addSecret(s.info.tenantId, sp.id);
    await grant(s, sp.id, 'Managed Identity Operator', uaiId(s, 'fic-rbac'));
    const tok = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: sp.appId!,
        client_secret: secret.secretText,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    assert.equal(tok.status, 200, tok.text);
    const t = tok.json.access_token as string;
    const body = { properties: { issuer: gh, subject: GH_SUB, audiences: [EXCHANGE_AUD] } };
    const denied = await arm(s, 'PUT', `${base}/ci-main`, body, t);
    assert.equal(denied.status, 403, denied.text);
    assert.equal((await arm(s, 'GET', base, undefined, t)).status, 200);
    await grant(s, sp.id, 'Managed Identity Contributor', uaiId(s, 'fic-rbac'));
    assert.equal((await arm(s, 'PUT', `${base}/ci-main`, body, t)).status, 201);
    assert.equal((await arm(s, 'DELETE', `${base}/ci-main`, undefined, t)).status, 200);
  });
});

describe('federated identity credentials on applications (Graph)', () => {
  const graph = async (method: string, path: string, json?: unknown) =>
    s.request(method, path, {
      headers: { authorization: `Bearer ${await s.adminToken(s.info.authority)}` },
      ...(json !== undefined ? { json } : {}),
    });
  const newApp = async (displayName: string) => {
    const r = await graph('POST', '/v1.0/applications', { displayName });
    assert.equal(r.status, 201, r.text);
    return r.json as { id: string; appId: string };
  };

  test('list/create/get/patch/delete in Graph shape; validation; at most 20; allow-list', async () => {
    const gh = issuers.get('gh')!.url;
    const app = await newApp('fic-graph');
    const base = `/v1.0/applications/${app.id}/federatedIdentityCredentials`;
    const created = await graph('POST', base, {
      name: 'github-main',
      issuer: gh,
      subject: GH_SUB,
      audiences: [EXCHANGE_AUD],
      description: 'CI on main',
    });
    assert.equal(created.status, 201, created.text);
    const { '@odata.context': _ctx, ...fic } = created.json;
    assert.match(fic.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(fic, {
      id: fic.id,
      name: 'github-main',
      issuer: gh,
      subject: GH_SUB,
      description: 'CI on main',
      audiences: [EXCHANGE_AUD],
    });
    assert.deepEqual((await graph('GET', `${base}/${fic.id}`)).json.name, 'github-main');
    assert.deepEqual((await graph('GET', `${base}/GitHub-Main`)).json.id, fic.id, 'by name too (as az)');
    const listed = await graph('GET', base);
    assert.deepEqual(
      listed.json.value.map((v: { id: string }) => v.id),
      [fic.id],
    );
    const patched = await graph('PATCH', `${base}/${fic.id}`, { subject: `${GH_SUB}x`, description: null });
    assert.equal(patched.status, 204, patched.text);
    const after = (await graph('GET', `${base}/${fic.id}`)).json;
    assert.equal(after.subject, `${GH_SUB}x`);
    assert.equal(after.description, null);
    assert.equal((await graph('PATCH', `${base}/${fic.id}`, { name: 'renamed' })).status, 400);
    const bad = async (body: Record<string, unknown>) => {
      const r = await graph('POST', base, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      return r.json.error.message as string;
    };
    const ok = { issuer: gh, subject: 'repo:org/repo:environment:prod', audiences: [EXCHANGE_AUD] };
    assert.match(await bad({ ...ok, name: 'github-main' }), /already exists/);
    assert.match(await bad({ ...ok, name: 'two-aud', audiences: [EXCHANGE_AUD, 'api://x'] }), /Exactly one/);
    assert.match(
      await bad({ ...ok, name: 'not-allowed', issuer: 'https://token.actions.githubusercontent.com' }),
      /not on this server's list of allowed federation issuers/,
    );
    assert.match(await bad({ ...ok, name: 'same-pair', subject: `${GH_SUB}x` }), /already has this issuer/);
    assert.match(await bad({ ...ok, name: 'x' }), /name/);
    assert.match(await bad({ ...ok, name: 'extra', homepage: 'https://x' }), /homepage|Unrecognized/);
    for (let n = 1; n < 20; n++) {
      const r = await graph('POST', base, { ...ok, name: `env-${n}`, subject: `env:${n}` });
      assert.equal(r.status, 201, r.text);
    }
    assert.match(await bad({ ...ok, name: 'env-20', subject: 'env:20' }), /at most 20/);
    assert.equal((await graph('DELETE', `${base}/env-1`)).status, 204);
    assert.equal((await graph('DELETE', `${base}/env-1`)).status, 404);
    assert.equal((await graph('GET', `${base}/env-1`)).status, 404);
    assert.equal(
      (await graph('GET', `/v1.0/applications/${randomUUID()}/federatedIdentityCredentials`)).status,
      404,
    );
  });

  test("an application may read its own credentials but not write them (the directory's credentials action)", async () => {
    const sp = await s.services.principals.createServicePrincipal(s.info.tenantId, {
      displayName: 'fic-self',
    });
    const secret = await s.services.credentials.addSecret(s.info.tenantId, sp.id);
    const tok = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: sp.appId!,
        client_secret: secret.secretText,
        scope: `${s.info.authority}/.default`,
      },
    });
    assert.equal(tok.status, 200, tok.text);
    const self = { authorization: `Bearer ${tok.json.access_token}` };
    const base = `/v1.0/applications/${sp.id}/federatedIdentityCredentials`;
    const body = {
      name: 'self-trust',
      issuer: issuers.get('gh')!.url,
      subject: GH_SUB,
      audiences: [EXCHANGE_AUD],
    };
    const denied = await s.request('POST', base, { headers: self, json: body });
    assert.equal(denied.status, 403, denied.text);
    assert.equal((await graph('POST', base, body)).status, 201, 'the admin may');
    const listed = await s.request('GET', base, { headers: self });
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.json.value.length, 1, 'it reads its own');
    const del = await s.request('DELETE', `${base}/self-trust`, { headers: self });
    assert.equal(del.status, 403, del.text);
    const patch = await s.request('PATCH', `${base}/self-trust`, { headers: self, json: { subject: 'x' } });
    assert.equal(patch.status, 403, patch.text);
  });

  test('an application exchanges its trusted token (ClientAssertionCredential); deleting the credential refuses the next exchange', async () => {
    const app = await newApp('fic-exchange');
    const base = `/v1.0/applications/${app.id}/federatedIdentityCredentials`;
    const created = await graph('POST', base, {
      name: 'github',
      issuer: issuers.get('gh')!.url,
      subject: GH_SUB,
      audiences: [EXCHANGE_AUD],
    });
    assert.equal(created.status, 201, created.text);
    const vault = await putVault(s, 'fedappvault');
    await grant(s, app.id, 'Key Vault Secrets Officer', vault.id);
    const cred = new ClientAssertionCredential(
      s.info.tenantId,
      app.appId,
      () => tokenOf(issuers.get('gh')!),
      credentialOptions(s),
    );
    const kv = new SecretClient(s.vaultUrl('fedappvault'), cred, { agent: s.agent });
    await kv.setSecret('from-ci', 'no secret stored');
    assert.equal((await kv.getSecret('from-ci')).value, 'no secret stored');
    const at = await cred.getToken(`${s.info.vaultResource}/.default`);
    const claims = JSON.parse(Buffer.from(at.token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    assert.equal(claims.appid, app.appId);
    assert.equal(claims.oid, app.id);
    // Another application does not get this one's trust.
    const other = await newApp('fic-other');
    refused(await exchange(other.appId, await tokenOf(issuers.get('gh')!)), 700211);
    const foreignPath = `/v1.0/applications/${other.id}/federatedIdentityCredentials/${created.json.id}`;
    assert.equal((await graph('GET', foreignPath)).status, 404, "not through another application's path");
    assert.equal((await graph('DELETE', foreignPath)).status, 404);

    assert.equal((await exchange(app.appId, await tokenOf(issuers.get('gh')!))).status, 200);
    assert.equal((await graph('DELETE', `${base}/${created.json.id}`)).status, 204);
    refused(await exchange(app.appId, await tokenOf(issuers.get('gh')!)), 700211);
  });
});

describe('exchange with the official clients', () => {
  test('WorkloadIdentityCredential (Kubernetes token file) and ClientAssertionCredential (GitHub Actions) reach the vault', async () => {
    const k8s = await identityTrusting('fed-k8s', issuers.get('k8s')!.url, K8S_SUB);
    const ghId = await identityTrusting('fed-gh', issuers.get('gh')!.url, GH_SUB);
    const vault = await putVault(s, 'fedvault');
    await grant(s, k8s.principalId, 'Key Vault Secrets Officer', vault.id);
    await grant(s, ghId.principalId, 'Key Vault Secrets User', vault.id);

    const tokenFile = join(dir, 'sa-token');
    writeFileSync(tokenFile, await tokenOf(issuers.get('k8s')!));
    const wi = new WorkloadIdentityCredential(
      credentialOptions(s, { tenantId: s.info.tenantId, clientId: k8s.clientId, tokenFilePath: tokenFile }),
    );
    const kv = new SecretClient(s.vaultUrl('fedvault'), wi, { agent: s.agent });
    await kv.setSecret('from-k8s', 'hello from a pod');

    const ca = new ClientAssertionCredential(
      s.info.tenantId,
      ghId.clientId,
      () => tokenOf(issuers.get('gh')!),
      credentialOptions(s),
    );
    const read = new SecretClient(s.vaultUrl('fedvault'), ca, { agent: s.agent });
    assert.equal((await read.getSecret('from-k8s')).value, 'hello from a pod');
    const at = await ca.getToken(`${s.info.vaultResource}/.default`);
    const claims = JSON.parse(Buffer.from(at.token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    assert.equal(claims.oid, ghId.principalId);
    assert.equal(claims.appid, ghId.clientId);

    await s.services.audit.drain();
    const events = await s.services.audit.list({
      tenantId: s.info.tenantId,
      operation: 'FederatedTokenExchange',
    });
    const subjects = events.filter((e) => e.status === 200).map((e) => e.details?.subject);
    assert.ok(subjects.includes(K8S_SUB) && subjects.includes(GH_SUB), JSON.stringify(subjects));
  });
});

describe('exchange attacks', () => {
  let clientId: string;
  before(async () => {
    clientId = (await identityTrusting('fed-attack', issuers.get('gh')!.url, GH_SUB)).clientId;
  });
  const gh = () => issuers.get('gh')!;

  test('a valid token is exchanged (the baseline the attacks vary)', async () => {
    const r = await exchange(clientId, await tokenOf(gh()));
    assert.equal(r.status, 200, r.text);
  });

  test('wrong issuer: a validly signed token of another allowed issuer, same subject', async () => {
    refused(await exchange(clientId, await tokenOf(issuers.get('k8s')!, { sub: GH_SUB })), 700211);
  });

  test('wrong subject (another repository or branch)', async () => {
    refused(
      await exchange(clientId, await tokenOf(gh(), { sub: 'repo:org/repo:ref:refs/heads/evil' })),
      700213,
    );
    refused(
      await exchange(clientId, await tokenOf(gh(), { sub: 'repo:evil/repo:ref:refs/heads/main' })),
      700213,
    );
  });

  test('wrong audience', async () => {
    refused(await exchange(clientId, await tokenOf(gh(), { aud: 'api://SomethingElse' })), 700212);
  });

  test('expired, or not yet valid beyond the skew', async () => {
    refused(await exchange(clientId, await tokenOf(gh(), { expIn: -120 })), 700024);
    refused(await exchange(clientId, await tokenOf(gh(), { nbfIn: 600 })), 700024);
  });

  test("alg 'none' and HS256 signed with the issuer's public key are refused", async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(clock.now() / 1000);
    const payload = { iss: gh().url, sub: GH_SUB, aud: EXCHANGE_AUD, iat: now, exp: now + 600 };
    refused(await exchange(clientId, `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`), 700027);
    const pem = await exportSPKI(gh().key.publicKey);
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(gh().jwk))]) {
      const hs = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: gh().kid }).sign(secret);
      refused(await exchange(clientId, hs), 700027);
    }
  });

  test('a token signed by another key with the right kid fails the signature', async () => {
    const other = await generateKeyPair('RS256');
    refused(await exchange(clientId, await tokenOf(gh(), { key: other })), 700027);
  });

  test('an unknown-kid flood refreshes the issuer keys at most once a minute', async () => {
    const flood = issuers.get('flood')!;
    const { clientId: id } = await identityTrusting('fed-flood', flood.url, GH_SUB);
    assert.equal((await exchange(id, await tokenOf(flood))).status, 200);
    const primed = flood.hits;
    assert.equal(primed, 2, 'discovery and JWKS once');
    const other = await generateKeyPair('RS256');
    for (let n = 0; n < 20; n++)
      refused(await exchange(id, await tokenOf(flood, { key: other, kid: `made-up-${n}` })), 700027);
    assert.equal(flood.hits, primed, 'no fetch within the minute');
    clock.advance(61_000);
    for (let n = 0; n < 20; n++)
      refused(await exchange(id, await tokenOf(flood, { key: other, kid: `later-${n}` })), 700027);
    assert.equal(flood.hits, primed + 2, 'one refresh (discovery and JWKS) after the minute');
    assert.equal((await exchange(id, await tokenOf(flood))).status, 200, 'the real key still works');
  });

  test("the issuer's keys age on the monotonic clock: a wall-clock step back does not keep them past the hour", async () => {
    const stepped = issuers.get('stepped')!;
    const { clientId: id } = await identityTrusting('fed-stepped', stepped.url, GH_SUB);
    assert.equal((await exchange(id, await tokenOf(stepped))).status, 200);
    const primed = stepped.hits;
    clock.set(clock.now() - 3_600_000); // the wall clock steps back an hour
    clock.advance(3_600_001); // and an hour passes: the wall clock is where it was
    assert.equal((await exchange(id, await tokenOf(stepped))).status, 200);
    assert.equal(
      stepped.hits,
      primed + 2,
      'fetched again (discovery and JWKS) after an hour of monotonic time',
    );
  });

  test('an issuer no longer on the allow-list is refused at exchange without any fetch', async () => {
    const denied = issuers.get('denied')!;
    const id = await putIdentity(s, 'fed-denied');
    const u = (await s.services.userIdentities.find(
      s.info.tenantId,
      s.info.subscriptionId,
      'default',
      'fed-denied',
    ))!;
    // Stored directly: the ARM API refuses it (as if it was allowed once and the operator removed it since).
    await federatedCredentialStore.insert(s.services.db, {
      rowId: randomUUID(),
      tenantId: s.info.tenantId,
      identityId: u.rowId,
      principalId: u.principalId,
      name: 'old',
      issuer: denied.url,
      subject: GH_SUB,
      audiences: [EXCHANGE_AUD],
      description: '',
      createdAt: clock.now(),
    });
    const r = await exchange(id.properties.clientId, await tokenOf(denied));
    refused(r, 700211);
    assert.match(r.json.error_description, /not on this server's list of allowed federation issuers/);
    assert.equal(denied.hits, 0, 'no request reached the issuer');
  });

  test('an issuer answering a huge body, slowly, or with a redirect: bounded and refused', async () => {
    for (const [name, why] of [
      ['huge', /too large/],
      ['slow', /timed out/],
      ['redirect', /redirects are not followed/],
    ] as const) {
      const i = issuers.get(name)!;
      const { clientId: id } = await identityTrusting(`fed-${name}`, i.url, GH_SUB);
      const started = Date.now();
      // Bounded by the test too, so an unbounded fetch fails here instead of hanging the run.
      const r = await Promise.race([
        exchange(id, await tokenOf(i)),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`${name}: no answer within 5 s`)), 5000).unref(),
        ),
      ]);
      refused(r, 50166);
      assert.match(r.json.error_description, why);
      assert.ok(Date.now() - started < 3000, `${name} took ${Date.now() - started} ms`);
    }
    assert.equal(issuers.get('gh')!.hits <= 2, true, 'the redirect was not followed to another issuer');
  });

  test("discovery naming another issuer, or a jwks_uri off the issuer's origin, is refused before any key is used", async () => {
    // Each token is signed with a key its discovery would lead to, so only the checks refuse it.
    const foreign = issuers.get('foreign-jwks')!;
    foreign.key = gh().key;
    foreign.kid = gh().kid;
    const lying = issuers.get('lying')!;
    for (const [i, why] of [
      [foreign, /jwks_uri must be https on the issuer's own origin/],
      [lying, /discovery document's issuer does not match/],
    ] as const) {
      const { clientId: id } = await identityTrusting(`fed-${i.name}`, i.url, GH_SUB);
      const r = await exchange(id, await tokenOf(i));
      refused(r, 50166);
      assert.match(r.json.error_description, why);
    }
  });

  test('a JWKS of more than 100 keys is refused', async () => {
    const i = issuers.get('many-keys')!;
    const { clientId: id } = await identityTrusting('fed-many-keys', i.url, GH_SUB);
    const r = await exchange(id, await tokenOf(i));
    refused(r, 50166);
    assert.match(r.json.error_description, /JWKS is not valid/);
  });

  test('a token issued in the future (iat beyond the skew) is refused', async () => {
    const now = Math.floor(clock.now() / 1000);
    const t = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: gh().kid })
      .setIssuer(gh().url)
      .setSubject(GH_SUB)
      .setAudience(EXCHANGE_AUD)
      .setIssuedAt(now + 600)
      .setExpirationTime(now + 1200)
      .sign(gh().key.privateKey);
    refused(await exchange(clientId, t), 700024);
  });

  test('deleting the federated credential refuses the next exchange at once', async () => {
    const { clientId: id } = await identityTrusting('fed-revoke', gh().url, GH_SUB);
    assert.equal((await exchange(id, await tokenOf(gh()))).status, 200);
    assert.equal(
      (await arm(s, 'DELETE', `${uaiId(s, 'fed-revoke')}/federatedIdentityCredentials/trust`)).status,
      200,
    );
    refused(await exchange(id, await tokenOf(gh())), 700211);
  });

  test('issuer fetches are counted in /metrics by document and outcome, with their durations', async () => {
    const scrape = async () => {
      const r = await s.request('GET', '/metrics');
      assert.equal(r.status, 200, r.text.slice(0, 200));
      return r.text;
    };
    const value = (text: string, series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.slice(series.length + 1));
    };
    const fetches = (document: string, outcome: string) =>
      `latchkey_federation_issuer_fetches_total{document="${document}",outcome="${outcome}"}`;
    const durations = (document: string) =>
      `latchkey_federation_issuer_fetch_duration_seconds_count{document="${document}"}`;
    const watched = [
      fetches('discovery', 'ok'),
      fetches('jwks', 'ok'),
      fetches('discovery', 'too_large'),
      durations('discovery'),
      durations('jwks'),
    ];
    const before = await scrape();
    const metered = issuers.get('metered')!;
    const { clientId: id } = await identityTrusting('fed-metered', metered.url, GH_SUB);
    assert.equal((await exchange(id, await tokenOf(metered))).status, 200, 'discovery and JWKS fetched');
    // Past the failure backoff of the earlier huge-answer test: this exchange fetches again.
    clock.advance(10_000);
    const huge = issuers.get('huge')!;
    const { clientId: hugeId } = await identityTrusting('fed-metered-huge', huge.url, GH_SUB);
    refused(await exchange(hugeId, await tokenOf(huge)), 50166);
    const after = await scrape();
    assert.deepEqual(
      watched.map((w) => value(after, w) - value(before, w)),
      [1, 1, 1, 2, 1],
      `deltas of ${watched.join(', ')}`,
    );
    assert.match(after, /^# TYPE latchkey_federation_issuer_fetches_total counter$/m);
  });

  test('every refusal is audited with the presented issuer and subject', async () => {
    // Its own refusal (not another test's), so this test stands alone. Every assertion here
    // carries a message: a failing message-less assert.ok makes Node re-parse the tsx-compiled
    // source to describe it, which takes minutes on this file (the test then hangs, not fails).
    const sub = `repo:org/repo:ref:refs/heads/audited-${randomUUID()}`;
    refused(await exchange(clientId, await tokenOf(gh(), { sub })), 700213);
    await s.services.audit.drain();
    const events = await s.services.audit.list({
      tenantId: s.info.tenantId,
      operation: 'FederatedTokenExchange',
    });
    const refusedEvents = events.filter((e) => e.status !== 200);
    const mine = refusedEvents.find((e) => e.details?.claimedSubject === sub);
    assert.ok(mine, `no refusal audited for ${sub}: ${JSON.stringify(refusedEvents.map((e) => e.details))}`);
    assert.equal(mine.details?.claimedIssuer, gh().url);
    assert.equal(mine.details?.error, 700213);
    const uncoded = refusedEvents.filter((e) => typeof e.details?.error !== 'number');
    assert.deepEqual(uncoded, [], 'every refusal carries its AADSTS code');
  });
});

describe('revocation on two nodes (PostgreSQL)', () => {
  // Node A is a server on a fresh PostgreSQL schema; node B is a second exchange (its own pool,
  // its own issuer-key cache, its own tenant-issuer cache, change bus and relay) on the same schema.
  // A credential deleted through A refuses B's very next exchange: no node may cache credentials
  // (a lookup cache on this path would break this). A tenant's issuer list narrowed on A refuses
  // B's next exchange once B hears the change (its cache holds the list; the bus drops it).
  let a: TestServer;
  let schema: TestSchema;
  let nodeB: ReturnType<typeof createFederation>;
  let dbB: Awaited<ReturnType<typeof openDatabase>>;
  let relayB: ChangeRelay;
  const busB = createChangeBus();
  before(async () => {
    schema = await createTestSchema();
    const allowedIssuers = [issuers.get('gh')!.url, issuers.get('k8s')!.url];
    a = await startTestServer({
      clock,
      identityPort: null,
      storageUrl: schema.url,
      federation: { allowedIssuers, caPem: issuerCaPem, fetchTimeoutMs: 1000 },
    });
    dbB = await openDatabase(schema.url, { applicationName: 'latchkey-test-node-b' });
    relayB = await startChangeRelay({ url: schema.url, db: dbB, bus: busB, nodeId: 'test-node-b' });
    nodeB = createFederation({
      db: dbB,
      clock,
      audit: async () => {},
      settings: { allowedIssuers, caPem: issuerCaPem, fetchTimeoutMs: 1000 },
      issuers: createTenantIssuers({ db: dbB, clock, bus: busB, serverIssuers: allowedIssuers }),
    });
  });
  after(async () => {
    await a?.stop();
    await relayB?.close();
    await dbB?.close();
    await schema?.drop();
  });
  const onB = async (principalId: string, clientId: string) => {
    try {
      await nodeB.exchange({
        tenantId: a.info.tenantId,
        principalId,
        clientId,
        assertion: await tokenOf(issuers.get('gh')!),
        clientIp: '127.0.0.1',
      });
      return 'issued';
    } catch (e) {
      return `refused ${(e as { aadCodes?: number[] }).aadCodes?.[0]}`;
    }
  };

  test("an identity's credential deleted on node A: node B refuses the next exchange", async () => {
    const id = await putIdentity(a, 'fed-2nodes');
    const path = `${uaiId(a, 'fed-2nodes')}/federatedIdentityCredentials/trust`;
    const put = await arm(a, 'PUT', path, {
      properties: { issuer: issuers.get('gh')!.url, subject: GH_SUB, audiences: [EXCHANGE_AUD] },
    });
    assert.equal(put.status, 201, put.text);
    const { principalId, clientId } = id.properties;
    assert.equal(await onB(principalId, clientId), 'issued');
    assert.equal((await arm(a, 'DELETE', path)).status, 200);
    assert.equal(await onB(principalId, clientId), 'refused 700211');
  });

  test("an application's credential deleted on node A (Graph): node B refuses the next exchange", async () => {
    const headers = { authorization: `Bearer ${await a.adminToken(a.info.authority)}` };
    const app = await a.request('POST', '/v1.0/applications', { headers, json: { displayName: 'fed-2n' } });
    assert.equal(app.status, 201, app.text);
    const base = `/v1.0/applications/${app.json.id}/federatedIdentityCredentials`;
    const fic = await a.request('POST', base, {
      headers,
      json: { name: 'trust', issuer: issuers.get('gh')!.url, subject: GH_SUB, audiences: [EXCHANGE_AUD] },
    });
    assert.equal(fic.status, 201, fic.text);
    assert.equal(await onB(app.json.id, app.json.appId), 'issued');
    assert.equal((await a.request('DELETE', `${base}/${fic.json.id}`, { headers })).status, 204);
    assert.equal(await onB(app.json.id, app.json.appId), 'refused 700211');
  });

  test("a tenant's issuer list narrowed on node A: node B refuses the next exchange once it hears", async () => {
    const id = await putIdentity(a, 'fed-2nodes-tenant');
    const put = await arm(a, 'PUT', `${uaiId(a, 'fed-2nodes-tenant')}/federatedIdentityCredentials/trust`, {
      properties: { issuer: issuers.get('gh')!.url, subject: GH_SUB, audiences: [EXCHANGE_AUD] },
    });
    assert.equal(put.status, 201, put.text);
    const { principalId, clientId } = id.properties;
    // B exchanges once: its cache now holds the tenant's list (none set: the server's).
    assert.equal(await onB(principalId, clientId), 'issued');
    // The change reaches B through PostgreSQL NOTIFY; the test waits for that delivery (bounded),
    // never for time to pass: B's cache entry is still fresh on the fake clock.
    const heard = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('node B heard no tenantSettings change within 5 s')), 5000);
      t.unref();
      const off = busB.subscribe('tenantSettings', (tenant) => {
        if (tenant !== a.info.tenantId) return;
        clearTimeout(t);
        off();
        resolve();
      });
    });
    const narrowed = await a.request('PUT', `/api/tenants/${a.info.tenantId}/settings/federation`, {
      headers: { authorization: `Bearer ${await a.adminToken()}` },
      json: { allowedIssuers: [issuers.get('k8s')!.url] },
    });
    assert.equal(narrowed.status, 200, narrowed.text);
    await heard;
    assert.equal(await onB(principalId, clientId), 'refused 700211');
  });
});
