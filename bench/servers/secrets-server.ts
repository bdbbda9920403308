// Child process for bench/scenarios/secrets.ts. Two modes, one JSON line on stdout when ready:
//   latchkey <dataDir> <valueBytes>  — `latchkey up` (per-address rate limit off: one load generator
//       address would otherwise be throttled), a vault `bench`, a Secrets Officer SP, one secret.
//   bare <dataDir> <bodyBytes>       — a bare node:https server (same certificate) answering every
//       request with a JSON body of that size: the baseline.
//   floor <dataDir> <valueBytes> <processes> — the floor: a node:https server (same certificate)
//       doing only the work no design of a secret GET can skip, synchronously, in 1 or more
//       processes (node:cluster): see floorServer below.
import cluster from 'node:cluster';
import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { findRole } from '../../src/access/roles.js';
import { startUp } from '../../src/server/up.js';

const [mode, dataDir, sizeText, processesText] = process.argv.slice(2);
const size = Number(sizeText);
if (!dataDir || !Number.isInteger(size) || size < 1)
  throw new Error('usage: secrets-server.ts latchkey|bare|floor <dataDir> <bytes> [processes]');

/**
 * The least a secret GET has to do, whatever the design, without the rest:
 * look the caller's bearer token up in a map (a token cache hit), read the
 * secret's row by primary key from SQLite (WAL), open its AES-256-GCM
 * ciphertext with AAD, MAC an audit record of the real size into a chain
 * (HMAC-SHA256 over its canonical JSON; the record is not stored), and answer
 * a SecretBundle of the real shape with the real headers. There is no
 * authorization, no principal check, no audit write, nothing asynchronous: an
 * upper bound for any implementation of the full path on the same machine.
 */
function floorServer(processes: number) {
  const file = join(dataDir!, 'floor.sqlite');
  const key = Buffer.alloc(32, 7); // fixed: every worker opens what the primary sealed
  const aad = Buffer.from('latchkey/v1|secret|tenant|vault|bench-secret|0123456789abcdef0123456789abcdef');
  if (cluster.isPrimary) {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(
      'CREATE TABLE IF NOT EXISTS secret_versions (vault_id TEXT, name_lower TEXT, version TEXT, value_sealed BLOB, enabled INTEGER, created INTEGER, updated INTEGER, PRIMARY KEY (vault_id, name_lower, version))',
    );
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update('s'.repeat(size)), c.final()]);
    db.prepare('INSERT OR REPLACE INTO secret_versions VALUES (?, ?, ?, ?, 1, ?, ?)').run(
      'vault',
      'bench-secret',
      '0123456789abcdef0123456789abcdef',
      Buffer.concat([iv, c.getAuthTag(), ct]),
      Date.now(),
      Date.now(),
    );
    db.close();
    if (processes > 1) {
      const workers = Array.from({ length: processes }, () => cluster.fork());
      let listening = 0;
      cluster.on('listening', (_w, address) => {
        if (++listening === processes) process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
      });
      process.on('SIGTERM', () => {
        for (const w of workers) w.kill();
        process.exit(0);
      });
      return;
    }
  }
  const db = new Database(file, { readonly: true });
  const get = db.prepare(
    'SELECT version, value_sealed, enabled, created, updated FROM secret_versions WHERE vault_id = ? AND name_lower = ? ORDER BY created DESC LIMIT 1',
  );
  const tokens = new Map<string, { oid: string; tid: string; appid: string }>();
  const macKey = Buffer.alloc(32, 9);
  let prev = '0'.repeat(64);
  let seq = 0;
  const server = https.createServer(
    {
      cert: readFileSync(join(dataDir!, 'tls', 'server.pem')),
      key: readFileSync(join(dataDir!, 'tls', 'server.key')),
      keepAliveTimeout: 65_000,
    },
    (req, res) => {
      const auth = req.headers.authorization ?? '';
      let caller = tokens.get(auth);
      if (!caller) {
        caller = { oid: randomUUID(), tid: randomUUID(), appid: randomUUID() };
        tokens.set(auth, caller);
      }
      const row = get.get('vault', 'bench-secret') as {
        version: string;
        value_sealed: Buffer;
        created: number;
        updated: number;
      };
      const blob = row.value_sealed;
      const d = createDecipheriv('aes-256-gcm', key, blob.subarray(0, 12));
      d.setAAD(aad);
      d.setAuthTag(blob.subarray(12, 28));
      const value = Buffer.concat([d.update(blob.subarray(28)), d.final()]).toString('utf8');
      const requestId = randomUUID();
      const host = req.headers.host ?? '';
      const record = JSON.stringify([
        ++seq,
        randomUUID(),
        Date.now(),
        caller.tid,
        caller.oid,
        caller.appid,
        'app',
        null,
        'SecretGet',
        `https://${host}/secrets/bench-secret`,
        'bench',
        200,
        req.socket.remoteAddress,
        requestId,
        null,
        prev,
      ]);
      prev = createHmac('sha256', macKey).update(record).digest('hex');
      const body = JSON.stringify({
        value,
        id: `https://${host}/secrets/bench-secret/${row.version}`,
        attributes: {
          enabled: true,
          created: Math.floor(row.created / 1000),
          updated: Math.floor(row.updated / 1000),
          recoveryLevel: 'Recoverable+Purgeable',
          recoverableDays: 90,
        },
      });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-cache',
        'x-ms-request-id': requestId,
        // The api-version served (the bench asks for a known one: it is served as itself).
        'x-latchkey-served-api-version': '7.5',
        'x-content-type-options': 'nosniff',
        'strict-transport-security': 'max-age=31536000',
      });
      res.end(body);
    },
  );
  server.listen(0, '127.0.0.1', () => {
    if (cluster.isPrimary)
      process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// Resolved from the repository (this script runs transpiled from a temporary directory).
const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

if (mode === 'floor') {
  floorServer(Number(processesText ?? '1'));
} else if (mode === 'bare') {
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
