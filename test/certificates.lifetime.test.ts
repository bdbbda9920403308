import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fakeClock } from '../src/lib/clock.js';
import type { Services } from '../src/server/services.js';
import type { CertificatePolicy } from '../src/vault/certificate-policy.js';
import type { ObjectCallContext } from '../src/vault/object-guard.js';
import { type ServiceVault, startServiceVault } from './helpers/service-vault.js';

const DAY = 86_400_000;

/** Service level, fake clock: the certificate-lifetime job renews (AutoRenew) and notifies (EmailContacts). */

/** A self-signed P-256 certificate of 30 days and its key, as one PEM text (an import's value), made by openssl in `dir`. */
function selfSignedPem(dir: string, file: string, subject: string): string {
  const key = join(dir, `${file}.key`);
  const crt = join(dir, `${file}.crt`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      key,
      '-out',
      crt,
      '-subj',
      subject,
      '-days',
      '30',
    ]),
    { stdio: 'pipe' },
  );
  return readFileSync(crt, 'utf8') + readFileSync(key, 'utf8');
}

describe('certificates: lifetime actions on schedule (fake clock)', () => {
  let sv: ServiceVault;
  let dir: string;
  let services: Services;
  let ctx: ObjectCallContext;
  const clock = fakeClock(Date.UTC(2026, 0, 10, 12));

  before(async () => {
    sv = await startServiceVault({
      clock,
      vaultName: 'lifevault',
      role: 'Key Vault Administrator',
      dirPrefix: 'latchkey-certlife-',
    });
    ({ dir, services, ctx } = sv);
  });
  after(async () => {
    await sv?.close();
  });

  const events = (operation: string) => sv.events(operation);
  const versions = async (name: string) => (await services.certificates.listVersions(ctx, name, {})).items;
  const run = async () =>
    assert.ok(
      await services.jobs.runNow('certificate-lifetime', clock.now()),
      "await services.jobs.runNow('certificate-lifetime', clock.now())",
    );

  test('AutoRenew N days before expiry (Self, then Latchkey): a new version by the issuer, once; EmailContacts at N %: one event', async () => {
    const created = clock.now();
    await services.certificates.create(ctx, 'renew-self', {
      policy: {
        issuer: { name: 'Self' },
        x509_props: { subject: 'CN=renew-self', validity_months: 1 },
        lifetime_actions: [{ trigger: { days_before_expiry: 10 }, action: { action_type: 'AutoRenew' } }],
      },
    });
    await services.certificates.create(ctx, 'renew-ca', {
      policy: {
        issuer: { name: 'Latchkey' },
        key_props: { kty: 'EC' },
        x509_props: { subject: 'CN=renew-ca', sans: { dns_names: ['renew-ca.example'] }, validity_months: 1 },
        lifetime_actions: [{ trigger: { days_before_expiry: 10 }, action: { action_type: 'AutoRenew' } }],
      },
    });
    await services.certificates.create(ctx, 'notify', {
      policy: {
        issuer: { name: 'Self' },
        x509_props: { subject: 'CN=notify', validity_months: 2 },
        lifetime_actions: [
          { trigger: { lifetime_percentage: 50 }, action: { action_type: 'EmailContacts' } },
        ],
      },
    });
    const first = await services.certificates.get(ctx, 'renew-self');

    // Not due yet: nothing happens.
    clock.advance(20 * DAY);
    await run();
    assert.equal((await versions('renew-self')).length, 1);
    assert.equal((await events('CertificateNearExpiry')).length, 0);

    // 10 days before expiry (a month from creation): renewed through the issuer.
    clock.set(first.exp! - 10 * DAY + 1000);
    await run();
    const renewed = await services.certificates.get(ctx, 'renew-self');
    assert.notEqual(renewed.version, first.version);
    assert.ok(renewed.exp! > first.exp!, 'the new version lasts longer');
    assert.equal(renewed.policy.issuer.name, 'Self');
    assert.equal((await versions('renew-self')).length, 2);
    const ca = await services.certificates.get(ctx, 'renew-ca');
    assert.equal((await versions('renew-ca')).length, 2);
    const issuer = execFileSync(
      'openssl',
      ['x509', '-inform', 'DER', '-noout', '-issuer', '-ext', 'subjectAltName'],
      {
        input: ca.cer,
      },
    ).toString();
    assert.match(issuer, /Latchkey CA/);
    assert.match(issuer, /DNS:renew-ca\.example/);
    // Its key and secret follow (the secret cache hears of it).
    assert.equal((await services.keys.get(ctx, 'renew-self')).version, renewed.version);
    const renewEvents = await events('CertificateRenew');
    assert.equal(renewEvents.length, 2);
    const selfEvent = renewEvents.find((e) => e.target.includes('/renew-self/'))!;
    assert.equal(selfEvent.caller_kind, 'system');
    assert.match(selfEvent.target, new RegExp(`/certificates/renew-self/${renewed.version}$`));
    assert.equal(JSON.parse(selfEvent.details!).previous, first.version);

    // Past 50 % of the two-month certificate: the near-expiry event, once.
    clock.set(created + 35 * DAY);
    await run();
    await run();
    const near = await events('CertificateNearExpiry');
    assert.equal(near.length, 1);
    assert.match(near[0]!.target, /\/certificates\/notify\//);
    // The renewed versions' own triggers (10 days before their expiry) are still ahead: nothing more.
    assert.equal((await versions('renew-self')).length, 2);
    assert.equal((await events('CertificateRenew')).length, 2);
  });

  test('AutoRenew of an imported (issuer Unknown) certificate: not renewed, one CertificateRenewFailed event', async () => {
    const pem = selfSignedPem(dir, 'imp', '/CN=imp');
    await services.certificates.import(ctx, 'imported', {
      value: pem,
      policy: {
        lifetime_actions: [{ trigger: { days_before_expiry: 5 }, action: { action_type: 'AutoRenew' } }],
      },
    });
    const cert = await services.certificates.get(ctx, 'imported');
    clock.set(cert.exp! - DAY);
    await run();
    await run();
    assert.equal((await versions('imported')).length, 1);
    const failed = (await events('CertificateRenewFailed')).filter((e) => e.target.includes('/imported/'));
    assert.equal(failed.length, 1);
    assert.match(JSON.parse(failed[0]!.details!).reason, /Unknown/);
  });

  test('reuse_key: AutoRenew and a create keep the current key; by default a renewal makes a new key', async () => {
    const policy = (reuse: boolean) => ({
      issuer: { name: 'Self' },
      key_props: { kty: 'EC', crv: 'P-256', reuse_key: reuse },
      x509_props: { subject: 'CN=reuse', validity_months: 1 },
      lifetime_actions: [{ trigger: { days_before_expiry: 10 }, action: { action_type: 'AutoRenew' } }],
    });
    await services.certificates.create(ctx, 'reuse', { policy: policy(true) });
    await services.certificates.create(ctx, 'fresh', { policy: policy(false) });
    const key = async (name: string) => (await services.keys.get(ctx, name)).jwk;
    /** The certificate's public key (from its X.509) is its key's. */
    const certKey = async (name: string) => {
      const c = await services.certificates.get(ctx, name);
      const j = new X509Certificate(c.cer).publicKey.export({ format: 'jwk' });
      return { version: c.version, x: j.x };
    };
    const first = await services.certificates.get(ctx, 'reuse');
    const reuseKey = await key('reuse');
    const freshKey = await key('fresh');

    clock.set(first.exp! - 10 * DAY + 1000);
    await run();
    const renewed = await certKey('reuse');
    assert.notEqual(renewed.version, first.version, 'renewed');
    assert.deepEqual(await key('reuse'), reuseKey, 'reuse_key: the same key pair');
    assert.equal(renewed.x, (reuseKey as { x: string }).x);
    assert.equal((await versions('fresh')).length, 2);
    assert.notDeepEqual(await key('fresh'), freshKey, 'default: a new key pair');
    assert.equal((await certKey('fresh')).x, ((await key('fresh')) as { x: string }).x);

    // A new version through create (the current policy): the same key again.
    await services.certificates.create(ctx, 'reuse', {});
    assert.equal((await versions('reuse')).length, 3);
    assert.deepEqual(await key('reuse'), reuseKey);
    // A policy of another curve cannot keep it: a new P-384 key; reuse_key false: a new key.
    await services.certificates.create(ctx, 'reuse', {
      policy: { ...policy(true), key_props: { kty: 'EC', crv: 'P-384', reuse_key: true } },
    });
    const p384 = await key('reuse');
    assert.equal((p384 as { crv: string }).crv, 'P-384');
    await services.certificates.create(ctx, 'reuse', {
      policy: { ...policy(false), key_props: { kty: 'EC', crv: 'P-384', reuse_key: false } },
    });
    assert.notDeepEqual(await key('reuse'), p384);
  });

  const refused = (pattern: RegExp) => (err: { status?: number; code?: string; message: string }) => {
    assert.equal(err.status, 400, err.message);
    assert.equal(err.code, 'BadParameter');
    assert.match(err.message, pattern);
    return true;
  };

  test("a days_before_expiry trigger longer than Azure's bound (validity_months × 27) is refused: create, import, PATCH; nothing is made", async () => {
    const loop = {
      issuer: { name: 'Self' },
      x509_props: { subject: 'CN=loop1', validity_months: 1 },
      key_props: { kty: 'EC', crv: 'P-256' },
      lifetime_actions: [{ trigger: { days_before_expiry: 40 }, action: { action_type: 'AutoRenew' } }],
    };
    const tooLong = /days_before_expiry 40 is longer than .*27 days/;
    await assert.rejects(services.certificates.create(ctx, 'loop1', { policy: loop }), refused(tooLong));
    await assert.rejects(services.certificates.get(ctx, 'loop1'), { status: 404 });
    await assert.rejects(services.keys.get(ctx, 'loop1'), { status: 404 });
    await assert.rejects(services.secrets.get(ctx, 'loop1'), { status: 404 });
    // The bound itself is allowed (a month is at least 28 days: the trigger lies ahead).
    const atBound = (days: number, months: number) => ({
      ...loop,
      x509_props: { subject: 'CN=bound', validity_months: months },
      lifetime_actions: [{ trigger: { days_before_expiry: days }, action: { action_type: 'EmailContacts' } }],
    });
    await services.certificates.create(ctx, 'bound', { policy: atBound(27, 1) });
    await services.certificates.create(ctx, 'bound', { policy: atBound(54, 2) });
    const before = await services.certificates.getPolicy(ctx, 'bound');
    // PATCH of the policy: a trigger too long, or a validity too short for the current trigger.
    await assert.rejects(
      services.certificates.updatePolicy(ctx, 'bound', {
        lifetime_actions: [{ trigger: { days_before_expiry: 55 }, action: { action_type: 'AutoRenew' } }],
      }),
      refused(/days_before_expiry 55 is longer than .*54 days/),
    );
    await assert.rejects(
      services.certificates.updatePolicy(ctx, 'bound', { x509_props: { validity_months: 1 } }),
      refused(/days_before_expiry 54 is longer than .*27 days/),
    );
    // PATCH of the certificate with a policy: refused whole (its tags are not changed either).
    await assert.rejects(
      services.certificates.update(ctx, 'bound', undefined, {
        tags: { changed: 'yes' },
        policy: { x509_props: { validity_months: 1 } },
      }),
      refused(/days_before_expiry 54 is longer than/),
    );
    assert.deepEqual(await services.certificates.getPolicy(ctx, 'bound'), before);
    assert.equal((await services.certificates.get(ctx, 'bound')).tags, null);
    // Import: the validity is the certificate's (a month here).
    const pem = selfSignedPem(dir, 'loop', '/CN=loop-imp');
    await assert.rejects(
      services.certificates.import(ctx, 'loop-imp', {
        value: pem,
        policy: { lifetime_actions: loop.lifetime_actions },
      }),
      refused(tooLong),
    );
    await assert.rejects(services.certificates.get(ctx, 'loop-imp'), { status: 404 });
  });

  test('a policy stored before the bound (a trigger longer than the validity) renews at most once: a version born due is not renewed', async () => {
    const t0 = clock.now();
    await services.certificates.create(ctx, 'stored-loop', {
      policy: {
        issuer: { name: 'Self' },
        key_props: { kty: 'EC', crv: 'P-256' },
        x509_props: { subject: 'CN=stored-loop', validity_months: 2 },
        lifetime_actions: [{ trigger: { days_before_expiry: 10 }, action: { action_type: 'AutoRenew' } }],
      },
    });
    const first = await services.certificates.get(ctx, 'stored-loop');
    // As an older Latchkey stored it (no bound): a month's validity, renewal 40 days before expiry.
    const stored: CertificatePolicy = {
      ...first.policy,
      x509_props: { ...first.policy.x509_props, validity_months: 1 },
      lifetime_actions: [{ trigger: { days_before_expiry: 40 }, action: { action_type: 'AutoRenew' } }],
    };
    await services.db.run(
      'UPDATE certificate_policies SET policy = $1 WHERE vault_id = $2 AND name_lower = $3',
      [JSON.stringify(stored), ctx.vault.id, 'stored-loop'],
    );
    const renewals = async () =>
      (await events('CertificateRenew')).filter((e) => e.target.includes('/stored-loop/')).length;

    // The first version (two months) is due 40 days before its expiry, after its creation: renewed.
    clock.set(first.exp! - 40 * 86_400_000 + 1000);
    assert.ok(clock.now() > t0);
    await run();
    assert.equal(await renewals(), 1);
    const second = await services.certificates.get(ctx, 'stored-loop');
    assert.notEqual(second.version, first.version);
    // The second (one month) was due the moment it was made: each minute, then each day, nothing more.
    for (let i = 0; i < 5; i++) {
      clock.advance(60_000);
      await run();
    }
    for (let i = 0; i < 5; i++) {
      clock.advance(86_400_000);
      await run();
    }
    assert.equal(await renewals(), 1, 'one renewal');
    assert.equal((await versions('stored-loop')).length, 2);
    assert.equal((await services.certificates.get(ctx, 'stored-loop')).version, second.version);
    const failed = (await events('CertificateRenewFailed')).filter((e) => e.target.includes('/stored-loop/'));
    assert.equal(failed.length, 1, 'said once');
    assert.match(failed[0]!.target, new RegExp(`/${second.version}$`));
    assert.match(JSON.parse(failed[0]!.details!).reason, /already due when this version was made/);
    // The stored policy still reads, and a PATCH that leaves its trigger and validity alone is taken.
    const read = await services.certificates.getPolicy(ctx, 'stored-loop');
    assert.equal(read.policy.lifetime_actions[0]!.trigger.days_before_expiry, 40);
    await services.certificates.updatePolicy(ctx, 'stored-loop', { attributes: { enabled: true } });
    // Its backup restores as it was (after a purge), and the job does not loop on it either.
    const blob = await services.certificates.backup(ctx, 'stored-loop');
    await services.certificates.delete(ctx, 'stored-loop');
    await services.certificates.purge(ctx, 'stored-loop');
    const restored = await services.certificates.restore(ctx, blob);
    assert.equal(restored.policy.lifetime_actions[0]!.trigger.days_before_expiry, 40);
    for (let i = 0; i < 3; i++) {
      clock.advance(60_000);
      await run();
    }
    assert.equal(await renewals(), 1);
    assert.equal((await versions('stored-loop')).length, 2);
  });
});
