import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appServiceToken, putApp, session } from './helpers/identity.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, vaultPrincipal } from './helpers/vault.js';

/**
 * Certificates that live 8 s and renew 4 s ahead (the old one stays 2 s),
 * and no token cache: every token request signs a fresh assertion, so a
 * request that races a roll would fail if the roll were not seamless.
 */
describe('credential roll under load', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      identityEndpoint: {
        roll: { lifetimeMs: 8_000, renewAheadMs: 4_000, overlapMs: 2_000 },
        tokenCache: { minRemainingMs: 24 * 3_600_000 },
        rateLimit: { perSecond: 100_000, concurrent: 100 },
      },
    });
  });
  after(async () => {
    await s?.stop();
  });

  test('tokens keep coming while the identity and host certificates roll: zero failures', async () => {
    const vault = await putVault(s, 'rollvault');
    const officer = await vaultPrincipal(s, 'roll-officer');
    await grant(s, officer.id, 'Key Vault Secrets Officer', vault.id);
    await secretClient(s, 'rollvault', officer).setSecret('s', 'v');
    const app = await putApp(s, 'roll-app', { identity: { type: 'SystemAssigned' } });
    const principalId = app.identity.principalId!;
    await grant(s, principalId, 'Key Vault Secrets User', vault.id);
    const sess = await session(s, 'roll-app');

    const failures: string[] = [];
    const thumbprints = new Set<string>();
    let requests = 0;
    const until = Date.now() + 13_000;
    const worker = async (n: number) => {
      while (Date.now() < until) {
        const r = await appServiceToken(s, sess);
        requests++;
        if (r.status !== 200) {
          failures.push(`${r.status} ${JSON.stringify(r.json)}`);
          continue;
        }
        if (requests % 10 === n) {
          const v = await s.request('GET', `${s.vaultUrl('rollvault')}/secrets/s?api-version=7.5`, {
            headers: { authorization: `Bearer ${r.json.access_token}` },
          });
          if (v.status !== 200) failures.push(`vault ${v.status}`);
        }
        const creds = await s.services.credentials.list(s.info.tenantId, principalId);
        for (const c of creds) if (c.thumbprintSha256) thumbprints.add(c.thumbprintSha256);
      }
    };
    await Promise.all([worker(0), worker(5)]);

    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
    assert.ok(requests > 50, `only ${requests} requests`);
    assert.ok(thumbprints.size >= 3, `the identity's certificate rolled ${thumbprints.size - 1} times`);
    const audited = async () => {
      await s.services.audit.drain();
      return s.services.db.all<{ operation: string; n: number }>(
        `SELECT operation, COUNT(*) AS n FROM audit_events
         WHERE operation IN ('ManagedIdentityCertificateAdd', 'ManagedIdentityCertificateDelete', 'HostCertificateAdd', 'HostCertificateDelete')
         GROUP BY operation`,
      );
    };
    let events = await audited();
    const count = (op: string) => Number(events.find((e) => e.operation === op)?.n ?? 0);
    // The endpoint removes a replaced certificate at its maintenance tick after the overlap; on a
    // loaded machine that tick may come after the load stops: give it a few more seconds.
    for (
      const until = Date.now() + 15_000;
      count('ManagedIdentityCertificateDelete') < 1 && Date.now() < until;
    ) {
      await new Promise((r) => setTimeout(r, 250));
      events = await audited();
    }
    assert.ok(count('ManagedIdentityCertificateAdd') >= 3, JSON.stringify(events));
    assert.ok(
      count('ManagedIdentityCertificateDelete') >= 1,
      'old certificates are removed after the overlap',
    );
    assert.ok(
      count('HostCertificateAdd') >= 2,
      'the host certificate rolled too (after the first, registered at start)',
    );
    const left = await s.services.credentials.list(s.info.tenantId, principalId);
    assert.ok(left.length <= 3, `${left.length} certificates still registered`);
  });
});
