import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Command } from 'commander';
import { withCtx } from '../context.js';
import { CliError } from '../errors.js';
import { isoSeconds, parseBool, parseTags, parseTime, positiveInt, show } from './arm.js';
import { cryptoCommands } from './keyvault-key-crypto.js';
import { named, seg, target, versioned } from './keyvault-key-target.js';
import { lifecycleCommands, listCommands, type ObjectCli } from './keyvault-object.js';
import { vaultCall } from './vault-client.js';

interface KeyAttributes {
  enabled?: boolean;
  nbf?: number;
  exp?: number;
  created?: number;
  updated?: number;
  recoverableDays?: number;
  recoveryLevel?: string;
  exportable?: boolean;
}
interface KeyBundle {
  key?: {
    kid: string;
    kty: string;
    key_ops?: string[];
    n?: string;
    e?: string;
    crv?: string;
    x?: string;
    y?: string;
  };
  kid?: string;
  attributes?: KeyAttributes;
  tags?: Record<string, string> | null;
  managed?: boolean | null;
  recoveryId?: string;
  deletedDate?: number;
  scheduledPurgeDate?: number;
}

/** `https://{vault}/keys/{name}[/{version}]` → its parts. */
const partsOf = (id: string) => {
  const [, , name, version] = new URL(id).pathname.split('/');
  return { name: name ?? '', version: version ?? '' };
};

/** az's shape of a key (JWK fields base64url, as the vault sends them). */
function view(b: KeyBundle) {
  const a = b.attributes ?? {};
  const id = b.key?.kid ?? b.kid ?? '';
  const attributes = {
    created: isoSeconds(a.created),
    enabled: a.enabled ?? true,
    expires: isoSeconds(a.exp),
    exportable: a.exportable ?? false,
    notBefore: isoSeconds(a.nbf),
    recoverableDays: a.recoverableDays ?? null,
    recoveryLevel: a.recoveryLevel ?? null,
    updated: isoSeconds(a.updated),
  };
  const deleted =
    b.recoveryId !== undefined
      ? {
          deletedDate: isoSeconds(b.deletedDate),
          recoveryId: b.recoveryId,
          scheduledPurgeDate: isoSeconds(b.scheduledPurgeDate),
        }
      : {};
  if (!b.key)
    return {
      attributes,
      ...deleted,
      kid: id,
      managed: b.managed ?? null,
      name: partsOf(id).name,
      tags: b.tags ?? null,
    };
  const k = b.key;
  return {
    attributes,
    ...deleted,
    key: {
      crv: k.crv ?? null,
      e: k.e ?? null,
      keyOps: k.key_ops ?? [],
      kid: k.kid,
      kty: k.kty,
      n: k.n ?? null,
      x: k.x ?? null,
      y: k.y ?? null,
    },
    managed: b.managed ?? null,
    name: partsOf(id).name,
    releasePolicy: null,
    tags: b.tags ?? null,
  };
}
type View = ReturnType<typeof view>;
const row = (v: View) => ({
  Name: v.name,
  Version: partsOf('key' in v ? v.key.kid : v.kid).version || null,
  KeyType: 'key' in v ? v.key.kty : null,
  Enabled: v.attributes.enabled,
  Expires: v.attributes.expires,
  ...('deletedDate' in v ? { DeletedDate: v.deletedDate, ScheduledPurgeDate: v.scheduledPurgeDate } : {}),
});
const KEY: ObjectCli<KeyBundle, View> = { collection: 'keys', withId: true, view, row };

const attributesOf = (o: { disabled?: string; enabled?: string; expires?: string; notBefore?: string }) => {
  const disabled = parseBool('--disabled', o.disabled);
  const enabled = parseBool('--enabled', o.enabled);
  const exp = parseTime('--expires', o.expires);
  const nbf = parseTime('--not-before', o.notBefore);
  const attributes = {
    ...(enabled !== undefined ? { enabled } : disabled !== undefined ? { enabled: !disabled } : {}),
    ...(exp !== undefined ? { exp } : {}),
    ...(nbf !== undefined ? { nbf } : {}),
  };
  return Object.keys(attributes).length ? { attributes } : {};
};
const withAttributes = (c: Command) =>
  c
    .option('--expires <iso>', 'expiry (ISO 8601)')
    .option('--not-before <iso>', 'not valid before (ISO 8601)')
    .option('--ops <ops...>', 'permitted operations: encrypt decrypt sign verify wrapKey unwrapKey')
    .option('--tags <tags...>', 'space-separated tags: key[=value]');

/** A JWK (JSON) or PEM private key file → the JWK to import (with its private parts). */
function readImportKey(file: string, password?: string): Record<string, unknown> {
  if (!existsSync(file)) throw new CliError(`file not found: ${file}`);
  const text = readFileSync(file, 'utf8');
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new CliError(`${file} is not valid JSON`, 2);
    }
  }
  try {
    const jwk = createPrivateKey({
      key: text,
      format: 'pem',
      ...(password ? { passphrase: password } : {}),
    }).export({ format: 'jwk' });
    return jwk.crv === 'secp256k1' ? { ...jwk, crv: 'P-256K' } : { ...jwk };
  } catch {
    throw new CliError(
      `${file} is neither a JWK (JSON) nor a PEM private key${password ? '' : ' (encrypted? give --password)'}`,
      2,
    );
  }
}

/** `latchkey keyvault key ...` (az keyvault key): keys, crypto operations, rotation. */
export function keyCommand(): Command {
  const key = new Command('key').description('Keys in a key vault, and cryptographic operations with them');

  withAttributes(named(key.command('create').description('Create a key, or a new version of it'), false))
    .option('--kty <type>', 'key type: RSA or EC', 'RSA')
    .option('--size <bits>', 'RSA key size: 2048, 3072, 4096', positiveInt('--size', 16384))
    .option(
      '--public-exponent <e>',
      'RSA public exponent (default 65537)',
      positiveInt('--public-exponent', 0xffffffff),
    )
    .option('--curve <crv>', 'EC curve: P-256, P-384, P-521, P-256K')
    .option('--disabled <bool>', 'true: create the version disabled')
    .action(
      withCtx(async (o, c) => {
        const t = await target(c, o);
        const tags = parseTags(o.tags);
        const b = await vaultCall<KeyBundle>(c, t.ep, 'POST', `/keys/${seg(t.name)}/create`, {
          kty: o.kty,
          ...(o.size ? { key_size: o.size } : {}),
          ...(o.publicExponent ? { public_exponent: o.publicExponent } : {}),
          ...(o.curve ? { crv: o.curve } : {}),
          ...(o.ops ? { key_ops: o.ops } : {}),
          ...(tags ? { tags } : {}),
          ...attributesOf(o),
        });
        show(c, view(b), row);
      }),
    );

  withAttributes(
    named(
      key.command('import').description('Import a key with its private parts from a JWK (JSON) or PEM file'),
      false,
    ),
  )
    .option('--pem-file <path>', 'PEM private key file (PKCS#8, PKCS#1 or SEC 1)')
    .option('-f, --file <path>', 'JWK file (JSON with private parts) or PEM file')
    .option('--password <password>', 'password of an encrypted PEM file')
    .option('--disabled <bool>', 'true: import the version disabled')
    .action(
      withCtx(async (o, c) => {
        const file = o.pemFile ?? o.file;
        if (!file || (o.pemFile && o.file)) throw new CliError('give exactly one of --pem-file, --file', 2);
        const jwk = readImportKey(file, o.password);
        const t = await target(c, o);
        const tags = parseTags(o.tags);
        const b = await vaultCall<KeyBundle>(c, t.ep, 'PUT', `/keys/${seg(t.name)}`, {
          key: { ...jwk, ...(o.ops ? { key_ops: o.ops } : {}) },
          ...(tags ? { tags } : {}),
          ...attributesOf(o),
        });
        show(c, view(b), row);
      }),
    );

  versioned(key.command('show').description('Show a key (its public part and attributes)')).action(
    withCtx(async (o, c) => {
      const t = await target(c, o);
      show(
        c,
        view(await vaultCall<KeyBundle>(c, t.ep, 'GET', `/keys/${seg(t.name)}/${seg(t.version ?? '')}`)),
        row,
      );
    }),
  );

  listCommands(key, KEY, 'List the keys of a vault');

  withAttributes(
    versioned(
      key.command('set-attributes').description('Update a key version’s attributes, operations or tags'),
    ),
  )
    .option('--enabled <bool>', 'true or false')
    .action(
      withCtx(async (o, c) => {
        const t = await target(c, o);
        const tags = parseTags(o.tags);
        const b = await vaultCall<KeyBundle>(
          c,
          t.ep,
          'PATCH',
          `/keys/${seg(t.name)}/${seg(t.version ?? '')}`,
          {
            ...(o.ops ? { key_ops: o.ops } : {}),
            ...(tags ? { tags } : {}),
            ...attributesOf(o),
          },
        );
        show(c, view(b), row);
      }),
    );

  lifecycleCommands(key, KEY, 'Show a deleted key');

  named(key.command('rotate').description('Rotate a key now: a new version like the current one')).action(
    withCtx(async (o, c) => {
      const t = await target(c, o);
      show(c, view(await vaultCall<KeyBundle>(c, t.ep, 'POST', `/keys/${seg(t.name)}/rotate`)), row);
    }),
  );

  const policy = key.command('rotation-policy').description('The rotation policy of a key');
  named(policy.command('show').description('Show a key’s rotation policy')).action(
    withCtx(async (o, c) => {
      const t = await target(c, o);
      show(c, await vaultCall(c, t.ep, 'GET', `/keys/${seg(t.name)}/rotationpolicy`));
    }),
  );
  named(
    policy
      .command('update')
      .description('Set a key’s rotation policy from JSON (a file: --value @policy.json)'),
  )
    .requiredOption('--value <json>', 'the policy JSON, or @file')
    .action(
      withCtx(async (o, c) => {
        const raw: string = o.value.startsWith('@') ? readPolicyFile(o.value.slice(1)) : o.value;
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch {
          throw new CliError('--value is not valid JSON', 2);
        }
        const t = await target(c, o);
        show(c, await vaultCall(c, t.ep, 'PUT', `/keys/${seg(t.name)}/rotationpolicy`, body));
      }),
    );

  cryptoCommands(key);
  return key;
}

function readPolicyFile(path: string): string {
  if (!existsSync(path)) throw new CliError(`file not found: ${path}`);
  return readFileSync(path, 'utf8');
}
