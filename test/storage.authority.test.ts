import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { expiresAtOf } from '../src/authority/client-assertion.js';
import { authFailureStore } from '../src/storage/authority/auth-failure-store.js';
import { authorizationCodeStore } from '../src/storage/authority/authorization-code-store.js';
import { credentialStore } from '../src/storage/authority/credential-store.js';
import { deviceCodeStore } from '../src/storage/authority/device-code-store.js';
import { type Principal, principalStore } from '../src/storage/authority/principal-store.js';
import { refreshTokenStore } from '../src/storage/authority/refresh-token-store.js';
import { signingKeyStore } from '../src/storage/authority/signing-key-store.js';
import { tenantStore } from '../src/storage/authority/tenant-store.js';
import { usedAssertionStore } from '../src/storage/authority/used-assertion-store.js';
import { migrate } from '../src/storage/migrate.js';
import { ALL_MIGRATIONS } from '../src/storage/migrations/index.js';
import type { Database } from '../src/storage/port.js';
import { openPostgres } from '../src/storage/postgres.js';
import { openSqlite } from '../src/storage/sqlite.js';
import { createTestSchema } from './helpers/postgres.js';

const T = '11111111-1111-4111-8111-111111111111';
const hash = (s: string) => Buffer.from(s.padEnd(32, '.'));
const principal = (id: string, over: Partial<Principal> = {}): Principal => ({
  id,
  tenantId: T,
  kind: 'user',
  appId: null,
  displayName: `p ${id.slice(0, 4)}`,
  userName: null,
  identifierUri: null,
  enabled: true,
  publicClient: false,
  resourceId: null,
  createdAt: 1000,
  updatedAt: 1000,
  sessionsValidFrom: 0,
  ...over,
});

/** The authority's stores (src/storage/authority), run against every adapter. */
function authorityStores(name: string, open: () => Promise<{ db: Database; cleanup(): Promise<void> }>) {
  describe(`authority stores: ${name}`, () => {
    let db: Database;
    let cleanup: () => Promise<void>;
    const U = 'aaaaaaaa-0000-4000-8000-000000000001';
    const A = 'aaaaaaaa-0000-4000-8000-000000000002';
    before(async () => {
      ({ db, cleanup } = await open());
      await migrate(db, ALL_MIGRATIONS);
      await tenantStore.insert(db, {
        id: T,
        domain: 'contoso.example',
        displayName: 'Contoso',
        createdAt: 1,
      });
      await principalStore.insert(db, principal(U, { userName: 'ann@contoso.example' }), 'pw-hash');
      await principalStore.insert(db, principal(A, { kind: 'servicePrincipal', appId: 'app-a' }), null);
    });
    after(async () => {
      await db?.close();
      await cleanup?.();
    });

    test('tenants and principals: records come back as they went in; updates say whether a row was there', async () => {
      assert.equal((await tenantStore.findByDomain(db, 'contoso.example'))?.id, T);
      assert.equal(await tenantStore.domainTaken(db, 'fabrikam.example'), false);
      assert.deepEqual(
        await principalStore.findById(db, T, U),
        principal(U, { userName: 'ann@contoso.example' }),
      );
      assert.equal(
        (await principalStore.findByUserName(db, T, 'ann@contoso.example'))?.passwordHash,
        'pw-hash',
      );
      assert.equal((await principalStore.findByAppId(db, T, 'app-a'))?.kind, 'servicePrincipal');
      assert.deepEqual(
        (await principalStore.list(db, T)).map((p) => p.id),
        [U, A],
      );
      assert.equal(await principalStore.setEnabled(db, T, A, false, 2000), true);
      assert.equal((await principalStore.findByIdInAnyTenant(db, A))?.enabled, false);
      assert.equal(
        await principalStore.setPasswordHash(db, T, A, 'x', 2000),
        false,
        'only a user has a password',
      );
      await principalStore.invalidateSignInsBefore(db, T, U, 5000);
      await principalStore.invalidateSignInsBefore(db, T, U, 4000);
      assert.equal((await principalStore.findById(db, T, U))?.sessionsValidFrom, 5000, 'never moves back');
    });

    test('refresh tokens: consumed once; a family is destroyed together', async () => {
      const base = { tenantId: T, principalId: U, clientId: 'c', scope: 's', createdAt: 1, authTime: 1 };
      await refreshTokenStore.insert(db, {
        ...base,
        id: 'r1',
        tokenHash: hash('r1'),
        expiresAt: 9e12,
        familyId: 'r1',
      });
      await refreshTokenStore.insert(db, {
        ...base,
        id: 'r2',
        tokenHash: hash('r2'),
        expiresAt: 9e12,
        familyId: 'r1',
      });
      await refreshTokenStore.insert(db, {
        ...base,
        id: 'r3',
        tokenHash: hash('r3'),
        expiresAt: 9e12,
        familyId: 'r3',
      });
      const found = await refreshTokenStore.findByHash(db, T, hash('r2'));
      assert.deepEqual(found, {
        id: 'r2',
        principalId: U,
        clientId: 'c',
        scope: 's',
        expiresAt: 9e12,
        familyId: 'r1',
        authTime: 1,
        usedAt: null,
      });
      assert.equal(await refreshTokenStore.consume(db, 'r2', 100, 200), true);
      assert.equal(await refreshTokenStore.consume(db, 'r2', 101, 201), false, 'of two uses one wins');
      const spent = await refreshTokenStore.findByHash(db, T, hash('r2'));
      assert.deepEqual([spent?.usedAt, spent?.expiresAt], [100, 200]);
      await refreshTokenStore.destroyFamilyOf(db, 'r2');
      assert.equal(await refreshTokenStore.findByHash(db, T, hash('r1')), undefined);
      assert.ok(await refreshTokenStore.findByHash(db, T, hash('r3')), 'another family stays');
      assert.equal(await refreshTokenStore.prune(db, 9e12), 1);
    });

    test('authorization codes: consumed once; the refresh token of the first redemption is remembered', async () => {
      const code = {
        id: 'c1',
        tenantId: T,
        principalId: U,
        clientId: 'client',
        redirectUri: 'http://localhost:1/',
        codeChallenge: 'x'.repeat(43),
        scope: 'openid',
        nonce: null,
        authTime: 5,
        expiresAt: 1000,
      };
      await authorizationCodeStore.insert(db, { ...code, codeHash: hash('c1'), createdAt: 1 });
      assert.deepEqual(await authorizationCodeStore.findByHash(db, T, hash('c1')), code);
      assert.equal(await authorizationCodeStore.findByHash(db, 'other', hash('c1')), undefined);
      assert.equal(await authorizationCodeStore.consume(db, 'c1', 10), true);
      assert.equal(await authorizationCodeStore.consume(db, 'c1', 11), false);
      assert.equal(await authorizationCodeStore.refreshTokenOf(db, 'c1'), null);
      await authorizationCodeStore.linkRefreshToken(db, 'c1', 'r9');
      assert.equal(await authorizationCodeStore.refreshTokenOf(db, 'c1'), 'r9');
      assert.equal(await authorizationCodeStore.prune(db, 1000), 0);
      assert.equal(await authorizationCodeStore.prune(db, 1001), 1);
    });

    test('device codes: approved once, redeemed once; a user-code clash is refused', async () => {
      const d = {
        id: 'd1',
        deviceCodeHash: hash('d1'),
        userCodeHash: hash('u1'),
        tenantId: T,
        clientId: 'cli',
        scope: 's',
        intervalMs: 5000,
        expiresAt: 1000,
        createdAt: 1,
      };
      await deviceCodeStore.insert(db, d);
      await assert.rejects(deviceCodeStore.insert(db, { ...d, id: 'd2', deviceCodeHash: hash('d2') }));
      assert.equal((await deviceCodeStore.findPendingByUserCode(db, hash('u1'), 999))?.id, 'd1');
      assert.equal(await deviceCodeStore.findPendingByUserCode(db, hash('u1'), 1000), undefined, 'expired');
      await deviceCodeStore.recordPoll(db, 'd1', 50);
      assert.equal((await deviceCodeStore.findByDeviceCode(db, T, 'cli', hash('d1')))?.lastPollAt, 50);
      assert.equal(await deviceCodeStore.approve(db, 'd1', U, 60, 100), true);
      assert.equal(await deviceCodeStore.approve(db, 'd1', U, 61, 100), false);
      await deviceCodeStore.deny(db, 'd1');
      const approved = await deviceCodeStore.findByDeviceCode(db, T, 'cli', hash('d1'));
      assert.deepEqual([approved?.status, approved?.principalId, approved?.authTime], ['approved', U, 60]);
      assert.equal(await deviceCodeStore.consume(db, 'd1'), true);
      assert.equal(await deviceCodeStore.consume(db, 'd1'), false);
      assert.equal(await deviceCodeStore.prune(db, 1001), 1);
    });

    test('client-assertion jtis: consumed once until pruned', async () => {
      assert.equal(await usedAssertionStore.consume(db, 'j1', 100), true);
      assert.equal(await usedAssertionStore.consume(db, 'j1', 100), false);
      assert.equal(await usedAssertionStore.prune(db, 100), 0);
      assert.equal(await usedAssertionStore.prune(db, 101), 1);
      assert.equal(await usedAssertionStore.consume(db, 'j1', 200), true);
    });

    test('client-assertion jtis: an exp with a sub-millisecond fraction keys the next whole ms (an integer column on both stores)', async () => {
      const at = expiresAtOf(1_700_000_000.0004); // (exp + 300 s) in ms is 1,700,000,300,000.4
      assert.equal(at, 1_700_000_300_001);
      assert.equal(await usedAssertionStore.consume(db, 'j-fraction', at), true);
      assert.equal(
        await usedAssertionStore.consume(db, 'j-fraction', expiresAtOf(1_700_000_000.0004)),
        false,
      );
      assert.equal(
        expiresAtOf(1_700_000_000),
        1_700_000_300_000,
        'a whole-second exp as earlier versions stored it',
      );
    });

    test('failed-authentication counts: add within a window, start again after it', async () => {
      assert.deepEqual(await authFailureStore.addFailure(db, 'k', 100, 0), { count: 1, start: 100 });
      assert.deepEqual(await authFailureStore.addFailure(db, 'k', 150, 50), { count: 2, start: 100 });
      assert.deepEqual(await authFailureStore.addFailure(db, 'k', 300, 100), { count: 1, start: 300 });
      await authFailureStore.clear(db, 'k');
      assert.deepEqual(await authFailureStore.addFailure(db, 'k', 310, 0), { count: 1, start: 310 });
      assert.equal(await authFailureStore.prune(db, 310), 1);
    });

    test('signing keys: one active, previous ones published until they retire', async () => {
      const key = (kid: string, createdAt: number) => ({
        kid,
        alg: 'ES256' as const,
        publicJwk: JSON.stringify({ kid }),
        privateSealed: Buffer.from([1, 2, 3]),
        createdAt,
      });
      await signingKeyStore.insertActive(db, key('k1', 10));
      await signingKeyStore.retireActive(db, 500);
      await signingKeyStore.insertActive(db, key('k2', 20));
      assert.deepEqual(await signingKeyStore.findActive(db), { kid: 'k2', createdAt: 20 });
      assert.deepEqual(
        (await signingKeyStore.listPublished(db, 499)).map((k) => [k.kid, k.state, k.retireAt]),
        [
          ['k2', 'active', null],
          ['k1', 'previous', 500],
        ],
      );
      assert.deepEqual(
        (await signingKeyStore.listPublished(db, 499))[0]?.privateSealed,
        Buffer.from([1, 2, 3]),
      );
      assert.equal((await signingKeyStore.listPublishedTimes(db, 500)).length, 1);
      await signingKeyStore.deleteRetired(db, 500);
      assert.equal(await signingKeyStore.exists(db, 'k1'), false);
      assert.equal(await signingKeyStore.exists(db, 'k2'), true);
    });

    test('credentials: current secrets and certificates by validity window and thumbprint', async () => {
      const cred = {
        tenantId: T,
        principalId: A,
        displayName: 'c',
        hint: null,
        thumbprintSha1: null,
        thumbprintSha256: null,
        certificatePem: null,
        startAt: 100,
        endAt: 200,
      };
      await credentialStore.insert(db, { ...cred, id: 's1', kind: 'secret', secretHash: hash('s1') }, 1);
      await credentialStore.insert(
        db,
        {
          ...cred,
          id: 'x1',
          kind: 'certificate',
          secretHash: null,
          thumbprintSha1: 'one',
          thumbprintSha256: 'two',
          certificatePem: 'PEM',
        },
        2,
      );
      assert.equal(await credentialStore.countOf(db, A), 2);
      assert.equal(await credentialStore.hasCertificate(db, A, 'two'), true);
      assert.deepEqual(
        (await credentialStore.clientCredentials(db, A)).sort((a, b) => a.id.localeCompare(b.id)),
        [
          {
            id: 's1',
            kind: 'secret',
            secretHash: hash('s1'),
            thumbprintSha1: null,
            thumbprintSha256: null,
            startAt: 100,
            endAt: 200,
          },
          {
            id: 'x1',
            kind: 'certificate',
            secretHash: null,
            thumbprintSha1: 'one',
            thumbprintSha256: 'two',
            startAt: 100,
            endAt: 200,
          },
        ],
      );
      assert.equal(await credentialStore.certificatePem(db, A, 'x1'), 'PEM');
      assert.equal(await credentialStore.certificatePem(db, A, 's1'), undefined);
      assert.equal(await credentialStore.certificatePem(db, 'other', 'x1'), undefined);
      // The confirmation of a cached answer: principal enabled, credential there and current.
      await principalStore.setEnabled(db, T, A, true, 3);
      assert.equal(await credentialStore.stillValid(db, A, 'x1', 150), true);
      assert.equal(await credentialStore.stillValid(db, A, 'x1', 200), false);
      assert.equal(await credentialStore.stillValid(db, A, 'x1', 99), false);
      assert.equal(await credentialStore.stillValid(db, A, undefined, 150), true);
      assert.equal(await credentialStore.stillValid(db, 'other', 'x1', 150), false);
      assert.deepEqual(
        (await credentialStore.list(db, T, A)).map((c) => c.id),
        ['s1', 'x1'],
      );
      assert.equal(await credentialStore.delete(db, T, A, 's1'), true);
      assert.equal(await credentialStore.delete(db, T, A, 's1'), false);
      assert.equal(await credentialStore.stillValid(db, A, 's1', 150), false);
      await principalStore.setEnabled(db, T, A, false, 4);
      assert.equal(await credentialStore.stillValid(db, A, 'x1', 150), false);
      assert.equal(await credentialStore.stillValid(db, A, undefined, 150), false);
      await principalStore.setEnabled(db, T, A, true, 5);
      await credentialStore.deleteAllOf(db, T, A);
      assert.equal(await credentialStore.countOf(db, A), 0);
    });
  });
}

authorityStores('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-authority-stores-'));
  return {
    db: openSqlite(join(dir, 'a.db')),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

authorityStores('postgres', async () => {
  // No skip: when PostgreSQL is unreachable this throws and every PostgreSQL test fails.
  const schema = await createTestSchema();
  return { db: openPostgres(schema.url, { max: 4 }), cleanup: () => schema.drop() };
});
