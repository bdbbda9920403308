import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CertificateClient } from '@azure/keyvault-certificates';
import { findRole } from '../src/access/roles.js';
import { fakeClock } from '../src/lib/clock.js';
import { migrate } from '../src/storage/migrate.js';
import { ALL_MIGRATIONS } from '../src/storage/migrations/index.js';
import { certificateAuthorityStore } from '../src/storage/vault/certificate-authority-store.js';
import { secretTokenRequest } from './helpers/authority.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { type ServiceVault, startServiceVault, testMeta } from './helpers/service-vault.js';
import { FRESH_STORES } from './helpers/stores.js';
import { grant, putVault, type VaultTestPrincipal, vaultPrincipal, vaultToken } from './helpers/vault.js';
import { cliOk, type VaultCli, vaultAdminCli } from './helpers/vault-cli.js';

const openssl = (args: string[], input?: Buffer | string) =>
  execFileSync('openssl', args, {
    ...(input !== undefined ? { input } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  }).toString('utf8');
/** `openssl verify` whether it passes or not: its exit code and both outputs. */
const verify = (args: string[]) => {
  const r = spawnSync('openssl', ['verify', ...args], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};
const poll = { intervalInMs: 10 };
const pemOf = (der: Uint8Array) =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;

/** A GET whose body is kept as bytes (a DER CRL), trusting the dev CA. */
const getBytes = (s: TestServer, url: string) =>
  new Promise<{ status: number; type: string; body: Buffer }>((resolve, reject) => {
    https
      .get(url, { agent: s.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks),
          }),
        );
      })
      .on('error', reject);
  });

describe('the tenant CA: CRL on purge, rotation (issuer Latchkey)', () => {
  let s: TestServer;
  let dir: string;
  let officer: VaultTestPrincipal;
  let cli: VaultCli;
  let vaultId: string;
  const certs = () => new CertificateClient(s.vaultUrl('cavault'), officer.credential, { agent: s.agent });
  const pki = () => `${s.info.authority}/${s.info.tenantId}/pki`;
  /** Issues a Latchkey certificate and writes its PEM to `{dir}/{name}.pem`; returns the path and serial. */
  const issue = async (name: string) => {
    const c = await (
      await certs().beginCreateCertificate(
        name,
        { issuerName: 'Latchkey', subject: `CN=${name}.example` },
        poll,
      )
    ).pollUntilDone();
    const file = join(dir, `${name}.pem`);
    writeFileSync(file, pemOf(c.cer!));
    const serial = openssl(['x509', '-noout', '-serial', '-in', file])
      .trim()
      .replace(/^serial=/, '');
    return { file, serial };
  };
  /** The published bundle and CRLs, written to files for openssl. */
  const published = async () => {
    const ca = await s.request('GET', `${pki()}/ca.pem`);
    assert.equal(ca.status, 200, ca.text);
    const crl = await s.request('GET', `${pki()}/crl.pem`);
    assert.equal(crl.status, 200, crl.text);
    assert.equal(crl.headers['content-type'], 'application/x-pem-file');
    const caFile = join(dir, 'bundle.pem');
    const crlFile = join(dir, 'crls.pem');
    writeFileSync(caFile, ca.text);
    writeFileSync(crlFile, crl.text);
    return { caFile, crlFile, caPem: ca.text, crlPem: crl.text };
  };
  /** Latchkey's revoke route on the live (`certificates`) or the deleted (`deletedcertificates`) collection, as a principal or with a token. */
  const revokeRaw = async (
    caller: VaultTestPrincipal | string,
    collection: 'certificates' | 'deletedcertificates',
    name: string,
    v: string,
    body: unknown,
  ) =>
    s.request('POST', `${s.vaultUrl('cavault')}/${collection}/${name}/${v}/revoke?api-version=7.5`, {
      headers: {
        authorization: `Bearer ${typeof caller === 'string' ? caller : await vaultToken(s, caller)}`,
      },
      json: body,
    });
  /** `latchkey keyvault certificate revoke` (latest version) with `keyCompromise`, as the officer; its JSON. */
  const revokeWithCli = async (name: string, ...extra: string[]) =>
    cliOk(
      await cli.run(
        'keyvault',
        'certificate',
        'revoke',
        ...extra,
        '--vault-name',
        'cavault',
        '-n',
        name,
        '--reason',
        'keyCompromise',
        '--output',
        'json',
      ),
      `certificate revoke ${extra.join(' ')}`,
    ).json;
  const crlChecked = async (file: string) => {
    const p = await published();
    return verify(['-crl_check', '-CAfile', p.caFile, '-CRLfile', p.crlFile, file]);
  };
  /** Another tenant (`{tag}-other.example`) and an Owner of it at its root. */
  const foreignOwner = async (tag: string) => {
    const other = await s.services.tenants.create({ displayName: 'Other', domain: `${tag}-other.example` });
    const foreign = await vaultPrincipal(s, `${tag}-foreign`, other.id);
    await s.services.access.create(other.id, {
      principalId: foreign.id,
      role: findRole('Owner')!,
      scope: '/',
    });
    return { other, foreign };
  };
  const purge = async (name: string) => {
    await (await certs().beginDeleteCertificate(name, poll)).pollUntilDone();
    await certs().purgeDeletedCertificate(name);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lk-cacrl-'));
    s = await startTestServer();
    // The admin (a tenant Owner) signed in to the CLI, also a Certificates Officer of the vault.
    cli = await vaultAdminCli(s, 'cavault', 'Key Vault Certificates Officer');
    officer = await vaultPrincipal(s, 'ca-officer');
    vaultId = (await putVault(s, 'cavault')).id;
    await grant(s, officer.id, 'Key Vault Certificates Officer', vaultId);
  });
  after(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a certificate names its CRL; openssl -crl_check: valid before, "certificate revoked" after its purge', async () => {
    assert.equal((await s.request('GET', `${pki()}/crl`)).status, 404, 'no CRL before the CA exists');
    const gone = await issue('crl-gone');
    const kept = await issue('crl-kept');
    // The CRL distribution point: the CA generation's CRL on this server.
    const text = openssl(['x509', '-noout', '-text', '-in', gone.file]);
    const cdp = `${pki()}/crl/1`;
    assert.match(text, /X509v3 CRL Distribution Points/, 'the extension is there');
    assert.ok(text.includes(`URI:${cdp}`), `it points at ${cdp}:\n${text}`);
    const der = await getBytes(s, cdp);
    assert.equal(der.status, 200);
    assert.equal(der.type, 'application/pkix-crl');
    const crlText = openssl(['crl', '-inform', 'DER', '-noout', '-text'], der.body);
    assert.match(crlText, new RegExp(`Issuer: CN = Latchkey CA ${s.info.tenantId}, O = Latchkey`));
    assert.match(crlText, /X509v3 CRL Number:\s*\n\s*1\b/, crlText);
    assert.match(crlText, /No Revoked Certificates/);
    // `/crl` is the current generation's; the same CRL while it is fresh.
    assert.ok((await getBytes(s, `${pki()}/crl`)).body.equals(der.body), 'the current CRL, kept while fresh');
    // The CA signs its CRL: openssl checks that too.
    const caFile = join(dir, 'ca1.pem');
    writeFileSync(caFile, (await s.request('GET', `${pki()}/ca.pem`)).text);
    const signed = spawnSync('openssl', ['crl', '-inform', 'DER', '-noout', '-CAfile', caFile], {
      input: der.body,
      encoding: 'utf8',
    });
    assert.equal(signed.status, 0, signed.stderr);
    assert.match(`${signed.stdout}${signed.stderr}`, /verify OK/);

    const before = await crlChecked(gone.file);
    assert.equal(before.code, 0, before.out);
    assert.match(before.out, /crl-gone\.pem: OK/);
    // A soft delete revokes nothing (the certificate can be recovered).
    await (await certs().beginDeleteCertificate('crl-gone', poll)).pollUntilDone();
    assert.equal((await crlChecked(gone.file)).code, 0, 'deleted, not purged: still valid');
    await certs().purgeDeletedCertificate('crl-gone');
    const revoked = await crlChecked(gone.file);
    assert.notEqual(revoked.code, 0, revoked.out);
    assert.match(revoked.out, /certificate revoked/);
    const other = await crlChecked(kept.file);
    assert.equal(other.code, 0, `another certificate of the CA stays valid: ${other.out}`);
    // The new CRL: a higher number, the serial with its reason.
    const after = openssl(['crl', '-inform', 'DER', '-noout', '-text'], (await getBytes(s, cdp)).body);
    // (The revocation took number 2, so that a CRL made while it committed cannot be stored: 3.)
    assert.match(after, /X509v3 CRL Number:\s*\n\s*3\b/, after);
    assert.match(after, new RegExp(`Serial Number: ${gone.serial}`, 'i'));
    assert.match(after, /Cessation Of Operation/);
    assert.doesNotMatch(after, new RegExp(kept.serial, 'i'));
    // Unknown generations and tenants are 404.
    assert.equal((await s.request('GET', `${pki()}/crl/9`)).status, 404);
    assert.equal((await s.request('GET', `${pki()}/crl/x`)).status, 404);
    assert.equal(
      (await s.request('GET', `${s.info.authority}/00000000-0000-0000-0000-000000000000/pki/crl`)).status,
      404,
    );
  });

  test("Latchkey's own revoke: a version into the CRL with its reason, the certificate kept; who may; only the CA's", async () => {
    const made = await issue('rev-explicit');
    const version = (await certs().getCertificate('rev-explicit')).properties.version!;
    const raw = (p: VaultTestPrincipal, name: string, v: string, body: unknown) =>
      revokeRaw(p, 'certificates', name, v, body);
    // A Certificate User may read it, not revoke it; a bad reason is 400.
    const user = await vaultPrincipal(s, 'rev-user');
    await grant(s, user.id, 'Key Vault Certificate User', vaultId);
    assert.equal((await raw(user, 'rev-explicit', version, {})).status, 403);
    const badReason = await raw(officer, 'rev-explicit', version, { reason: 'because' });
    assert.equal(badReason.status, 400, badReason.text);
    assert.equal((await crlChecked(made.file)).code, 0, 'nothing revoked by the refusals');
    // The CLI (latest version by default), as a Certificates Officer.
    const r = await revokeWithCli('rev-explicit');
    assert.equal(r.serialNumber, made.serial.toLowerCase());
    assert.equal(r.reason, 'keyCompromise');
    assert.match(r.id, new RegExp(`/certificates/rev-explicit/${version}$`));
    const checked = await crlChecked(made.file);
    assert.match(checked.out, /certificate revoked/, checked.out);
    const text = openssl(
      ['crl', '-inform', 'DER', '-noout', '-text'],
      (await getBytes(s, `${pki()}/crl/1`)).body,
    );
    assert.match(text, new RegExp(`Serial Number: ${made.serial}[\\s\\S]*?Key Compromise`, 'i'), text);
    // The certificate is still there (revoking is not deleting); a second revoke keeps the first reason.
    assert.equal((await certs().getCertificate('rev-explicit')).properties.version, version);
    assert.equal((await raw(officer, 'rev-explicit', version, { reason: 'superseded' })).status, 200);
    assert.doesNotMatch(
      openssl(['crl', '-inform', 'DER', '-noout', '-text'], (await getBytes(s, `${pki()}/crl/1`)).body),
      /Superseded/,
    );
    // A certificate the CA did not sign (Self) cannot be revoked; an unknown version is 404.
    const self = await (
      await certs().beginCreateCertificate('rev-self', { issuerName: 'Self', subject: 'CN=rev-self' }, poll)
    ).pollUntilDone();
    const notOurs = await raw(officer, 'rev-self', self.properties.version!, {});
    assert.equal(notOurs.status, 400, notOurs.text);
    assert.match(notOurs.json.error.message, /not signed by the tenant's CA/);
    assert.equal((await raw(officer, 'rev-explicit', '0'.repeat(32), {})).status, 404);
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, operation: 'CertificateRevoke' });
    assert.ok(
      events.some((e) => e.status === 200),
      'audited',
    );
    assert.ok(
      events.some((e) => e.status === 403),
      'the refusal audited too',
    );
  });

  test('a soft-deleted certificate is revoked through /deletedcertificates, without waiting for its purge', async () => {
    const made = await issue('rev-deleted');
    const version = (await certs().getCertificate('rev-deleted')).properties.version!;
    const raw = revokeRaw;
    // Alive: the deleted route does not find it (each route finds only its own state).
    const early = await raw(officer, 'deletedcertificates', 'rev-deleted', version, {});
    assert.equal(early.status, 404, early.text);
    assert.equal(early.json.error.code, 'CertificateNotFound');
    await (await certs().beginDeleteCertificate('rev-deleted', poll)).pollUntilDone();
    // Deleted: the live route does not find it, and nothing is revoked yet.
    assert.equal((await raw(officer, 'certificates', 'rev-deleted', version, {})).status, 404);
    assert.equal((await crlChecked(made.file)).code, 0, 'a soft delete revokes nothing');
    // A Certificate User may not; an unknown version is 404; then an officer revokes it.
    const user = await vaultPrincipal(s, 'rev-deleted-user');
    await grant(s, user.id, 'Key Vault Certificate User', vaultId);
    assert.equal((await raw(user, 'deletedcertificates', 'rev-deleted', version, {})).status, 403);
    assert.equal((await raw(officer, 'deletedcertificates', 'rev-deleted', '0'.repeat(32), {})).status, 404);
    assert.equal((await crlChecked(made.file)).code, 0, 'nothing revoked by the refusals');
    // The CLI finds the deleted certificate's latest version itself.
    const r = await revokeWithCli('rev-deleted', '--deleted');
    assert.equal(r.serialNumber, made.serial.toLowerCase());
    assert.equal(r.reason, 'keyCompromise');
    assert.match(r.id, new RegExp(`/certificates/rev-deleted/${version}$`));
    const again = await raw(officer, 'deletedcertificates', 'rev-deleted', version, {});
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.reason, 'unspecified', 'what was asked; the CRL keeps the first reason');
    const checked = await crlChecked(made.file);
    assert.match(checked.out, /certificate revoked/, checked.out);
    // Still deleted and recoverable: revoking is not purging.
    assert.equal((await certs().getDeletedCertificate('rev-deleted')).properties.version, version);
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, operation: 'CertificateRevoke' });
    assert.ok(events.some((e) => e.status === 200 && e.target?.includes('rev-deleted')));
  });

  test("a deleted certificate's revoke: another tenant 404 (even its Owner), a purged one 404, a recovered one only on the live route", async () => {
    const made = await issue('rev-iso');
    const version = (await certs().getCertificate('rev-iso')).properties.version!;
    const revoke = (token: string, collection: 'certificates' | 'deletedcertificates') =>
      revokeRaw(token, collection, 'rev-iso', version, { reason: 'keyCompromise' });
    await (await certs().beginDeleteCertificate('rev-iso', poll)).pollUntilDone();
    // Another tenant's Owner: this tenant's vault does not exist for it, and nothing is revoked.
    const { other, foreign } = await foreignOwner('rev-iso');
    const theirs = await revoke(await vaultToken(s, foreign, other.id), 'deletedcertificates');
    assert.equal(theirs.status, 404, theirs.text);
    assert.equal(theirs.json.error.code, 'VaultNotFound');
    assert.doesNotMatch(theirs.text, /rev-iso|serial/i, 'nothing about the certificate');
    assert.equal((await crlChecked(made.file)).code, 0, 'not revoked by another tenant');
    // Recovered: the deleted route no longer finds it; the live route does.
    await (await certs().beginRecoverDeletedCertificate('rev-iso', poll)).pollUntilDone();
    const token = await vaultToken(s, officer);
    const gone = await revoke(token, 'deletedcertificates');
    assert.equal(gone.status, 404, gone.text);
    assert.equal(gone.json.error.code, 'CertificateNotFound');
    assert.equal(
      (await crlChecked(made.file)).code,
      0,
      'not revoked through the deleted route once recovered',
    );
    // Purged: neither route finds it (the purge itself revoked it).
    await purge('rev-iso');
    for (const collection of ['deletedcertificates', 'certificates'] as const) {
      const r = await revoke(token, collection);
      assert.equal(r.status, 404, `${collection}: ${r.text}`);
      assert.equal(r.json.error.code, 'CertificateNotFound');
    }
    // The audit: the foreign refusal is not in this tenant's log; each 404 is, with its caller.
    await s.services.audit.drain(); // refusals are recorded in the next batch
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, operation: 'CertificateRevoke' });
    const mine = events.filter((e) => e.target?.includes('/rev-iso'));
    assert.ok(mine.length >= 3, JSON.stringify(mine));
    for (const e of mine) {
      assert.equal(e.status, 404);
      assert.equal(e.callerAppId, officer.appId);
      assert.equal(e.vault, 'cavault');
    }
  });

  test('only a tenant Owner rotates the CA: others 403, no token 401; another tenant rotates only its own', async () => {
    const mgmt = `${s.info.managementResource}`;
    const rotateAs = (token?: string) =>
      s.request('POST', '/api/pki/ca/rotate', { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const tokenOf = async (p: VaultTestPrincipal, tenantId = s.info.tenantId) => {
      const r = await secretTokenRequest(
        s,
        { appId: p.appId, secret: p.secret },
        `${mgmt}/.default`,
        tenantId,
      );
      assert.equal(r.status, 200, r.text);
      return r.json.access_token as string;
    };
    const before = await s.services.certificates.ca.generations(s.info.tenantId);
    assert.equal((await rotateAs()).status, 401);
    for (const [role, scope] of [
      ['Contributor', '/'],
      ['Reader', '/'],
      ['Key Vault Administrator', '/'],
      ['Key Vault Certificates Officer', vaultId],
    ] as const) {
      const p = await vaultPrincipal(s, `rot-${role.replace(/ /g, '-')}`);
      await grant(s, p.id, role, scope);
      const r = await rotateAs(await tokenOf(p));
      assert.equal(r.status, 403, `${role} at ${scope}: ${r.text}`);
      assert.match(r.json.error.code, /Forbidden|AuthorizationFailed/, r.text);
    }
    // Another tenant's Owner: its token names its own tenant, so it rolls that tenant's CA only.
    const { other, foreign } = await foreignOwner('rot');
    const theirs = await rotateAs(await tokenOf(foreign, other.id));
    assert.equal(theirs.status, 200, theirs.text);
    assert.match(theirs.json.subject, new RegExp(`Latchkey CA ${other.id}`));
    assert.deepEqual(
      await s.services.certificates.ca.generations(s.info.tenantId),
      before,
      "this tenant's CA did not change",
    );
    // A foreign token cannot read this tenant's generations either: it sees its own.
    const list = await s.request('GET', '/api/pki/ca', {
      headers: { authorization: `Bearer ${await tokenOf(foreign, other.id)}` },
    });
    assert.equal(list.status, 200, list.text);
    assert.ok(
      list.json.value.every((g: { subject: string }) => g.subject.includes(other.id)),
      'only its own tenant',
    );
  });

  test('rotation: the old CA stays in the bundle; certificates of both verify (with CRLs); new ones by the new CA', async () => {
    const old = await issue('rot-old');
    const gen1 = (await published()).caPem;
    const rotated = cliOk(await cli.run('ca', 'rotate', '--output', 'json'), 'ca rotate').json;
    assert.equal(rotated.generation, 2);
    assert.equal(rotated.current, true);
    assert.match(rotated.subject, new RegExp(`CN=Latchkey CA ${s.info.tenantId} G2, O=Latchkey`));
    assert.equal(rotated.crlPath, `/${s.info.tenantId}/pki/crl/2`);
    const events = await s.services.audit.list({
      tenantId: s.info.tenantId,
      operation: 'CertificateAuthorityRotate',
    });
    assert.equal(events.length, 1, 'one rotation audited');
    assert.equal(events[0]!.target, `/${s.info.tenantId}/pki/ca/2`);
    assert.equal(events[0]!.callerKind, 'user');

    const fresh = await issue('rot-new');
    const text = openssl(['x509', '-noout', '-text', '-in', fresh.file]);
    assert.match(text, new RegExp(`Issuer: CN = Latchkey CA ${s.info.tenantId} G2, O = Latchkey`));
    assert.ok(text.includes(`URI:${pki()}/crl/2`), text);
    const p = await published();
    assert.equal((p.caPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'the bundle holds both CAs');
    assert.ok(p.caPem.endsWith(gen1), 'the new CA first, then the old one');
    assert.equal((p.crlPem.match(/BEGIN X509 CRL/g) ?? []).length, 2, 'a CRL for each');
    for (const f of [old.file, fresh.file]) {
      const r = verify(['-crl_check', '-CAfile', p.caFile, '-CRLfile', p.crlFile, f]);
      assert.equal(r.code, 0, `${f}: ${r.out}`);
    }
    // Only the old CA in a trust file: the new certificate does not verify (it is not the old CA's).
    const oldOnly = join(dir, 'gen1.pem');
    writeFileSync(oldOnly, gen1);
    assert.notEqual(verify(['-CAfile', oldOnly, fresh.file]).code, 0, 'signed by the new CA');
    // `ca show` lists both, the current first; `ca list` the generations.
    const shown = cliOk(await cli.run('ca', 'show', '--output', 'json'), 'ca show').json;
    assert.equal(shown.chain.length, 2);
    assert.deepEqual(
      shown.chain.map((c: { current: boolean }) => c.current),
      [true, false],
    );
    assert.match(shown.subject, / G2, O=Latchkey$/);
    const listed = cliOk(await cli.run('ca', 'list', '--output', 'json'), 'ca list').json;
    assert.deepEqual(
      listed.map((g: { generation: number; retired: string | null }) => [g.generation, g.retired !== null]),
      [
        [2, false],
        [1, true],
      ],
    );
    // Revocations go to the CRL of the CA that signed the certificate.
    await purge('rot-old');
    await purge('rot-new');
    for (const f of [old.file, fresh.file]) {
      const r = await crlChecked(f);
      assert.match(r.out, /certificate revoked/, `${f}: ${r.out}`);
    }
    const gen1Crl = openssl(
      ['crl', '-inform', 'DER', '-noout', '-text'],
      (await getBytes(s, `${pki()}/crl/1`)).body,
    );
    assert.match(gen1Crl, new RegExp(`Serial Number: ${old.serial}`, 'i'));
    assert.doesNotMatch(gen1Crl, new RegExp(fresh.serial, 'i'));
  });
});

describe('the tenant CA on a fake clock: scheduled purge revokes; a retired CA leaves the bundle when its certificates expire; CRLs refresh', () => {
  const DAY = 86_400_000;
  const clock = fakeClock(Date.UTC(2026, 2, 1, 12));
  let sv: ServiceVault;
  before(async () => {
    sv = await startServiceVault({
      clock,
      vaultName: 'cafake',
      role: 'Key Vault Certificates Officer',
      dirPrefix: 'latchkey-cafake-',
    });
  });
  after(async () => {
    await sv?.close();
  });
  const create = (name: string, months: number) =>
    sv.services.certificates.create(sv.ctx, name, {
      policy: {
        issuer: { name: 'Latchkey' },
        x509_props: { subject: `CN=${name}`, validity_months: months },
      },
    });
  const serialOf = async (name: string) =>
    openssl(
      ['x509', '-inform', 'DER', '-noout', '-serial'],
      (await sv.services.certificates.get(sv.ctx, name)).cer,
    )
      .trim()
      .replace(/^serial=/, '');
  const tenantId = () => sv.ctx.vault.tenantId;
  const crlText = async (generation?: number) =>
    openssl(
      ['crl', '-inform', 'DER', '-noout', '-text'],
      (await sv.services.certificates.ca.crl(tenantId(), generation))!,
    );
  const bundleSize = async () =>
    ((await sv.services.certificates.caCertificatePem(tenantId())) ?? '').split('BEGIN CERTIFICATE').length -
    1;

  test('the purge job revokes a deleted certificate at its purge date', async () => {
    await create('sched', 1);
    await create('short', 1);
    const serial = await serialOf('sched');
    await sv.services.certificates.delete(sv.ctx, 'sched');
    assert.doesNotMatch(await crlText(), /Serial Number/, 'deleted, not yet purged');
    clock.advance(8 * DAY); // past the vault's 7 days of retention
    assert.ok(await sv.services.jobs.runNow('certificate-purge', clock.now()), 'the purge job ran');
    const text = await crlText(1);
    assert.match(text, new RegExp(`Serial Number: ${serial}`, 'i'), text);
  });

  test('a CRL is kept an hour, then made again with the next number', async () => {
    const numberOf = (text: string) => Number(/CRL Number:\s*\n\s*(\d+)/.exec(text)?.[1]);
    const first = await sv.services.certificates.ca.crl(tenantId());
    const n = numberOf(openssl(['crl', '-inform', 'DER', '-noout', '-text'], first!));
    clock.advance(30 * 60_000);
    assert.ok(
      (await sv.services.certificates.ca.crl(tenantId()))!.equals(first!),
      'the same CRL within the hour',
    );
    clock.advance(31 * 60_000);
    const next = await crlText();
    assert.equal(numberOf(next), n + 1, next);
    const updates = /Last Update: (.+)\n\s*Next Update: (.+)\n/.exec(next)!;
    assert.equal(Date.parse(updates[2]!) - Date.parse(updates[1]!), DAY, 'valid a day');
    assert.equal(Date.parse(updates[1]!), Math.floor(clock.now() / 1000) * 1000, 'made now');
  });

  test('rotation: the retired CA stays published until the last certificate it signed expires', async () => {
    await create('old-gen', 2);
    const oldExp = (await sv.services.certificates.get(sv.ctx, 'old-gen')).exp!;
    await sv.services.certificates.ca.rotate(tenantId());
    await create('new-gen', 12);
    assert.equal(await bundleSize(), 2, 'both CAs are published');
    clock.set(oldExp - DAY);
    assert.equal(await bundleSize(), 2, 'a certificate of the old CA is still valid');
    clock.set(oldExp + 1000);
    assert.equal(await bundleSize(), 1, 'all it signed expired: only the current CA');
    const gens = await sv.services.certificates.ca.generations(tenantId());
    assert.deepEqual(
      gens.map((g) => [g.generation, g.current]),
      [
        [2, true],
        [1, false],
      ],
    );
    // Its revoked certificates have expired too: its CRL lists nothing.
    assert.doesNotMatch(await crlText(1), /Serial Number/);
  });
  test('purging a vault revokes the certificates the tenant CA signed for it', async () => {
    await create('in-vault', 12);
    const serial = await serialOf('in-vault');
    const v = sv.ctx.vault;
    await sv.services.vaults.delete(sv.ctx.caller, testMeta, {
      subscriptionId: v.subscriptionId,
      resourceGroup: 'default',
      name: v.name,
    });
    assert.doesNotMatch(await crlText(), new RegExp(serial, 'i'), 'a deleted vault can be recovered');
    clock.advance(8 * DAY);
    await sv.services.vaults.purgeDue(clock.now());
    assert.match(await crlText(), new RegExp(`Serial Number: ${serial}`, 'i'));
  });
});

/** The CA generations and revocations on PostgreSQL (migration 0020). */
describe('the tenant CA on PostgreSQL: revocation, CRL, rotation', () => {
  let s: TestServer;
  let schema: TestSchema;
  let officer: VaultTestPrincipal;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lk-cacrl-pg-'));
    schema = await createTestSchema();
    s = await startTestServer({ storageUrl: schema.url });
    const v = await putVault(s, 'capg');
    officer = await vaultPrincipal(s, 'capg-officer');
    await grant(s, officer.id, 'Key Vault Certificates Officer', v.id);
  });
  after(async () => {
    await s?.stop();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a purged certificate is revoked; after a rotation both generations verify with their CRLs', async () => {
    const client = new CertificateClient(s.vaultUrl('capg'), officer.credential, { agent: s.agent });
    const make = async (name: string) => {
      const c = await (
        await client.beginCreateCertificate(name, { issuerName: 'Latchkey', subject: `CN=${name}` }, poll)
      ).pollUntilDone();
      const f = join(dir, `${name}.pem`);
      writeFileSync(f, pemOf(c.cer!));
      return f;
    };
    const check = async (f: string) => {
      const pki = `${s.info.authority}/${s.info.tenantId}/pki`;
      writeFileSync(join(dir, 'ca.pem'), (await s.request('GET', `${pki}/ca.pem`)).text);
      writeFileSync(join(dir, 'crl.pem'), (await s.request('GET', `${pki}/crl.pem`)).text);
      return verify(['-crl_check', '-CAfile', join(dir, 'ca.pem'), '-CRLfile', join(dir, 'crl.pem'), f]);
    };
    const gone = await make('pg-gone');
    const kept = await make('pg-kept');
    assert.equal((await check(gone)).code, 0);
    await (await client.beginDeleteCertificate('pg-gone', poll)).pollUntilDone();
    await client.purgeDeletedCertificate('pg-gone');
    assert.match((await check(gone)).out, /certificate revoked/);
    assert.equal((await check(kept)).code, 0);
    const g = await s.services.certificates.ca.rotate(s.info.tenantId);
    assert.equal(g.generation, 2);
    const fresh = await make('pg-fresh');
    for (const f of [kept, fresh]) assert.equal((await check(f)).code, 0, f);
    await assert.rejects(
      // The same generation twice (two nodes at once): the second insert stores nothing.
      s.services.db.transaction(async (tx) => {
        const cur = await certificateAuthorityStore.current(tx, s.info.tenantId);
        if (!(await certificateAuthorityStore.insertIfAbsent(tx, { ...cur!, retired: null })))
          throw new Error('already there');
      }),
      /already there/,
    );
  });
});

/** Migration 0020 carries a tenant's CA made before it (0016's table) over as generation 1. */
for (const [dialect, open] of FRESH_STORES)
  test(`migration 0020 (${dialect}): an existing CA becomes generation 1, its key and certificate unchanged`, async () => {
    const { db, cleanup } = await open();
    try {
      await migrate(
        db,
        ALL_MIGRATIONS.filter((m) => m.version < 20),
      );
      await db.run("INSERT INTO tenants (id, display_name, created_at) VALUES ('t1', 'T', 1)");
      await db.run(
        'INSERT INTO certificate_authorities (tenant_id, cer, sealed_key, created_at) VALUES ($1, $2, $3, $4)',
        ['t1', Buffer.from('cer-bytes'), Buffer.from('sealed-bytes'), 5],
      );
      assert.deepEqual(
        await migrate(
          db,
          ALL_MIGRATIONS.filter((m) => m.version <= 20),
        ),
        [20],
      );
      const [ca, ...more] = await certificateAuthorityStore.all(db, 't1');
      assert.equal(more.length, 0);
      assert.equal(ca!.generation, 1);
      assert.equal(ca!.cer.toString(), 'cer-bytes');
      assert.equal(ca!.sealedKey.toString(), 'sealed-bytes', 'the sealed key, whose AAD generation 1 keeps');
      assert.equal(ca!.created, 5);
      assert.equal(ca!.retired, null);
      assert.equal(
        ca!.issuedUntil,
        253402300799000,
        'what it signed is unknown: published until its own expiry',
      );
      assert.equal(ca!.crlNumber, 0);
      await assert.rejects(db.all('SELECT * FROM certificate_authorities'), 'the old table is gone');
      // 0021 then adds the issuance records: none for what was signed before (any purge revokes it).
      assert.deepEqual(
        await migrate(
          db,
          ALL_MIGRATIONS.filter((m) => m.version <= 21),
        ),
        [21],
      );
      assert.equal(await certificateAuthorityStore.issuance(db, 't1', 1, 'aa'), undefined);
    } finally {
      await db.close();
      await cleanup();
    }
  });
