import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CertificateClient } from '@azure/keyvault-certificates';
import fc from 'fast-check';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, vaultPrincipal } from './helpers/vault.js';

/** A path segment: valid-looking, numeric, encoded, traversal, long. */
const segment = (valid: string[]) =>
  fc.oneof(
    fc.constantFrom(...valid),
    fc.integer({ min: -5, max: 2_000_000 }).map(String),
    fc.string({ maxLength: 30 }).map(encodeURIComponent),
    fc.constantFrom(
      '%2e%2e',
      '..',
      '0',
      '01',
      '1e3',
      '1.0',
      ' 1',
      '%00',
      'x'.repeat(300),
      '99999999999999999999',
    ),
  );

/**
 * The public PKI routes (`/{tenant}/pki/…`) with random tenants, generations and methods: never a
 * 5xx; a 200 only for a real tenant and generation, with the CA's content types; a member who is
 * not an Owner never rotates, whatever the body.
 */
describe('tenant CA routes fuzzing (fast-check)', () => {
  let s: TestServer;
  let tenant: string;
  let readerToken: string;

  before(async () => {
    s = await startTestServer({ limits: { perAddressRate: 0, perPrincipalRate: 0 } });
    tenant = s.info.tenantId;
    const v = await putVault(s, 'pkifuzz');
    const officer = await vaultPrincipal(s, 'pki-fuzz-officer');
    await grant(s, officer.id, 'Key Vault Certificates Officer', v.id);
    await (
      await new CertificateClient(s.vaultUrl('pkifuzz'), officer.credential, {
        agent: s.agent,
      }).beginCreateCertificate('one', { issuerName: 'Latchkey', subject: 'CN=one' }, { intervalInMs: 10 })
    ).pollUntilDone();
    const reader = await vaultPrincipal(s, 'pki-fuzz-reader');
    await grant(s, reader.id, 'Contributor', '/');
    const r = await s.request('POST', `/${tenant}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: reader.appId,
        client_secret: reader.secret,
        scope: `${s.info.managementResource}/.default`,
      },
    });
    readerToken = r.json.access_token;
  });
  after(async () => {
    await s?.stop();
  });

  test('random paths and methods under /{tenant}/pki: 200 only for what exists, never 5xx', async (t) => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD'),
        segment([tenant, tenant.toUpperCase(), '00000000-0000-0000-0000-000000000000']),
        fc.constantFrom('ca.pem', 'crl', 'crl.pem', 'crl/{g}', 'crl/{g}/x', 'ca', 'crl/'),
        segment(['1', '2']),
        async (method, t0, path, g) => {
          const url = `${s.info.authority}/${t0}/pki/${path.replace('{g}', g)}`;
          const r = await s.request(method, url);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          assert.ok(r.status < 500, `${method} ${url} → ${r.status} ${r.text.slice(0, 200)}`);
          if (r.status === 200) {
            assert.ok(method === 'GET' || method === 'HEAD', `${method} ${url} answered 200`);
            const real = t0.toLowerCase() === tenant;
            assert.ok(real, `200 for another tenant: ${url}`);
            // (`crl/` is `crl` with a trailing slash: the current CA's.)
            const gen = /^crl\/([^/]+)$/.exec(path.replace('{g}', g))?.[1];
            if (gen !== undefined)
              assert.equal(decodeURIComponent(gen), '1', `only generation 1 exists: ${url}`);
            assert.match(String(r.headers['content-type']), /^application\/(x-pem-file|pkix-crl)$/);
          }
        },
      ),
      {
        numRuns: 300,
        // Every real route of the tenant, first, whatever the seed: how many of the random cases
        // land on one varies by seed (7 of 300 with one), so the run's reach is not left to chance.
        examples: (['GET', 'HEAD'] as const).flatMap((m) =>
          ['ca.pem', 'crl', 'crl.pem', 'crl/{g}', 'crl/'].map(
            (p) => [m, tenant, p, '1'] as [string, string, string, string],
          ),
        ),
      },
    );
    t.diagnostic(`statuses: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}`);
    assert.ok((statuses.get(200) ?? 0) >= 10, 'the run reached the routes');
    assert.ok((statuses.get(404) ?? 0) > 50, '(statuses.get(404) ?? 0) > 50');
  });

  test('random bodies to POST /api/pki/ca/rotate by a Contributor: always 403, the CA unchanged', async () => {
    const before = JSON.stringify(await s.services.certificates.ca.generations(tenant));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.string({ maxLength: 60 })), async (body) => {
        const r = await s.request('POST', '/api/pki/ca/rotate', {
          headers: { authorization: `Bearer ${readerToken}`, 'content-type': 'application/json' },
          body,
        });
        assert.ok(r.status === 403 || r.status === 400, `${body} → ${r.status} ${r.text.slice(0, 200)}`);
      }),
      { numRuns: 60 },
    );
    assert.equal(JSON.stringify(await s.services.certificates.ca.generations(tenant)), before);
  });
});
