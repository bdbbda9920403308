// Concurrent changes of one vault, one vault object or one provisioning key on PostgreSQL (READ COMMITTED, several
// connections: what two nodes, or two requests on one node, do at once). Each test pauses the first
// change inside its transaction, just before it writes, lets the second change run as far as it
// can, then lets the first one finish: the outcome must be that of the two run one after the
// other. SQLite serializes its writers (BEGIN IMMEDIATE), so only PostgreSQL is tested here.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Database, Transaction } from '../src/storage/port.js';
import { secretStore } from '../src/storage/vault/secret-store.js';
import { createTestSchema, TEST_POSTGRES_URL, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, vaultPath, vaultPrincipal } from './helpers/vault.js';

const API = '2022-07-01';

/**
 * Pauses the first transaction that runs a statement matching `sql` just before that statement,
 * until `release()`; `reached` resolves when it is paused. Other transactions run as they would.
 */
function pauseBefore(db: Database, sql: RegExp, params?: (p: readonly unknown[]) => boolean) {
  const real = db.transaction.bind(db);
  let armed = true;
  let onReached!: () => void;
  const reached = new Promise<void>((r) => {
    onReached = r;
  });
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const stop = async (text: string, p: readonly unknown[]) => {
    if (armed && sql.test(text) && (!params || params(p))) {
      armed = false;
      onReached();
      await gate;
    }
  };
  const gated = (tx: Transaction): Transaction => ({
    ...tx,
    async run(text, p) {
      await stop(text, p ?? []);
      return tx.run(text, p);
    },
    // The adapters take a lock with this statement (storage/postgres.ts), not through `run`.
    async lock(name) {
      await stop('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
      return tx.lock(name);
    },
  });
  db.transaction = ((fn: (tx: Transaction) => Promise<unknown>, options?: object) =>
    real((tx) => fn(armed ? gated(tx) : tx), options as never)) as Database['transaction'];
  return {
    reached,
    release,
    restore() {
      release();
      db.transaction = real;
    },
  };
}

describe('concurrent vault changes on PostgreSQL: one after the other, never one over the other', () => {
  let s: TestServer;
  let schema: TestSchema;
  let watcher: pg.Client;
  let admin: string;
  before(async () => {
    schema = await createTestSchema();
    s = await startTestServer({ storageUrl: schema.url });
    admin = await s.adminToken();
    watcher = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await watcher.connect();
  });
  after(async () => {
    await watcher?.end();
    await s?.stop();
    await schema?.drop();
  });

  const arm = (method: string, path: string, json: unknown, token = admin) =>
    s.request(method, `${path}?api-version=${API}`, { headers: { authorization: `Bearer ${token}` }, json });
  const mgmtToken = async (p: { appId: string; secret: string }, resource = s.info.managementResource) => {
    const r = await s.request('POST', `/${s.info.tenantId}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'client_credentials',
        client_id: p.appId,
        client_secret: p.secret,
        scope: `${resource}/.default`,
      },
    });
    assert.equal(r.status, 200, r.text);
    return r.json.access_token as string;
  };
  /**
   * Until `p` settles or a statement like `like` waits for a lock in this database (the second
   * change held back by the first, paused one): a poll on a condition, not a timed wait.
   */
  const blockedOrDone = async (p: Promise<unknown>, like: string | string[]) => {
    let settled = false;
    p.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    for (let i = 0; i < 2_000 && !settled; i++) {
      const r = await watcher.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE ANY($1::text[])`,
        [Array.isArray(like) ? like : [like]],
      );
      if (r.rows[0].n > 0) return;
      await new Promise((done) => setTimeout(done, 5));
    }
    assert.ok(settled, 'the second change neither finished nor waited for a lock');
  };

  /** A new RBAC vault and a principal with `roles` on it: its data-plane calls (7.5). */
  const dataPlane = async (vault: string, roles: string[]) => {
    const officer = await vaultPrincipal(s, `${vault}-officer`);
    const kv = vaultPath(s, vault);
    const made = await arm('PUT', kv, { location: 'local', properties: { enableRbacAuthorization: true } });
    assert.equal(made.status, 201, made.text);
    for (const role of roles) await grant(s, officer.id, role, kv);
    const token = await mgmtToken(officer, s.info.vaultResource);
    return (method: string, p: string, json?: unknown) =>
      s.request(method, `${s.vaultUrl(vault)}${p}?api-version=7.5`, {
        headers: { authorization: `Bearer ${token}` },
        ...(json !== undefined ? { json } : {}),
      });
  };

  /**
   * Starts `first`, which pauses inside its transaction just before the statement `at` names
   * (pauseBefore); then `second`, until it finishes or waits for a lock (a statement like
   * `like`); then lets `first` go on. Both answers, in that order.
   */
  const race = async <A, B>(
    at: RegExp | [RegExp, (p: readonly unknown[]) => boolean],
    first: () => Promise<A>,
    second: () => Promise<B>,
    like: string | string[] = 'SELECT pg_advisory_xact_lock%',
  ): Promise<[A, B]> => {
    const pause = Array.isArray(at)
      ? pauseBefore(s.services.db, at[0], at[1])
      : pauseBefore(s.services.db, at);
    try {
      const a = first();
      // (a first change that fails before it pauses does not leave the test waiting)
      await Promise.race([
        pause.reached,
        a.then(
          () => undefined,
          () => undefined,
        ),
      ]);
      const b = second();
      await blockedOrDone(b, like);
      pause.release();
      return await Promise.all([a, b]);
    } finally {
      pause.restore();
    }
  };

  test("a Contributor's PATCH in flight does not write back an access policy the Owner removed", async () => {
    const reader = await vaultPrincipal(s, 'race-reader');
    const contributor = await vaultPrincipal(s, 'race-contributor');
    await grant(
      s,
      contributor.id,
      'Contributor',
      `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`,
    );
    const t = await mgmtToken(contributor);
    const path = vaultPath(s, 'race-kv');
    const created = await arm('PUT', path, {
      location: 'local',
      properties: {
        enableRbacAuthorization: false,
        accessPolicies: [
          { tenantId: s.info.tenantId, objectId: reader.id, permissions: { secrets: ['get'] } },
        ],
      },
    });
    assert.equal(created.status, 201, created.text);

    // The Contributor's tag change reads the vault, then pauses before it writes the row back.
    // Meanwhile the Owner removes the reader's policy.
    const [p, r] = await race(
      /^UPDATE vaults /,
      () => arm('PATCH', path, { tags: { env: 'prod' } }, t),
      () =>
        arm('PUT', `${path}/accessPolicies/remove`, {
          properties: {
            accessPolicies: [
              { tenantId: s.info.tenantId, objectId: reader.id, permissions: { secrets: ['get'] } },
            ],
          },
        }),
    );
    assert.equal(p.status, 200, p.text);
    assert.equal(r.status, 200, r.text);
    const shown = await arm('GET', path, undefined);
    assert.deepEqual(shown.json.properties.accessPolicies, [], 'the removed policy stays removed');
    assert.deepEqual(shown.json.tags, { env: 'prod' }, "and the Contributor's change is there too");
  });

  test('purge protection switched on by the Owner is not switched off by a PATCH in flight', async () => {
    const contributor = await vaultPrincipal(s, 'race-contributor-2');
    await grant(
      s,
      contributor.id,
      'Contributor',
      `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`,
    );
    const t = await mgmtToken(contributor);
    const path = vaultPath(s, 'race-kv2');
    assert.equal((await arm('PUT', path, { location: 'local', properties: {} })).status, 201);
    const both = await race(
      /^UPDATE vaults /,
      () => arm('PATCH', path, { tags: { team: 'a' } }, t),
      () => arm('PATCH', path, { properties: { enablePurgeProtection: true } }),
    );
    assert.deepEqual(
      both.map((r) => r.status),
      [200, 200],
    );
    const shown = await arm('GET', path, undefined);
    assert.equal(shown.json.properties.enablePurgeProtection, true);
  });

  test('a vault recovered while a purge of it is asked for: the purge finds no deleted vault', async () => {
    const path = vaultPath(s, 'race-kv4');
    assert.equal((await arm('PUT', path, { location: 'local', properties: {} })).status, 201);
    assert.equal((await arm('DELETE', path, undefined)).status, 200);
    const deleted = `/subscriptions/${s.info.subscriptionId}/providers/Microsoft.KeyVault/locations/local/deletedVaults/race-kv4`;
    const [recover, purge] = await race(
      /^UPDATE vaults /,
      () => arm('PUT', path, { location: 'local', properties: { createMode: 'recover' } }),
      () => arm('POST', `${deleted}/purge`, undefined),
    );
    assert.equal(recover.status, 200, recover.text);
    assert.equal(purge.status, 404, purge.text);
    assert.equal((await arm('GET', path, undefined)).status, 200, 'the recovered vault is there');
  });

  test('a provisioning key revoked while it is being rotated ends revoked, not rotated (its grace would keep it working)', async () => {
    const auth = { authorization: `Bearer ${admin}` };
    const made = await s.request('POST', '/api/provisioning/keys', {
      headers: auth,
      json: { scopes: ['vaults:write'], expiresInSeconds: 3600 },
    });
    assert.equal(made.status, 201, made.text);
    const { id, key } = made.json as { id: string; key: string };
    // The rotation pauses just before it writes its successor; then the key is revoked.
    const [rotated, revoked] = await race(
      /^INSERT INTO provisioning_keys/,
      () =>
        s.request('POST', `/api/provisioning/keys/${id}/rotate`, {
          headers: auth,
          json: { graceSeconds: 3600 },
        }),
      () => s.request('POST', `/api/provisioning/keys/${id}/revoke`, { headers: auth }),
      ['SELECT pg_advisory_xact_lock%', 'UPDATE provisioning_keys SET state = state%'],
    );
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.state, 'revoked');
    // The rotation ran first (it held the key): the revoke then revoked the rotated key.
    assert.equal(rotated.status, 201, rotated.text);
    const shown = await s.request('GET', `/api/provisioning/keys/${id}`, { headers: auth });
    assert.equal(shown.json.state, 'revoked', shown.text);
    const use = await s.request(
      'GET',
      `/subscriptions/${s.info.subscriptionId}/resourceGroups/default?api-version=2022-09-01`,
      {
        headers: { authorization: `ProvisioningKey ${key}` },
      },
    );
    assert.equal(use.status, 401, `the revoked key is refused: ${use.text}`);
  });

  test("a certificate restored while a secret of its name is set: the user's secret is not merged into it", async () => {
    const data = await dataPlane('race-kv7', ['Key Vault Certificates Officer', 'Key Vault Secrets Officer']);
    const made = await data('POST', '/certificates/c1/create', {
      policy: {
        issuer: { name: 'Self' },
        x509_props: { subject: 'CN=race.example', validity_months: 3 },
        key_props: { exportable: true, kty: 'EC', crv: 'P-256' },
        secret_props: { contentType: 'application/x-pem-file' },
      },
    });
    assert.equal(made.status, 202, made.text);
    for (let i = 0; i < 200; i++) {
      const op = await data('GET', '/certificates/c1/pending');
      if (op.json.status === 'completed') break;
      assert.equal(op.json.status, 'inProgress', op.text);
      await new Promise((r) => setTimeout(r, 10));
    }
    const backup = (await data('POST', '/certificates/c1/backup')).json.value as string;
    assert.equal((await data('DELETE', '/certificates/c1')).status, 200);
    assert.equal((await data('DELETE', '/deletedcertificates/c1')).status, 204);
    // The restore has found the names free and pauses before it writes; then a secret of that name.
    const [restored, set] = await race(
      /^INSERT INTO certificates \(/,
      () => data('POST', '/certificates/restore', { value: backup }),
      () => data('PUT', '/secrets/c1', { value: 'a user secret' }),
      ['SELECT pg_advisory_xact_lock%', 'INSERT INTO secrets%'],
    );
    // One after the other: the restore first (it held the audit lock), then the set is refused,
    // since the name is now the certificate's secret.
    assert.equal(restored.status, 200, restored.text);
    assert.notEqual(set.status, 200, set.text);
    const versions = await data('GET', '/secrets/c1/versions');
    assert.equal(versions.json.value.length, 1, "only the certificate's own version");
    assert.equal(versions.json.value[0].managed, true);
    // What a restore writes its names with refuses a name taken meanwhile (it no longer merges).
    const vault = (await s.services.vaults.byName('race-kv7'))!;
    assert.equal(
      await secretStore.insertNew(s.services.db, vault.id, 'c1', 'f'.repeat(32), Date.now()),
      false,
    );
    assert.equal((await data('GET', '/secrets/c1/versions')).json.value.length, 1);
  });

  test('a manifest and a vault PATCH at once: both take the audit lock first, so neither deadlocks', async () => {
    const path = vaultPath(s, 'race-kv5');
    assert.equal((await arm('PUT', path, { location: 'local', properties: {} })).status, 201);
    // The manifest appends its identity's audit record (taking the audit lock), then pauses just
    // before it takes the vault lock for its vault; meanwhile a PATCH of another vault comes.
    const [applied, patched] = await race(
      [/^SELECT pg_advisory_xact_lock/, (p) => p[0] === 'latchkey:vault-names'],
      () =>
        s.request('POST', '/api/provisioning/apply', {
          headers: { authorization: `Bearer ${admin}` },
          json: {
            apiVersion: 'latchkey/v1',
            tenant: s.info.tenantId,
            identities: [{ name: 'race-id' }],
            vaults: [{ name: 'race-kv6', enableRbacAuthorization: true }],
          },
        }),
      () => arm('PATCH', path, { tags: { k: 'v' } }),
    );
    assert.equal(applied.status, 200, applied.text);
    assert.equal(patched.status, 200, patched.text);
  });

  test('a role assignment for a principal deleted meanwhile: PrincipalNotFound (as for any missing principal), not a foreign-key 500', async () => {
    const doomed = await vaultPrincipal(s, 'race-doomed');
    const scope = `/subscriptions/${s.info.subscriptionId}/resourceGroups/default`;
    const name = '5f0c2a64-3b7e-4c1d-9a8e-2d4b6c8e0f11';
    await s.services.audit.drain(); // no batch of read records takes the paused lock first
    // The PUT has found the principal and pauses just before its transaction takes the audit
    // lock; the principal's delete commits meanwhile.
    const [put, deleted] = await race(
      [/^SELECT pg_advisory_xact_lock/, (p) => p[0] === 'latchkey:audit'],
      () =>
        s.request(
          'PUT',
          `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}?api-version=2022-04-01`,
          {
            headers: { authorization: `Bearer ${admin}` },
            json: {
              properties: {
                roleDefinitionId:
                  '/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7',
                principalId: doomed.id,
              },
            },
          },
        ),
      () =>
        s.request('DELETE', `/api/directory/servicePrincipals/${doomed.id}`, {
          headers: { authorization: `Bearer ${admin}` },
        }),
    );
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal(put.status, 404, put.text);
    assert.equal(put.json.error.code, 'PrincipalNotFound');
  });

  test("a background job's round holds no audit lock across its items, and another node's round is skipped meanwhile", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let reached!: () => void;
    const midRound = new Promise<void>((r) => {
      reached = r;
    });
    const { audit, db, jobs } = s.services;
    // A round that commits one audited item, then waits (as a slow renewal would) before the next.
    jobs.add({
      name: 'test-slow-round',
      intervalMs: 3_600_000,
      run: async () => {
        await db.transaction(async (tx) => {
          await audit.hold(tx);
          await audit.append(tx, { tenantId: s.info.tenantId, operation: 'TestJobItem', status: 200 });
        });
        reached();
        await gate;
      },
    });
    const round = jobs.runNow('test-slow-round');
    await midRound;
    // An audited write meanwhile: before, the round's one transaction held the audit lock to its end.
    let done = false;
    const write = arm('PUT', vaultPath(s, 'race-kv-job'), { location: 'local', properties: {} });
    void write.then(() => {
      done = true;
    });
    try {
      await blockedOrDone(write, 'SELECT pg_advisory_xact_lock%');
      await new Promise((r) => setImmediate(r));
      assert.ok(done, 'the write waited for the round');
      assert.equal((await write).status, 201);
      // Another node (here: another round) finds the job's lock taken and skips.
      assert.equal(await jobs.runNow('test-slow-round'), false);
    } finally {
      release();
    }
    assert.equal(await round, true);
  });

  test('a secret recovered while a purge of it is asked for: one of them wins, and a 200 recover keeps it', async () => {
    const data = await dataPlane('race-kv3', ['Key Vault Secrets Officer']);
    assert.equal((await data('PUT', '/secrets/n', { value: 'keep me' })).status, 200);
    assert.equal((await data('DELETE', '/secrets/n')).status, 200);

    // The recover pauses just before it clears the deleted mark; then the purge runs.
    const [recover, purge] = await race(
      /^UPDATE secrets SET deleted_at = \$3/,
      () => data('POST', '/deletedsecrets/n/recover'),
      () => data('DELETE', '/deletedsecrets/n'),
      ['SELECT pg_advisory_xact_lock%', 'UPDATE secrets SET deleted_at = deleted_at%'],
    );
    assert.equal(recover.status, 200, recover.text);
    assert.equal(purge.status, 404, `the purge finds no deleted secret once it is recovered: ${purge.text}`);
    const read = await data('GET', '/secrets/n');
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.value, 'keep me');
  });
});
