import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startUpProcess, type UpProcess } from '../helpers/cli.js';
import {
  adminToken,
  clientToken,
  type HttpClient,
  httpClient,
  provisionVaultWriter,
  type Res,
  size,
} from './lib.js';

/**
 * Secret-leak canaries: known secret values, client secrets and provisioning
 * keys written and used during the run (successfully and in failing requests)
 * never appear in the server's logs (debug level), audit records, error
 * bodies, or the database file and its WAL in plaintext.
 */
const SECRETS = size(10, 60);

describe('secret-leak canaries', () => {
  let proc: UpProcess;
  let c: HttpClient;
  let dataDir: string;
  const canaries: string[] = [];
  const errorBodies: string[] = [];
  let requests = 0;

  /** Every answer is kept; error answers are scanned for canaries. */
  const send = async (...args: Parameters<HttpClient['request']>): Promise<Res> => {
    const r = await c.request(...args);
    requests++;
    if (r.status >= 400) errorBodies.push(`${r.status} ${JSON.stringify(r.headers)} ${r.text}`);
    return r;
  };

  before(async () => {
    proc = await startUpProcess({ args: ['--no-identity', '--log-level', 'debug'] });
    dataDir = proc.dataDir;
    c = httpClient(proc.info.authority, readFileSync(proc.info.caCertPath, 'utf8'));
  });
  after(async () => {
    c?.close();
    await proc?.close();
  });

  test('canaries never reach logs, audit, error bodies or the database files', async (t) => {
    const info = proc.info;
    const admin = JSON.parse(readFileSync(info.adminCredentialsPath, 'utf8'));
    const mgmt = await adminToken(c, info, admin);
    const mh = { authorization: `Bearer ${mgmt}` };
    // A client secret (shown once) and a second one added later.
    const writer = await provisionVaultWriter(c, info, mgmt, 'canaryvault');
    canaries.push(writer.secret);
    const cred = await send('POST', `/api/directory/servicePrincipals/${writer.id}/credentials`, {
      headers: mh,
      json: { type: 'Password', displayName: 'second', append: true },
    });
    assert.equal(cred.status, 201, cred.text);
    canaries.push(cred.json.secretText ?? cred.json.credential?.secretText);
    // A provisioning key (shown once), then used, then used for something it may not do.
    const pk = await send('POST', '/api/provisioning/keys', {
      headers: mh,
      json: { displayName: 'canary', scopes: ['vaults:write'], expiresInSeconds: 3600 },
    });
    assert.equal(pk.status, 201, pk.text);
    const pkValue: string = pk.json.key ?? pk.json.value;
    assert.equal(typeof pkValue, 'string', `provisioning key value in ${Object.keys(pk.json)}`);
    canaries.push(pkValue);
    const pkh = { authorization: `ProvisioningKey ${pkValue}` };
    const pkOk = await send(
      'GET',
      `/subscriptions/${info.subscriptionId}/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01`,
      { headers: pkh },
    );
    assert.equal(pkOk.status, 200, pkOk.text);
    assert.equal((await send('GET', '/api/directory/servicePrincipals', { headers: pkh })).status, 403);
    // Secret values: set, read, updated, listed, deleted and recovered, backed up.
    const token = await clientToken(c, info, writer);
    const vh = { authorization: `Bearer ${token}` };
    const vault = info.vaultUrlTemplate.replace('{name}', 'canaryvault');
    const q = 'api-version=7.5';
    for (let i = 0; i < SECRETS; i++) {
      const value = `CANARY-${randomUUID()}-${i}`;
      canaries.push(value);
      const r = await send('PUT', `${vault}/secrets/canary-${i}?${q}`, {
        headers: vh,
        json: { value, contentType: 'text/plain', tags: { n: String(i) } },
      });
      assert.equal(r.status, 200, r.text);
      const g = await send('GET', `${vault}/secrets/canary-${i}?${q}`, { headers: vh });
      assert.equal(g.json.value, value);
    }
    assert.equal((await send('GET', `${vault}/secrets?${q}`, { headers: vh })).status, 200);
    assert.equal((await send('POST', `${vault}/secrets/canary-0/backup?${q}`, { headers: vh })).status, 200);
    assert.equal((await send('DELETE', `${vault}/secrets/canary-1?${q}`, { headers: vh })).status, 200);
    // Failing requests that carry canaries: bad names, bad bodies, oversized values, wrong credentials.
    const bad = `CANARY-${randomUUID()}-bad`;
    canaries.push(bad);
    // (Canaries go where secrets go — values, client secrets, passwords, keys, tokens — not into names,
    // scopes or paths, which error messages may echo back to their sender.)
    const failures: [string, Promise<Res>][] = [
      ['bad name', send('PUT', `${vault}/secrets/bad_name!?${q}`, { headers: vh, json: { value: bad } })],
      [
        'bad attributes',
        send('PUT', `${vault}/secrets/x?${q}`, {
          headers: vh,
          json: { value: bad, attributes: { exp: bad } },
        }),
      ],
      [
        'bad tags',
        send('PUT', `${vault}/secrets/x?${q}`, {
          headers: vh,
          json: { value: bad, tags: { k: { nested: bad } } },
        }),
      ],
      [
        'too large',
        send('PUT', `${vault}/secrets/x?${q}`, {
          headers: vh,
          json: { value: `${bad}${'x'.repeat(30_000)}` },
        }),
      ],
      ['no token', send('PUT', `${vault}/secrets/x?${q}`, { json: { value: bad } })],
      [
        'token as value of header',
        send('GET', `${vault}/secrets/x?${q}`, { headers: { authorization: `Bearer ${bad}` } }),
      ],
      [
        'broken JSON',
        send('PUT', `${vault}/secrets/x?${q}`, {
          headers: { ...vh, 'content-type': 'application/json' },
          body: `{"value":"${bad}"`,
        }),
      ],
      [
        'wrong client secret',
        send('POST', `/${info.tenantId}/oauth2/v2.0/token`, {
          form: {
            grant_type: 'client_credentials',
            client_id: writer.appId,
            client_secret: bad,
            scope: `${info.vaultResource}/.default`,
          },
        }),
      ],
      [
        'secret of another client',
        send('POST', `/${info.tenantId}/oauth2/v2.0/token`, {
          form: {
            grant_type: 'client_credentials',
            client_id: randomUUID(),
            client_secret: writer.secret,
            scope: `${info.vaultResource}/.default`,
          },
        }),
      ],
      [
        'bad scope',
        send('POST', `/${info.tenantId}/oauth2/v2.0/token`, {
          form: {
            grant_type: 'client_credentials',
            client_id: writer.appId,
            client_secret: writer.secret,
            scope: 'not a scope',
          },
        }),
      ],
      [
        'wrong admin password',
        send('POST', `/${info.tenantId}/oauth2/v2.0/token`, {
          form: {
            grant_type: 'password',
            client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
            username: admin.userName,
            password: bad,
            scope: `${info.managementResource}/.default`,
          },
        }),
      ],
      [
        'provisioning key, wrong',
        send('GET', '/api/provisioning/keys', { headers: { authorization: `ProvisioningKey ${pkValue}x` } }),
      ],
      [
        'provisioning key in a bearer',
        send('GET', '/api/account', { headers: { authorization: `Bearer ${pkValue}` } }),
      ],
    ];
    for (const [what, p] of failures) {
      const r = await p;
      assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    // Revoke the key: later uses fail (and are logged).
    assert.equal(
      (await send('POST', `/api/provisioning/keys/${pk.json.id}/revoke`, { headers: mh })).status,
      200,
    );
    assert.equal((await send('GET', '/api/account', { headers: pkh })).status, 401);
    const verify = await send('POST', '/api/audit/verify', { headers: mh });
    assert.equal(verify.json.ok, true);

    // Where canaries must not be.
    const leaks: string[] = [];
    const scan = (where: string, text: string) => {
      for (const cn of canaries) if (text.includes(cn)) leaks.push(`${where} contains ${cn.slice(0, 12)}…`);
    };
    for (const b of errorBodies) scan(`an error body (${b.slice(0, 400)})`, b);
    const db = new Database(join(dataDir, 'latchkey.db'), { readonly: true, fileMustExist: true });
    let auditRows = 0;
    try {
      const rows = db.prepare('SELECT * FROM audit_events').all();
      auditRows = rows.length;
      scan('the audit table', JSON.stringify(rows));
    } finally {
      db.close();
    }
    const dbFiles = () => readdirSync(dataDir).filter((f) => f.startsWith('latchkey.db'));
    const scanFiles = (when: string) => {
      for (const f of dbFiles()) {
        const p = join(dataDir, f);
        if (existsSync(p) && statSync(p).isFile()) scan(`${f} (${when})`, readFileSync(p).toString('latin1'));
      }
    };
    scanFiles('running');
    const files = dbFiles();
    // Stop gracefully (flushes logs and the audit batch), then scan what is left on disk and in the logs.
    await proc.stop('SIGTERM');
    scanFiles('stopped');
    const logs = proc.stderr() + proc.stdout();
    scan('the logs', logs);
    t.diagnostic(
      `canaries: values=${canaries.length} requests=${requests} error bodies=${errorBodies.length} audit rows=${auditRows} log bytes=${logs.length} db files=${files.join(',')}`,
    );
    assert.ok(logs.length > 0, 'debug logging produced output');
    assert.ok(auditRows > SECRETS, 'operations were audited');
    assert.ok(
      files.some((f) => f.endsWith('-wal')),
      'the WAL was scanned',
    );
    assert.deepEqual(leaks, []);
  });
});
