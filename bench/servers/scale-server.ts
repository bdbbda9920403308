// Child process for bench/scenarios/scale.ts. Two modes, one JSON line on stdout each:
//   seed <dataDir> <small> <large> <valueBytes> — `latchkey up`, two vaults `small` and `large`
//       holding <small> and <large> secrets, a Secrets Officer SP on both; prints
//       {appId, clientSecret, smallSecret, largeSecret, seedMs} and exits.
//   serve <dataDir> <appId> (client secret in env BENCH_CLIENT_SECRET) — `latchkey up` on the
//       seeded data dir, so the measured process never held the seeding's garbage; prints
//       {port, pid, smallHost, largeHost, token} when ready.
// Both run with the per-address and per-principal rate limits off (one load generator).
//
// Seeding goes straight to the tables in a few large transactions, exactly as secrets.set stores a
// secret (secretStore.upsert + insertVersion, value sealed with the same AAD
// `secret|tenant|vaultId|nameLower|version`), so GET decrypts and lists them like any other.
// It skips the per-secret audit record (not a read path) and the HTTP layer (measured elsewhere).
import { findRole } from '../../src/access/roles.js';
import { newVersionId } from '../../src/lib/ids.js';
import { startUp } from '../../src/server/up.js';
import { secretStore } from '../../src/storage/vault/secret-store.js';

const [mode, dataDir, ...rest] = process.argv.slice(2);
if ((mode !== 'seed' && mode !== 'serve') || !dataDir)
  throw new Error(
    'usage: scale-server.ts seed <dataDir> <small> <large> <valueBytes> | serve <dataDir> <appId>',
  );

/** Distinct names that sort in insertion order (zero-padded). */
const nameOf = (i: number) => `scale-secret-${String(i).padStart(6, '0')}`;
const BATCH = 10_000;

const up = await startUp({
  dataDir,
  host: '127.0.0.1',
  port: 0,
  identityPort: null,
  logLevel: 'warn',
  limits: { perAddressRate: 0, perPrincipalRate: 0 },
});
const s = up.services;
const tenantId = up.info.tenantId;

if (mode === 'seed') {
  const [small, large, valueBytes] = rest.map(Number) as [number, number, number];
  if (!(small > 0) || !(large > 0) || !(valueBytes > 0))
    throw new Error('usage: scale-server.ts seed <dataDir> <small> <large> <valueBytes>');
  const admin = (await s.principals.list(tenantId, 'user'))[0]!;
  const adminCaller = { tenantId, oid: admin.id, appId: null, kind: 'user' as const };
  const meta = { requestId: 'bench', clientIp: '127.0.0.1' };
  const sp = await s.principals.createServicePrincipal(tenantId, { displayName: 'bench-scale' });
  const cred = await s.credentials.addSecret(tenantId, sp.id);
  const vaultWith = async (name: string, count: number) => {
    const { vault } = await s.vaults.createOrUpdate(
      adminCaller,
      meta,
      { subscriptionId: up.info.subscriptionId, resourceGroup: 'default', name },
      {},
    );
    await s.access.create(tenantId, {
      principalId: sp.id,
      role: findRole('Key Vault Secrets Officer')!,
      scope: vault.armId,
    });
    const value = 's'.repeat(valueBytes);
    for (let start = 0; start < count; start += BATCH) {
      await s.db.transaction(async (tx) => {
        const now = Date.now();
        for (let i = start; i < Math.min(count, start + BATCH); i++) {
          const secretName = nameOf(i);
          const nameLower = secretName.toLowerCase();
          const version = newVersionId(now);
          await secretStore.upsert(tx, vault.id, secretName, version, now);
          await secretStore.insertVersion(tx, vault.id, nameLower, {
            version,
            contentType: null,
            tags: null,
            enabled: true,
            nbf: null,
            exp: null,
            created: now,
            updated: now,
            sealed: s.sealer.seal(value, `secret|${vault.tenantId}|${vault.id}|${nameLower}|${version}`),
          });
        }
      });
    }
  };
  const t0 = performance.now();
  await vaultWith('small', small);
  await vaultWith('large', large);
  const seedMs = performance.now() - t0;
  await up.close();
  process.stdout.write(
    `${JSON.stringify({
      appId: sp.appId,
      clientSecret: cred.secretText,
      smallSecret: nameOf(Math.floor(small / 2)),
      largeSecret: nameOf(Math.floor(large / 2)),
      seedMs,
    })}\n`,
  );
  process.exit(0);
} else {
  const [appId] = rest;
  const clientSecret = process.env.BENCH_CLIENT_SECRET;
  if (!appId || !clientSecret) throw new Error('serve needs <appId> and BENCH_CLIENT_SECRET');
  const port = new URL(up.info.authority).port;
  const token = await s.tokenEndpoint.token({
    tenant: tenantId,
    form: {
      grant_type: 'client_credentials',
      client_id: appId,
      client_secret: clientSecret,
      scope: `${s.vaultResource}/.default`,
    },
    issuerBase: `https://localhost:${port}`,
    clientIp: '127.0.0.1',
  });
  process.stdout.write(
    `${JSON.stringify({
      port: Number(port),
      pid: process.pid,
      smallHost: `small.${s.config.vaultDomain}:${port}`,
      largeHost: `large.${s.config.vaultDomain}:${port}`,
      token: token.access_token,
    })}\n`,
  );
  process.on('SIGTERM', () => {
    void up.close().then(() => process.exit(0));
  });
}
