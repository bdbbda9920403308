import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { type Ctx, ctx } from '../context.js';
import { CliError } from '../errors.js';
import { isoSeconds, parseBool, parseTags, positiveInt, show } from './arm.js';
import { issuerCommands } from './keyvault-certificate-issuer.js';
// duplicate-ok: the kind's CLI is built on keyvault-object.ts as keyvault-secret.ts is: the same imports.
import {
  attributesView,
  deletedView,
  lifecycleCommands,
  listCommands,
  named as namedObject,
  type ObjectCli,
  seg,
  type TargetOptions,
  target as targetObject,
  vaultWideCommands,
  type WireAttributes,
} from './keyvault-object.js';
import { type VaultEndpoint, vaultCall, vaultCallOrNone } from './vault-client.js';

/** A certificate policy on the wire (Azure's REST shape, snake_case sections). */
interface WirePolicy {
  id?: string;
  key_props?: { exportable?: boolean; kty?: string; key_size?: number; crv?: string; reuse_key?: boolean };
  secret_props?: { contentType?: string };
  x509_props?: {
    subject?: string;
    sans?: { dns_names?: string[]; emails?: string[]; upns?: string[] };
    ekus?: string[];
    key_usage?: string[];
    validity_months?: number;
  };
  lifetime_actions?: {
    trigger?: { lifetime_percentage?: number; days_before_expiry?: number };
    action?: { action_type?: string };
  }[];
  issuer?: { name?: string; cty?: string; cert_transparency?: boolean };
  attributes?: { enabled?: boolean; created?: number; updated?: number };
}
interface CertificateBundle {
  id: string;
  kid?: string;
  sid?: string;
  x5t?: string;
  cer?: string;
  contentType?: string;
  attributes?: WireAttributes;
  tags?: Record<string, string> | null;
  policy?: WirePolicy;
  recoveryId?: string;
  deletedDate?: number;
  scheduledPurgeDate?: number;
}
interface PendingOperation {
  id: string;
  issuer?: { name?: string; cty?: string; cert_transparency?: boolean };
  csr?: string;
  cancellation_requested?: boolean;
  status?: string;
  status_details?: string;
  error?: { code: string; message: string } | null;
  target?: string;
  request_id?: string;
}

/** `https://{vault}/certificates/{name}[/{version}]` → its parts. */
const partsOf = (id: string) => {
  const [, , name, version] = new URL(id).pathname.split('/');
  return { name: name ?? '', version: version ?? '' };
};
const b64 = (s: string | undefined) =>
  s === undefined ? null : Buffer.from(s, 'base64url').toString('base64');

/** az's shape of a policy (the camelCase sections az prints and takes). */
function policyView(p: WirePolicy) {
  const k = p.key_props ?? {};
  const x = p.x509_props ?? {};
  const a = p.attributes ?? {};
  return {
    attributes: {
      created: isoSeconds(a.created),
      enabled: a.enabled ?? true,
      expires: null,
      notBefore: null,
      updated: isoSeconds(a.updated),
    },
    id: p.id ?? null,
    issuerParameters: {
      certificateTransparency: p.issuer?.cert_transparency ?? null,
      certificateType: p.issuer?.cty ?? null,
      name: p.issuer?.name ?? null,
    },
    keyProperties: {
      curve: k.crv ?? null,
      exportable: k.exportable ?? null,
      keySize: k.key_size ?? null,
      keyType: k.kty ?? null,
      reuseKey: k.reuse_key ?? null,
    },
    lifetimeActions: (p.lifetime_actions ?? []).map((l) => ({
      action: { actionType: l.action?.action_type ?? null },
      trigger: {
        daysBeforeExpiry: l.trigger?.days_before_expiry ?? null,
        lifetimePercentage: l.trigger?.lifetime_percentage ?? null,
      },
    })),
    secretProperties: { contentType: p.secret_props?.contentType ?? null },
    x509CertificateProperties: {
      ekus: x.ekus ?? null,
      keyUsage: x.key_usage ?? null,
      subject: x.subject ?? null,
      subjectAlternativeNames: x.sans
        ? { dnsNames: x.sans.dns_names ?? null, emails: x.sans.emails ?? null, upns: x.sans.upns ?? null }
        : null,
      validityInMonths: x.validity_months ?? null,
    },
  };
}

/** az's shape of a certificate (`cer` and the thumbprint in base64, times ISO, `name`). */
function view(b: CertificateBundle) {
  const thumb = b.x5t === undefined ? null : Buffer.from(b.x5t, 'base64url');
  return {
    attributes: attributesView(b.attributes),
    cer: b64(b.cer),
    contentType: b.contentType ?? null,
    ...deletedView(b),
    id: b.id,
    kid: b.kid ?? null,
    name: partsOf(b.id).name,
    policy: b.policy ? policyView(b.policy) : null,
    sid: b.sid ?? null,
    tags: b.tags ?? null,
    x509Thumbprint: thumb ? thumb.toString('base64') : null,
    x509ThumbprintHex: thumb ? thumb.toString('hex').toUpperCase() : null,
  };
}
type View = ReturnType<typeof view>;
const row = (v: View) => ({
  Name: v.name,
  Version: partsOf(v.id).version || null,
  Thumbprint: v.x509ThumbprintHex,
  Enabled: v.attributes.enabled,
  Expires: v.attributes.expires,
  ...('deletedDate' in v ? { DeletedDate: v.deletedDate, ScheduledPurgeDate: v.scheduledPurgeDate } : {}),
});
const CERTIFICATE: ObjectCli<CertificateBundle, View> = {
  collection: 'certificates',
  withId: true,
  view,
  row,
};

/** az's shape of a pending operation (`CertificateOperation`). */
const operationView = (o: PendingOperation) => ({
  cancellationRequested: o.cancellation_requested ?? false,
  csr: o.csr ?? null,
  error: o.error ?? null,
  id: o.id,
  issuerParameters: {
    certificateTransparency: o.issuer?.cert_transparency ?? null,
    certificateType: o.issuer?.cty ?? null,
    name: o.issuer?.name ?? null,
  },
  name: partsOf(o.id).name,
  requestId: o.request_id ?? null,
  status: o.status ?? null,
  statusDetails: o.status_details ?? null,
  target: o.target ?? null,
});

/** The policy `az keyvault certificate get-default-policy` prints (az 2.45's, in its key order). */
export const AZ_DEFAULT_POLICY = {
  issuerParameters: { certificateTransparency: null, name: 'Self' },
  keyProperties: { curve: null, exportable: true, keySize: 2048, keyType: 'RSA', reuseKey: true },
  lifetimeActions: [{ action: { actionType: 'AutoRenew' }, trigger: { daysBeforeExpiry: 90 } }],
  secretProperties: { contentType: 'application/x-pkcs12' },
  x509CertificateProperties: {
    keyUsage: [
      'cRLSign',
      'dataEncipherment',
      'digitalSignature',
      'keyEncipherment',
      'keyAgreement',
      'keyCertSign',
    ],
    subject: 'CN=CLIGetDefaultPolicy',
    validityInMonths: 12,
  },
} as const;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
/** A field by any of its spellings (`keyProperties`, `key_properties`, `key_props`, …). */
const pick = (o: Json | undefined, ...names: string[]): unknown => {
  if (!o) return undefined;
  const want = new Set(names.map((n) => n.replaceAll('_', '').toLowerCase()));
  for (const [k, v] of Object.entries(o)) if (want.has(k.replaceAll('_', '').toLowerCase())) return v;
  return undefined;
};
const defined = (o: Json): Json => Object.fromEntries(Object.entries(o).filter(([, v]) => v != null));

/**
 * A policy as az takes it (its camelCase or snake_case model names, as `get-default-policy`
 * prints) or as the REST API takes it (`key_props`, `x509_props`, …) → the REST shape.
 */
export function policyToWire(input: unknown): WirePolicy {
  const p = obj(input);
  if (!p) throw new CliError('--policy must be a JSON object', 2);
  const k = obj(pick(p, 'keyProperties', 'key_props'));
  const s = obj(pick(p, 'secretProperties', 'secret_props'));
  const x = obj(pick(p, 'x509CertificateProperties', 'x509_props'));
  const sans = obj(pick(x, 'subjectAlternativeNames', 'sans'));
  const i = obj(pick(p, 'issuerParameters', 'issuer'));
  const actions = pick(p, 'lifetimeActions');
  return defined({
    key_props: k
      ? defined({
          exportable: pick(k, 'exportable'),
          kty: pick(k, 'keyType', 'kty'),
          key_size: pick(k, 'keySize'),
          crv: pick(k, 'curve', 'crv'),
          reuse_key: pick(k, 'reuseKey'),
        })
      : undefined,
    secret_props: s ? defined({ contentType: pick(s, 'contentType') }) : undefined,
    x509_props: x
      ? defined({
          subject: pick(x, 'subject'),
          sans: sans
            ? defined({
                dns_names: pick(sans, 'dnsNames'),
                emails: pick(sans, 'emails'),
                upns: pick(sans, 'upns'),
              })
            : undefined,
          ekus: pick(x, 'ekus'),
          key_usage: pick(x, 'keyUsage'),
          validity_months: pick(x, 'validityInMonths', 'validityMonths'),
        })
      : undefined,
    lifetime_actions: Array.isArray(actions)
      ? actions.map((a) => {
          const t = obj(pick(obj(a), 'trigger'));
          const ac = obj(pick(obj(a), 'action'));
          return defined({
            trigger: t
              ? defined({
                  lifetime_percentage: pick(t, 'lifetimePercentage'),
                  days_before_expiry: pick(t, 'daysBeforeExpiry'),
                })
              : undefined,
            action: ac ? defined({ action_type: pick(ac, 'actionType') }) : undefined,
          });
        })
      : undefined,
    issuer: i
      ? defined({
          name: pick(i, 'name'),
          cty: pick(i, 'certificateType', 'cty'),
          cert_transparency: pick(i, 'certificateTransparency', 'certTransparency'),
        })
      : undefined,
  }) as WirePolicy;
}

/** `--policy '{…}'` or `--policy @file.json` → the REST shape. */
function readPolicy(value: string): WirePolicy {
  let raw = value;
  if (value.startsWith('@')) {
    const path = value.slice(1);
    if (!existsSync(path)) throw new CliError(`file not found: ${path}`);
    raw = readFileSync(path, 'utf8');
  }
  try {
    return policyToWire(JSON.parse(raw));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError('--policy is not valid JSON', 2);
  }
}

/**
 * `pending merge --file`: as az, a PEM file's certificates (the signed one and its chain, in any
 * order), or one DER certificate → `x5c` (base64 DER each). At most 10 certificates, 256 KiB.
 */
export function readChain(path: string): string[] {
  if (!existsSync(path)) throw new CliError(`file not found: ${path}`);
  const bytes = readFileSync(path);
  if (bytes.length > 256 * 1024) throw new CliError(`${path} is larger than 256 KiB`, 2);
  const text = bytes.toString('latin1');
  if (!text.includes('-----BEGIN ')) return [bytes.toString('base64')];
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map(
    (m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64').toString('base64'),
  );
  if (blocks.length === 0) throw new CliError(`${path} holds no PEM certificate`, 2);
  if (blocks.length > 10) throw new CliError(`${path} holds more than 10 certificates`, 2);
  return blocks;
}

const target = (c: Ctx, o: TargetOptions) => targetObject(c, o, 'certificates');
const named = (cmd: Command, withId = true) => namedObject(cmd, 'certificates', withId);
const versioned = (cmd: Command) =>
  named(cmd).option('--version <version>', 'a certificate version (default: the latest)');

/** `latchkey keyvault certificate ...` (az keyvault certificate). */
export function certificateCommand(): Command {
  const cert = new Command('certificate').description(
    'Certificates in a key vault (X.509 with key and secret)',
  );

  named(cert.command('create').description('Create a certificate (or a new version) by a policy'), false)
    .requiredOption('-p, --policy <json>', 'the policy JSON (az’s shape or the REST shape), or @file')
    .option('--disabled <bool>', 'true: create the version disabled')
    .option(
      '--validity <months>',
      'validity in months (overrides the policy’s)',
      positiveInt('--validity', 1200),
    )
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const policy = readPolicy(o.policy);
      if (o.validity !== undefined) policy.x509_props = { ...policy.x509_props, validity_months: o.validity };
      const disabled = parseBool('--disabled', o.disabled);
      const tags = parseTags(o.tags);
      const t = await target(c, o);
      const path = `/certificates/${seg(t.name)}`;
      let op = await vaultCall<PendingOperation>(c, t.ep, 'POST', `${path}/create`, {
        policy,
        ...(disabled !== undefined ? { attributes: { enabled: !disabled } } : {}),
        ...(tags ? { tags } : {}),
      });
      // As az: a pending (issuer Unknown) operation is shown as is; otherwise wait for it (the
      // create answers `inProgress`; Latchkey's Self is already done at the first look).
      const unknown = policy.issuer?.name?.toLowerCase() === 'unknown';
      for (let i = 0; op.status === 'inProgress' && !unknown; i++) {
        if (i >= 120)
          throw new CliError(
            'the certificate is still being issued: see `latchkey keyvault certificate pending show`',
          );
        if (i > 0) await new Promise((r) => setTimeout(r, 1000));
        op = await vaultCall<PendingOperation>(c, t.ep, 'GET', `${path}/pending`);
      }
      show(c, operationView(op));
    });

  named(
    cert
      .command('import')
      .description('Import a certificate with its private key from a PFX (PKCS#12) or PEM file'),
    false,
  )
    // duplicate-ok: commander options, alike in shape only.
    .requiredOption('-f, --file <path>', 'PFX or PEM file with the certificate and its private key')
    .option('--password <password>', 'password of the PFX')
    .option('-p, --policy <json>', 'policy JSON or @file (its key exportability and content type are kept)')
    .option('--disabled <bool>', 'true: import the version disabled')
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      if (!existsSync(o.file)) throw new CliError(`file not found: ${o.file}`);
      const bytes = readFileSync(o.file);
      const text = bytes.toString('utf8');
      const isPem = text.includes('-----BEGIN ');
      const policy = o.policy ? readPolicy(o.policy) : undefined;
      const contentType = isPem ? 'application/x-pem-file' : 'application/x-pkcs12';
      const disabled = parseBool('--disabled', o.disabled);
      const tags = parseTags(o.tags);
      const t = await target(c, o);
      const b = await vaultCall<CertificateBundle>(c, t.ep, 'POST', `/certificates/${seg(t.name)}/import`, {
        value: isPem ? text.replaceAll('\r\n', '\n') : bytes.toString('base64'),
        ...(o.password ? { pwd: o.password } : {}),
        policy: {
          ...policy,
          secret_props: { contentType: policy?.secret_props?.contentType ?? contentType },
        },
        ...(disabled !== undefined ? { attributes: { enabled: !disabled } } : {}),
        ...(tags ? { tags } : {}),
      });
      show(c, view(b), row);
    });

  versioned(
    cert.command('show').description('Show a certificate (the X.509, its policy and attributes)'),
  ).action(async (o, cmd: Command) => {
    const c = ctx(cmd);
    const t = await target(c, o);
    const path = `/certificates/${seg(t.name)}/${seg(t.version ?? '')}`;
    show(c, view(await vaultCall<CertificateBundle>(c, t.ep, 'GET', path)), row);
  });

  versioned(cert.command('download').description("Download a certificate's public X.509 (PEM or DER)"))
    // duplicate-ok: commander options, alike in shape only.
    .requiredOption('-f, --file <path>', 'file to write (must not exist)')
    .option('-e, --encoding <encoding>', 'PEM or DER', 'PEM')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      if (o.encoding !== 'PEM' && o.encoding !== 'DER')
        throw new CliError('--encoding must be PEM or DER', 2);
      if (existsSync(o.file)) throw new CliError(`File or directory named '${o.file}' already exists.`);
      const t = await target(c, o);
      const path = `/certificates/${seg(t.name)}/${seg(t.version ?? '')}`;
      const b = await vaultCall<CertificateBundle>(c, t.ep, 'GET', path);
      const der = Buffer.from(b.cer ?? '', 'base64');
      const lines = der.toString('base64').match(/.{1,76}/g) ?? [];
      // As az (Python's base64.encodebytes: 76-character lines).
      const pem = `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
      writeFileSync(o.file, o.encoding === 'DER' ? der : pem, { flag: 'wx' });
    });

  versioned(
    cert.command('set-attributes').description('Update a certificate version (enabled, tags) and its policy'),
  )
    .option('--enabled <bool>', 'true or false (the key and secret version follow)')
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .option('-p, --policy <json>', 'policy sections to replace: JSON or @file')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const enabled = parseBool('--enabled', o.enabled);
      const tags = parseTags(o.tags);
      const policy = o.policy ? readPolicy(o.policy) : undefined;
      const t = await target(c, o);
      const path = `/certificates/${seg(t.name)}/${seg(t.version ?? '')}`;
      const b = await vaultCall<CertificateBundle>(c, t.ep, 'PATCH', path, {
        ...(enabled !== undefined ? { attributes: { enabled } } : {}),
        ...(tags ? { tags } : {}),
        ...(policy ? { policy } : {}),
      });
      show(c, view(b), row);
    });

  versioned(
    cert
      .command('revoke')
      .description(
        "Revoke a version signed by the tenant's CA (issuer Latchkey) into its CRL (Latchkey: az has no such command; default: the latest version)",
      ),
  )
    .option(
      '--reason <reason>',
      'unspecified, keyCompromise, superseded or cessationOfOperation',
      'unspecified',
    )
    .option('--deleted', 'A soft-deleted certificate (no need to wait for its purge)')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const t = await target(c, o);
      const collection = o.deleted ? 'deletedcertificates' : 'certificates';
      // The latest version: a deleted certificate's bundle (`/deletedcertificates/{name}`) names it too.
      const latest = async () =>
        (
          await vaultCall<CertificateBundle>(
            c,
            t.ep,
            'GET',
            o.deleted ? `/deletedcertificates/${seg(t.name)}` : `/certificates/${seg(t.name)}/`,
          )
        ).id
          ?.split('/')
          .pop();
      const version = t.version ?? (await latest()) ?? '';
      show(
        c,
        await vaultCall(c, t.ep, 'POST', `/${collection}/${seg(t.name)}/${seg(version)}/revoke`, {
          reason: o.reason,
        }),
      );
    });

  listCommands(cert, CERTIFICATE, 'List the certificates of a vault');
  lifecycleCommands(cert, CERTIFICATE, 'Show a deleted certificate');

  const pending = cert.command('pending').description("A certificate's pending (create) operation");
  named(pending.command('show').description('Show the pending operation'), false).action(
    async (o, cmd: Command) => {
      const c = ctx(cmd);
      const t = await target(c, o);
      show(c, operationView(await vaultCall(c, t.ep, 'GET', `/certificates/${seg(t.name)}/pending`)));
    },
  );
  named(pending.command('delete').description('Delete the pending operation record'), false).action(
    async (o, cmd: Command) => {
      const c = ctx(cmd);
      const t = await target(c, o);
      show(c, operationView(await vaultCall(c, t.ep, 'DELETE', `/certificates/${seg(t.name)}/pending`)));
    },
  );
  named(
    pending
      .command('cancel')
      .description(
        'Cancel the pending operation (Latchkey: az has no such command; it can no longer be merged)',
      ),
    false,
  ).action(async (o, cmd: Command) => {
    const c = ctx(cmd);
    const t = await target(c, o);
    const path = `/certificates/${seg(t.name)}/pending`;
    show(c, operationView(await vaultCall(c, t.ep, 'PATCH', path, { cancellation_requested: true })));
  });
  named(
    pending
      .command('merge')
      .description('Merge the signed certificate (and its chain) with the pending request (issuer Unknown)'),
    false,
  )
    .requiredOption('-f, --file <path>', 'the signed certificate, and optionally its chain: PEM or DER')
    .option('--disabled <bool>', 'true: merge the version disabled')
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const x5c = readChain(o.file);
      const disabled = parseBool('--disabled', o.disabled);
      const tags = parseTags(o.tags);
      const t = await target(c, o);
      const b = await vaultCall<CertificateBundle>(
        c,
        t.ep,
        'POST',
        `/certificates/${seg(t.name)}/pending/merge`,
        {
          x5c,
          ...(disabled !== undefined ? { attributes: { enabled: !disabled } } : {}),
          ...(tags ? { tags } : {}),
        },
      );
      show(c, view(b), row);
    });

  contactCommands(cert);
  issuerCommands(cert);

  cert
    .command('get-default-policy')
    .description('Print the default policy for `certificate create` (az’s: Self-signed, RSA 2048, 12 months)')
    .action((_o, cmd: Command) => show(ctx(cmd), AZ_DEFAULT_POLICY));
  return cert;
}

/** A vault's certificate contacts on the wire. */
interface WireContacts {
  id?: string;
  contacts?: { email: string; name?: string; phone?: string }[];
}
/** As az prints its track-1 `Contacts` model: `contactList` of `emailAddress`, `name`, `phone`. */
const contactsView = (w: WireContacts | undefined) => ({
  contactList: (w?.contacts ?? []).map((x) => ({
    emailAddress: x.email,
    name: x.name ?? null,
    phone: x.phone ?? null,
  })),
  id: w?.id ?? null,
});

interface ContactOptions {
  vaultName: string;
  email?: string;
  name?: string;
  phone?: string;
}

/** `latchkey keyvault certificate contact add|list|delete` (az keyvault certificate contact). */
function contactCommands(cert: Command): void {
  const contact = cert.command('contact').description("A vault's certificate contacts (emailed by issuers)");
  const path = '/certificates/contacts';
  const group = vaultWideCommands<ContactOptions, WireContacts>(contact, contactsView);
  const sub = (name: string, description: string, withEmail: boolean) => {
    const cmd = group.sub(name, description);
    return withEmail ? cmd.requiredOption('--email <email>', 'contact email address') : cmd;
  };
  /** Runs `fn` on the vault's endpoint and prints the contacts it answers, as az. */
  const action = group.act;
  const current = async (c: Ctx, ep: VaultEndpoint) =>
    (await vaultCallOrNone<WireContacts>(c, ep, 'GET', path))?.contacts ?? [];
  const put = (c: Ctx, ep: VaultEndpoint, contacts: WireContacts['contacts']) =>
    vaultCall<WireContacts>(c, ep, 'PUT', path, { contacts });

  sub('list', 'List the certificate contacts of a vault', false).action(
    action((c, ep) => vaultCall<WireContacts>(c, ep, 'GET', path)),
  );
  sub('add', 'Add a certificate contact (as az: the list is read, extended and set)', true)
    .option('--name <name>', 'full contact name')
    .option('--phone <phone>', 'contact phone number')
    .action(
      action(async (c, ep, o) => {
        const list = await current(c, ep);
        if (list.some((x) => x.email === o.email)) throw new CliError(`contact '${o.email}' already exists`);
        const added = {
          email: o.email ?? '',
          ...(o.name ? { name: o.name } : {}),
          ...(o.phone ? { phone: o.phone } : {}),
        };
        return put(c, ep, [...list, added]);
      }),
    );
  sub('delete', 'Remove a certificate contact by email (the last one removes the list)', true).action(
    action(async (c, ep, o) => {
      const list = await current(c, ep);
      const rest = list.filter((x) => x.email !== o.email);
      if (rest.length === list.length)
        throw new CliError(`contact '${o.email}' not found in vault '${o.vaultName}'`);
      return rest.length ? put(c, ep, rest) : vaultCall<WireContacts>(c, ep, 'DELETE', path);
    }),
  );
}
