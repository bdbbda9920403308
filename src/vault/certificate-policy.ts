import { LatchkeyError } from '../errors/index.js';

/**
 * A certificate policy as Key Vault shapes it on the wire (snake_case sections, as in
 * Azure's REST spec `CertificatePolicy`), validated and with Azure's defaults filled in.
 * It is stored as this JSON; `attributes` (enabled, created, updated) are added by the views.
 */
export const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];
export const CERT_RSA_SIZES = [2048, 3072, 4096] as const;
export const CERT_CURVES = ['P-256', 'P-384', 'P-521'] as const;
export type CertCurve = (typeof CERT_CURVES)[number];
export const PKCS12 = 'application/x-pkcs12';
export const PEM = 'application/x-pem-file';
export type SecretContentType = typeof PKCS12 | typeof PEM;

export interface LifetimeAction {
  trigger: { lifetime_percentage?: number; days_before_expiry?: number };
  action: { action_type: 'AutoRenew' | 'EmailContacts' };
}

export interface CertificatePolicy {
  key_props: {
    exportable: boolean;
    kty: 'RSA' | 'EC';
    key_size?: number;
    crv?: CertCurve;
    reuse_key: boolean;
  };
  secret_props: { contentType: SecretContentType };
  x509_props: {
    subject: string;
    sans?: { dns_names?: string[]; emails?: string[]; upns?: string[] };
    ekus: string[];
    key_usage: KeyUsage[];
    validity_months: number;
  };
  lifetime_actions: LifetimeAction[];
  issuer: { name: string; cty?: string; cert_transparency?: boolean };
  /** The policy's own `attributes.enabled`. */
  enabled: boolean;
}

/** What a caller may send: every section optional (create fills defaults, update merges). */
export interface PolicyInput {
  key_props?:
    | {
        exportable?: boolean | undefined;
        kty?: string | undefined;
        key_size?: number | undefined;
        crv?: string | undefined;
        reuse_key?: boolean | undefined;
      }
    | null
    | undefined;
  secret_props?: { contentType?: string | undefined } | null | undefined;
  x509_props?:
    | {
        subject?: string | undefined;
        sans?:
          | { dns_names?: string[] | undefined; emails?: string[] | undefined; upns?: string[] | undefined }
          | null
          | undefined;
        ekus?: string[] | undefined;
        key_usage?: string[] | undefined;
        validity_months?: number | undefined;
      }
    | null
    | undefined;
  lifetime_actions?:
    | Array<{
        trigger?:
          | { lifetime_percentage?: number | undefined; days_before_expiry?: number | undefined }
          | undefined;
        action?: { action_type?: string | undefined } | undefined;
      }>
    | null
    | undefined;
  issuer?:
    | { name?: string | undefined; cty?: string | undefined; cert_transparency?: boolean | undefined }
    | null
    | undefined;
  attributes?: { enabled?: boolean | undefined } | null | undefined;
}

/** The limits of a policy's lists and strings. */
export const POLICY_LIMITS = Object.freeze({
  subjectChars: 1024,
  sans: 100,
  sanChars: 253,
  ekus: 20,
  validityMonthsMax: 1200,
  lifetimeActions: 1,
});

const bad = (message: string) => new LatchkeyError('BadParameter', message);
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const OID_RE = /^[0-2](\.(0|[1-9]\d{0,9})){1,30}$/;
const DNS_RE =
  /^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,189}$/;

function checkList(what: string, list: string[] | undefined, re: RegExp, max: number): string[] | undefined {
  if (list === undefined) return undefined;
  if (list.length > max) throw bad(`x509_props.${what} has at most ${max} entries.`);
  for (const s of list)
    if (s.length === 0 || s.length > POLICY_LIMITS.sanChars || !re.test(s))
      throw bad(`x509_props.${what} has an entry that is not valid.`);
  return list;
}

/** Azure's subject: an X.500 name such as `CN=example.com, O=Contoso` (parsed for real by the issuer). */
function checkSubject(subject: string | undefined, hasSans: boolean): string {
  const s = (subject ?? '').trim();
  if (s.length > POLICY_LIMITS.subjectChars)
    throw bad(`x509_props.subject is longer than ${POLICY_LIMITS.subjectChars} characters.`);
  if (s.length === 0 && !hasSans)
    throw bad('The policy needs x509_props.subject or subject alternative names (x509_props.sans).');
  if (s.length > 0 && !/^[A-Za-z][A-Za-z0-9.]*\s*=/.test(s))
    throw bad("x509_props.subject must be an X.500 name such as 'CN=example.com'.");
  return s;
}

function checkKeyProps(k: NonNullable<PolicyInput['key_props']>, prev?: CertificatePolicy['key_props']) {
  const kty = (k.kty ?? prev?.kty ?? 'RSA').replace(/-HSM$/, '');
  if (k.kty?.endsWith('-HSM')) throw bad('HSM-protected certificate keys are not supported by this vault.');
  if (kty !== 'RSA' && kty !== 'EC') throw bad("key_props.kty must be 'RSA' or 'EC'.");
  const exportable = k.exportable ?? prev?.exportable ?? true;
  const reuse_key = k.reuse_key ?? prev?.reuse_key ?? false;
  if (kty === 'RSA') {
    if (k.crv !== undefined) throw bad('key_props.crv applies to EC keys only.');
    const size = k.key_size ?? (prev?.kty === 'RSA' ? prev.key_size : undefined) ?? 2048;
    if (!(CERT_RSA_SIZES as readonly number[]).includes(size))
      throw bad(`key_props.key_size ${size} is not supported for RSA: use ${CERT_RSA_SIZES.join(', ')}.`);
    return { exportable, kty, key_size: size, reuse_key } as const;
  }
  const crv = k.crv ?? (prev?.kty === 'EC' ? prev.crv : undefined) ?? 'P-256';
  if (!(CERT_CURVES as readonly string[]).includes(crv))
    throw bad(`key_props.crv '${crv.slice(0, 20)}' is not supported: use ${CERT_CURVES.join(', ')}.`);
  const sizes: Record<string, number> = { 'P-256': 256, 'P-384': 384, 'P-521': 521 };
  if (k.key_size !== undefined && k.key_size !== sizes[crv])
    throw bad(`key_props.key_size does not match the curve ${crv}.`);
  return { exportable, kty, crv: crv as CertCurve, reuse_key } as const;
}

function checkLifetimeActions(list: NonNullable<PolicyInput['lifetime_actions']>): LifetimeAction[] {
  if (list.length > POLICY_LIMITS.lifetimeActions) throw bad('A policy has at most one lifetime action.');
  return list.map((a) => {
    const type = a.action?.action_type;
    if (type !== 'AutoRenew' && type !== 'EmailContacts')
      throw bad("lifetime_actions[].action.action_type must be 'AutoRenew' or 'EmailContacts'.");
    const pct = a.trigger?.lifetime_percentage;
    const days = a.trigger?.days_before_expiry;
    if ((pct === undefined) === (days === undefined))
      throw bad('A lifetime action trigger has either lifetime_percentage or days_before_expiry.');
    if (pct !== undefined && (!Number.isInteger(pct) || pct < 1 || pct > 99))
      throw bad('lifetime_percentage must be an integer from 1 to 99.');
    if (days !== undefined && (!Number.isInteger(days) || days < 1))
      throw bad('days_before_expiry must be a positive whole number of days.');
    return {
      trigger: pct !== undefined ? { lifetime_percentage: pct } : { days_before_expiry: days as number },
      action: { action_type: type },
    };
  });
}

/**
 * Azure's bound on a `days_before_expiry` trigger: from 1 to `validity_in_months` × 27 (the REST
 * spec's `Trigger.days_before_expiry`, Key Vault data plane `certificates.json`, as the SDKs
 * repeat it: "Value should be between 1 and validity_in_months multiplied by 27. If
 * validity_in_months is 36, then value should be between 1 and 972 (36 * 27)"). A month is at
 * least 28 days, so a new version's trigger always lies after it is made; a longer one would be
 * due at once and renew on every run of the lifetime job.
 */
export const TRIGGER_DAYS_PER_MONTH = 27;

function checkTriggersFit(actions: LifetimeAction[], validityMonths: number): void {
  const max = validityMonths * TRIGGER_DAYS_PER_MONTH;
  for (const a of actions) {
    const days = a.trigger.days_before_expiry;
    if (days !== undefined && days > max)
      throw bad(
        `lifetime_actions[].trigger.days_before_expiry ${days} is longer than the certificate's validity allows: at most ${max} days (x509_props.validity_months ${validityMonths} × ${TRIGGER_DAYS_PER_MONTH}).`,
      );
  }
}

/**
 * A complete, valid policy from a caller's input, over `prev` (a policy update merges the
 * sections given over the current policy; a create starts from Azure's defaults).
 *
 * A `days_before_expiry` trigger is held to Azure's bound whenever the input sets the lifetime
 * actions or the validity. A stored policy from before the bound keeps its trigger through a
 * PATCH of other sections, and a backup's policy is restored as it was (`restoring`): the
 * lifetime job does not renew a version that was due when it was made (certificate-lifetime.ts).
 */
export function checkPolicy(
  input: PolicyInput,
  prev?: CertificatePolicy,
  opts: { restoring?: boolean } = {},
): CertificatePolicy {
  const key_props = checkKeyProps(input.key_props ?? {}, prev?.key_props);
  const ct = input.secret_props?.contentType ?? prev?.secret_props.contentType ?? PKCS12;
  if (ct !== PKCS12 && ct !== PEM) throw bad(`secret_props.contentType must be '${PKCS12}' or '${PEM}'.`);
  const x = input.x509_props ?? {};
  const sansIn = x.sans === undefined ? prev?.x509_props.sans : (x.sans ?? undefined);
  const dns_names = checkList('sans.dns_names', sansIn?.dns_names, DNS_RE, POLICY_LIMITS.sans);
  const emails = checkList('sans.emails', sansIn?.emails, EMAIL_RE, POLICY_LIMITS.sans);
  const upns = checkList('sans.upns', sansIn?.upns, EMAIL_RE, POLICY_LIMITS.sans);
  const sans = {
    ...(dns_names?.length ? { dns_names } : {}),
    ...(emails?.length ? { emails } : {}),
    ...(upns?.length ? { upns } : {}),
  };
  const hasSans = Object.keys(sans).length > 0;
  const subject = checkSubject(x.subject ?? prev?.x509_props.subject, hasSans);
  const ekus = checkList('ekus', x.ekus, OID_RE, POLICY_LIMITS.ekus) ??
    prev?.x509_props.ekus ?? [SERVER_AUTH, CLIENT_AUTH];
  const usagesIn = x.key_usage ?? prev?.x509_props.key_usage;
  const key_usage: KeyUsage[] = [];
  for (const u of usagesIn ??
    (key_props.kty === 'RSA' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'])) {
    const known = KEY_USAGES.find((k) => k.toLowerCase() === u.toLowerCase());
    if (!known)
      throw bad(`x509_props.key_usage '${u.slice(0, 30)}' is not valid: use ${KEY_USAGES.join(', ')}.`);
    if (!key_usage.includes(known)) key_usage.push(known);
  }
  const validity_months = x.validity_months ?? prev?.x509_props.validity_months ?? 12;
  if (
    !Number.isInteger(validity_months) ||
    validity_months < 1 ||
    validity_months > POLICY_LIMITS.validityMonthsMax
  )
    throw bad(`x509_props.validity_months must be an integer from 1 to ${POLICY_LIMITS.validityMonthsMax}.`);
  const lifetime_actions = input.lifetime_actions
    ? checkLifetimeActions(input.lifetime_actions)
    : (prev?.lifetime_actions ?? [
        { trigger: { lifetime_percentage: 80 }, action: { action_type: 'EmailContacts' } },
      ]);
  if (!opts.restoring && (input.lifetime_actions || x.validity_months !== undefined))
    checkTriggersFit(lifetime_actions, validity_months);
  const issuerName = (input.issuer?.name ?? prev?.issuer.name ?? '').trim();
  if (issuerName.length === 0)
    throw bad('The policy needs issuer.name (Self for a self-signed certificate).');
  if (issuerName.length > 127) throw bad('issuer.name is longer than 127 characters.');
  const cty = input.issuer?.cty ?? prev?.issuer.cty;
  const cert_transparency = input.issuer?.cert_transparency ?? prev?.issuer.cert_transparency;
  if (cty !== undefined && cty.length > 64) throw bad('issuer.cty is longer than 64 characters.');
  return {
    key_props,
    secret_props: { contentType: ct },
    x509_props: { subject, ...(hasSans ? { sans } : {}), ekus, key_usage, validity_months },
    lifetime_actions,
    issuer: {
      name: /^self$/i.test(issuerName)
        ? 'Self'
        : /^unknown$/i.test(issuerName)
          ? 'Unknown'
          : /^latchkey$/i.test(issuerName)
            ? 'Latchkey'
            : issuerName,
      ...(cty !== undefined ? { cty } : {}),
      ...(cert_transparency !== undefined ? { cert_transparency } : {}),
    },
    enabled: input.attributes?.enabled ?? prev?.enabled ?? true,
  };
}
