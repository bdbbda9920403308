// Token issuance over HTTPS (client secret; client assertion) against raw ES256
// signing in this process: how close the token endpoint gets to the cost of the
// signature itself.
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import {
  type AssertionAlg,
  assertionBodies,
  assertionCertificate,
  b64u,
  presignedAssertionBodies,
} from '../client-assertions.js';
import {
  type BenchContext,
  cpuRow,
  type LoadResult,
  load,
  opsPerSecond,
  row,
  type Scenario,
} from '../lib.js';

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
  description:
    'token issuance over HTTPS (client secret, PS256 and ES256 client assertions) vs raw ES256 signing',
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

    // Every load run posts a form to the token endpoint: with this fixed body, or a body per request.
    const tokenPost = {
      url: `https://${s.hostPort}${tokenPath}`,
      host,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      serverPids: [s.pid],
    };
    const secretSpec = { ...tokenPost, body: secretBody };
    // Client assertions (RFC 7523): a fresh jti per request; the server verifies the signature
    // and records the jti against replay. PS256 over RSA-2048 as the official clients sign them
    // (bench/client-assertions.ts), signed ahead in one process per core: enough for the warm-up
    // and the run at twice the client_secret rate of a one-second probe (a cold server's, so low:
    // at least 2,500 a second). ES256 over P-256
    // beside it, signed per request in the load generator (cheap enough to keep up). Everything
    // is prepared first, so that the three load runs follow one another with no pause between
    // them: a server that idled (here, ~15 s of signing) runs its next window slower.
    const probeRun = await load(secretSpec, { ...ctx.options, warmupS: 0, durationS: 1 });
    const perSecond = Math.max(2_500, 2 * probeRun.rps);
    const runs: { metric: string; nextBody: () => string; shortfall: () => number }[] = [];
    for (const alg of ['PS256', 'ES256'] as const satisfies readonly AssertionAlg[]) {
      const cert = await assertionCertificate(`bench-tokens-assertion-${alg}`, alg);
      const certApp = await s.createServicePrincipal(`bench-tokens-assertion-${alg}`, cert.pem);
      const check = await s.request('POST', tokenPath, {
        form: Object.fromEntries(
          new URLSearchParams(assertionBodies(cert, certApp.appId, tokenUrl, scope)()),
        ),
      });
      if (check.status !== 200)
        throw new Error(`${alg} assertion token request failed: HTTP ${check.status} ${check.text}`);
      const metric = `client_assertion ${alg}`;
      if (alg === 'ES256') {
        runs.push({
          metric,
          nextBody: assertionBodies(cert, certApp.appId, tokenUrl, scope),
          shortfall: () => 0,
        });
        continue;
      }
      const count =
        Math.ceil(perSecond * (ctx.options.warmupS + ctx.options.durationS)) + 2 * ctx.options.connections;
      ctx.log(`  signing ${count} PS256 client assertions ahead …`);
      runs.push({ metric, ...(await presignedAssertionBodies(cert, certApp.appId, tokenUrl, scope, count)) });
    }

    ctx.log(`  client_secret over HTTPS (${ctx.options.connections} connections) …`);
    const secret = await load(secretSpec, ctx.options);
    recordLoad(ctx, 'client_secret', secret, cryptoRate, '>= 2000');
    for (const { metric, nextBody, shortfall } of runs) {
      ctx.log(`  ${metric} over HTTPS (${ctx.options.connections} connections) …`);
      const assertion = await load({ ...tokenPost, nextBody }, ctx.options);
      recordLoad(ctx, metric, assertion, cryptoRate);
      if (shortfall() > 0) {
        ctx.record(
          row({
            scenario: 'tokens',
            metric: `${metric} assertions signed during the run`,
            value: shortfall(),
            unit: 'requests',
          }),
        );
        ctx.log(
          `  WARNING: ${metric}: ${shortfall()} assertions were signed during the run (the load generator limited it)`,
        );
      }
    }
  },
};

export default scenario;
