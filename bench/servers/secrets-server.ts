// Child process for bench/scenarios/secrets.ts. Two modes, one JSON line on stdout when ready:
//   latchkey <dataDir> <valueBytes>  — `latchkey up` (per-address rate limit off: one load generator
//       address would otherwise be throttled), a vault `bench`, a Secrets Officer SP, one secret.
//   bare <dataDir> <bodyBytes>       — a bare node:https server (same certificate) answering every
//       request with a JSON body of that size: the baseline.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { findRole } from '../../src/access/roles.js';
import { startUp } from '../../src/server/up.js';

const [mode, dataDir, sizeText] = process.argv.slice(2);
const size = Number(sizeText);
if (!dataDir || !Number.isInteger(size) || size < 1)
  throw new Error('usage: secrets-server.ts latchkey|bare <dataDir> <bytes>');

if (mode === 'bare') {
  // `{"value":"xxx…"}` of exactly `size` bytes.
  const body = JSON.stringify({ value: 'x'.repeat(Math.max(0, size - 12)) });
  const server = https.createServer(
    {
      cert: readFileSync(join(dataDir, 'tls', 'server.pem')),
      key: readFileSync(join(dataDir, 'tls', 'server.key')),
      keepAliveTimeout: 65_000,
    },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      });
    },
  );
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else {
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
  const caller = { tenantId, oid: 'bench', appId: null, kind: 'app' as const };
  const admin = (await s.principals.list(tenantId, 'user'))[0]!;
  const meta = { requestId: 'bench', clientIp: '127.0.0.1' };
  const { vault } = await s.vaults.createOrUpdate(
    { ...caller, oid: admin.id, kind: 'user' },
    meta,
    { subscriptionId: up.info.subscriptionId, resourceGroup: 'default', name: 'bench' },
    {},
  );
  const sp = await s.principals.createServicePrincipal(tenantId, { displayName: 'bench-secrets' });
  const cred = await s.credentials.addSecret(tenantId, sp.id);
  await s.access.create(tenantId, {
    principalId: sp.id,
    role: findRole('Key Vault Secrets Officer')!,
    scope: vault.armId,
  });
  const port = new URL(up.info.authority).port;
  const token = await s.tokenEndpoint.token({
    tenant: tenantId,
    form: {
      grant_type: 'client_credentials',
      client_id: sp.appId!,
      client_secret: cred.secretText,
      scope: `${s.vaultResource}/.default`,
    },
    issuerBase: `https://localhost:${port}`,
    clientIp: '127.0.0.1',
  });
  process.stdout.write(
    `${JSON.stringify({ port: Number(port), vaultHost: `bench.${s.config.vaultDomain}:${port}`, token: token.access_token })}\n`,
  );
  process.on('SIGTERM', () => {
    void up.close().then(() => process.exit(0));
  });
}
