// Token issuance over HTTPS (client secret; client assertion) against raw ES256
// signing in this process: how close the token endpoint gets to the cost of the
// signature itself.
import 'reflect-metadata';
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
  webcrypto,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import {
  type BenchContext,
  cpuRow,
  type LoadResult,
  load,
  opsPerSecond,
  row,
  type Scenario,
} from '../lib.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const b64u = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

/**
 * A client_credentials form body per call, authenticated by a fresh ES256 client assertion (RFC 7523,
 * a new `jti` each) signed with `cert`'s key: what the `tokens` scenario and `bench/profile.ts
 * assertion` send.
 */
export function assertionBodies(
  cert: { key: KeyObject; x5tS256: string },
  appId: string,
  tokenUrl: string,
  scope: string,
): () => string {
  const ah = b64u({ alg: 'ES256', typ: 'JWT', 'x5t#S256': cert.x5tS256 });
  return () => {
    const now = Math.floor(Date.now() / 1000);
    const input = `${ah}.${b64u({ aud: tokenUrl, iss: appId, sub: appId, iat: now, nbf: now, exp: now + 600, jti: randomUUID() })}`;
    const sig = sign('sha256', Buffer.from(input), { key: cert.key, dsaEncoding: 'ieee-p1363' });
    return new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: appId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: `${input}.${sig.toString('base64url')}`,
      scope,
    }).toString();
  };
}

/** A self-signed P-256 certificate to register, and its private key (also bench/profile.ts). */
export async function assertionCertificate(cn: string) {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 7 * 86_400_000),
    signingAlgorithm: alg,
    keys,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    pem: cert.toString('pem'),
    key: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }),
    x5tS256: createHash('sha256').update(Buffer.from(cert.rawData)).digest('base64url'),
  };
}

function recordLoad(ctx: BenchContext, metric: string, r: LoadResult, baseline?: number, target?: string) {
  const scenario = 'tokens';
  ctx.record(
    row({
      scenario,
      metric: `${metric} throughput`,
      value: r.rps,
      unit: 'tokens/s',
      ...(baseline !== undefined ? { baseline } : {}),
      ...(target ? { target } : {}),
    }),
  );
  for (const c of cpuRow(scenario, metric, r)) ctx.record(c);
  ctx.record(row({ scenario, metric: `${metric} latency p50`, value: r.latencyMs.p50, unit: 'ms' }));
  ctx.record(row({ scenario, metric: `${metric} latency p99`, value: r.latencyMs.p99, unit: 'ms' }));
  if (r.non2xx || r.errors) {
    ctx.record(
      row({ scenario, metric: `${metric} failed requests`, value: r.non2xx + r.errors, unit: 'requests' }),
    );
    ctx.log(`  WARNING: ${metric}: ${r.non2xx} non-2xx responses, ${r.errors} connection errors`);
  }
}

const scenario: Scenario = {
  name: 'tokens',
  description: 'token issuance over HTTPS (client secret, client assertion) vs raw ES256 signing',
  async run(ctx) {
    const s = await ctx.server();
    const tokenPath = `/${s.info.tenantId}/oauth2/v2.0/token`;
    const tokenUrl = `${s.info.authority}${tokenPath}`;
    const host = new URL(s.info.authority).host;
    const scope = `${s.info.vaultResource}/.default`;

    // Client secret.
    const app = await s.createServicePrincipal('bench-tokens-secret');
    const secretBody = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: app.appId,
      client_secret: app.secret!,
      scope,
    }).toString();
    const probe = await s.request('POST', tokenPath, {
      form: Object.fromEntries(new URLSearchParams(secretBody)),
    });
    if (probe.status !== 200) throw new Error(`token request failed: HTTP ${probe.status} ${probe.text}`);
    const sample: string = probe.json.access_token;

    // Baseline: sign the same header and claims with ES256 in this process, no HTTP, no database:
    // node:crypto as the server does (src/authority/jws.ts); jose's WebCrypto path for comparison.
    const header = decodeProtectedHeader(sample);
    const claims = decodeJwt(sample);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    ctx.log('  raw ES256 signing (jose, node:crypto) …');
    const joseRate = await opsPerSecond(
      () =>
        new SignJWT({ ...claims, uti: randomUUID() })
          .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: String(header.kid) })
          .sign(privateKey),
      2_000,
    );
    const h = b64u({ alg: 'ES256', typ: 'JWT', kid: header.kid });
    const cryptoRate = await opsPerSecond(() => {
      const input = `${h}.${b64u({ ...claims, uti: randomUUID() })}`;
      return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    }, 2_000);
    ctx.record(row({ scenario: 'tokens', metric: 'raw ES256 sign (jose)', value: joseRate, unit: 'ops/s' }));
    ctx.record(
      row({ scenario: 'tokens', metric: 'raw ES256 sign (node:crypto)', value: cryptoRate, unit: 'ops/s' }),
    );

    ctx.log(`  client_secret over HTTPS (${ctx.options.connections} connections) …`);
    const secret = await load(
      {
        url: `https://${s.hostPort}${tokenPath}`,
        host,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: secretBody,
        serverPids: [s.pid],
      },
      ctx.options,
    );
    recordLoad(ctx, 'client_secret', secret, cryptoRate, '>= 2000');

    // Client assertion (RFC 7523): a fresh jti per request, signed here with ES256 (cheap for the
    // load generator; the server verifies it and records the jti against replay).
    const cert = await assertionCertificate('bench-tokens-assertion');
    const certApp = await s.createServicePrincipal('bench-tokens-assertion', cert.pem);
    const assertionBody = assertionBodies(cert, certApp.appId, tokenUrl, scope);
    const check = await s.request('POST', tokenPath, {
      form: Object.fromEntries(new URLSearchParams(assertionBody())),
    });
    if (check.status !== 200)
      throw new Error(`assertion token request failed: HTTP ${check.status} ${check.text}`);
    ctx.log(`  client_assertion over HTTPS (${ctx.options.connections} connections) …`);
    const assertion = await load(
      {
        url: `https://${s.hostPort}${tokenPath}`,
        host,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        nextBody: assertionBody,
        serverPids: [s.pid],
      },
      ctx.options,
    );
    recordLoad(ctx, 'client_assertion', assertion, cryptoRate);
  },
};

export default scenario;
