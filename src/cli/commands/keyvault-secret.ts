import { existsSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { type Ctx, withCtx } from '../context.js';
import { CliError } from '../errors.js';
import { parseBool, parseTags, parseTime, show } from './arm.js';
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
  type WireAttributes,
} from './keyvault-object.js';
import { vaultCall } from './vault-client.js';

interface SecretBundle {
  value?: string;
  id: string;
  contentType?: string | null;
  attributes?: WireAttributes;
  tags?: Record<string, string> | null;
  kid?: string | null;
  managed?: boolean | null;
  recoveryId?: string;
  deletedDate?: number;
  scheduledPurgeDate?: number;
}

const ENCODINGS = ['utf-8', 'base64', 'hex', 'ascii'] as const;

/** The secret name in an id such as `https://v.vault.localhost/secrets/{name}/{version}`. */
const nameOf = (id: string): string | null => {
  try {
    return new URL(id).pathname.split('/')[2] ?? null;
  } catch {
    return null;
  }
};

/** az's shape: attributes with ISO times and `notBefore`/`expires`, plus `name`. */
function view(b: SecretBundle, opts: { withValue?: boolean } = {}) {
  return {
    attributes: attributesView(b.attributes),
    contentType: b.contentType ?? null,
    ...deletedView(b),
    id: b.id,
    ...(opts.withValue ? { kid: b.kid ?? null } : {}),
    managed: b.managed ?? null,
    name: nameOf(b.id),
    tags: b.tags ?? null,
    ...(opts.withValue ? { value: b.value ?? null } : {}),
  };
}

type View = ReturnType<typeof view>;
/** The columns of az's table view of secrets. */
const row = (v: View) => ({
  Name: v.name,
  Version: v.id.split('/')[5] ?? null,
  Enabled: v.attributes.enabled,
  Expires: v.attributes.expires,
  ContentType: v.contentType,
  ...('value' in v ? { Value: v.value } : {}),
  ...('deletedDate' in v ? { DeletedDate: v.deletedDate, ScheduledPurgeDate: v.scheduledPurgeDate } : {}),
});

const target = (c: Ctx, o: TargetOptions) => targetObject(c, o, 'secrets');
const named = (c: Command, withId = false) => namedObject(c, 'secrets', withId);
const SECRET: ObjectCli<SecretBundle, View> = {
  collection: 'secrets',
  withId: false,
  view: (b) => view(b),
  row,
};

/** The most a secret value read from a file or stdin may be (the vault's own limit is 25 KiB). */
const MAX_FILE_BYTES = 64 * 1024;

/** `-f FILE` or `-f -` (stdin): the bytes, bounded. */
function readSource(file: string): Buffer {
  if (file === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(0, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') continue;
        if (code === 'EOF') break;
        throw new CliError(`cannot read stdin: ${code ?? 'error'}`);
      }
      if (n === 0) break;
      size += n;
      if (size > MAX_FILE_BYTES) throw new CliError(`stdin is over ${MAX_FILE_BYTES} bytes`, 2);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks);
  }
  if (!existsSync(file)) throw new CliError(`file not found: ${file}`);
  if (statSync(file).size > MAX_FILE_BYTES) throw new CliError(`${file} is over ${MAX_FILE_BYTES} bytes`, 2);
  return readFileSync(file);
}

/**
 * The value of `secret set`: `--value`, or a file / stdin (`-f -`) in `--encoding`. A text
 * file's one final line break is not part of the value (`echo tok > f` and an editor's save
 * both add one; `$(cat f)` drops it too); base64 and hex encode the bytes exactly.
 */
function readValue(o: { value?: string; file?: string; encoding: string }): {
  value: string;
  encoding?: string;
} {
  if ((o.value === undefined) === (o.file === undefined))
    throw new CliError('give exactly one of --value, --file', 2);
  if (o.value !== undefined) return { value: o.value };
  const bytes = readSource(o.file!);
  const enc = o.encoding;
  const text = (t: string) => t.replace(/\r?\n$/, '');
  const value =
    enc === 'base64'
      ? bytes.toString('base64')
      : enc === 'hex'
        ? bytes.toString('hex')
        : text(bytes.toString(enc === 'ascii' ? 'ascii' : 'utf8'));
  if (!value) throw new CliError(`${o.file === '-' ? 'stdin' : o.file} is empty`, 2);
  return { value, encoding: enc };
}

/** `latchkey keyvault secret ...` (az keyvault secret): the data plane, with a vault-audience token. */
export function secretCommand(): Command {
  const secret = new Command('secret').description('Secrets in a key vault');

  named(secret.command('set').description('Create a secret, or a new version of it'))
    .option('--value <value>', 'the value (or use --file)')
    .option(
      '-f, --file <path>',
      'read the value from a file, or `-` for stdin (one final newline is dropped)',
    )
    .option('-e, --encoding <enc>', `file encoding: ${ENCODINGS.join(', ')}`, 'utf-8')
    .option('--content-type <type>', 'content type, e.g. text/plain')
    .option('--disabled <bool>', 'true: create the version disabled')
    .option('--expires <iso>', 'expiry (ISO 8601)')
    .option('--not-before <iso>', 'not valid before (ISO 8601)')
    .option('--tags <tags...>', 'space-separated tags: key[=value]')
    .addHelpText(
      'after',
      `
Examples:
  latchkey keyvault secret set --vault-name shop -n db-password -f -          # paste, Enter, Ctrl-D
  latchkey keyvault secret set --vault-name shop -n tls-pfx -f cert.pfx -e base64
  latchkey keyvault secret set --vault-name shop -n flag --value on --tags env=dev`,
    )
    .action(
      withCtx(async (o, c) => {
        if (!(ENCODINGS as readonly string[]).includes(o.encoding))
          throw new CliError(`--encoding must be one of ${ENCODINGS.join(', ')}`, 2);
        const { value, encoding } = readValue(o);
        const t = await target(c, o);
        const disabled = parseBool('--disabled', o.disabled);
        const exp = parseTime('--expires', o.expires);
        const nbf = parseTime('--not-before', o.notBefore);
        let tags = parseTags(o.tags);
        if (encoding) tags = { ...(tags ?? {}), 'file-encoding': encoding };
        const b = await vaultCall<SecretBundle>(c, t.ep, 'PUT', `/secrets/${seg(t.name)}`, {
          value,
          ...(o.contentType !== undefined ? { contentType: o.contentType } : {}),
          ...(tags ? { tags } : {}),
          attributes: {
            enabled: !disabled,
            ...(exp !== undefined ? { exp } : {}),
            ...(nbf !== undefined ? { nbf } : {}),
          },
        });
        show(c, view(b, { withValue: true }), row);
      }),
    );

  named(
    secret.command('show').description('Show a secret with its value (latest version unless --version)'),
    true,
  )
    .option('--version <version>', 'a specific version')
    .action(
      withCtx(async (o, c) => {
        const t = await target(c, o);
        const b = await vaultCall<SecretBundle>(
          c,
          t.ep,
          'GET',
          `/secrets/${seg(t.name)}/${seg(t.version ?? '')}`,
        );
        show(c, view(b, { withValue: true }), row);
      }),
    );

  named(
    secret
      .command('download')
      .description('Write a secret’s value to a new file (mode 0600), as az keyvault secret download'),
    true,
  )
    .requiredOption('-f, --file <path>', 'the file to create (an existing file is not overwritten)')
    .option('-e, --encoding <enc>', `how to write the value: ${ENCODINGS.join(', ')}`, 'utf-8')
    .option('--version <version>', 'a specific version')
    .action(
      withCtx(async (o, c) => {
        if (!(ENCODINGS as readonly string[]).includes(o.encoding))
          throw new CliError(`--encoding must be one of ${ENCODINGS.join(', ')}`, 2);
        if (existsSync(o.file)) throw new CliError(`${o.file} already exists: choose another --file`, 2);
        const t = await target(c, o);
        const b = await vaultCall<SecretBundle>(
          c,
          t.ep,
          'GET',
          `/secrets/${seg(t.name)}/${seg(t.version ?? '')}`,
        );
        const v = b.value ?? '';
        const bytes =
          o.encoding === 'base64'
            ? Buffer.from(v, 'base64')
            : o.encoding === 'hex'
              ? Buffer.from(v, 'hex')
              : Buffer.from(v, o.encoding === 'ascii' ? 'ascii' : 'utf8');
        try {
          writeFileSync(o.file, bytes, { flag: 'wx', mode: 0o600 });
        } catch (e) {
          throw new CliError(`cannot write ${o.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
        }
      }),
    );

  listCommands(secret, SECRET, 'List the secrets of a vault (never their values)');

  named(
    secret
      .command('set-attributes')
      .description('Update a secret version’s attributes, content type or tags'),
    true,
  )
    .option('--version <version>', 'the version (default: the latest)')
    .option('--enabled <bool>', 'true or false')
    .option('--expires <iso>', 'expiry (ISO 8601)')
    .option('--not-before <iso>', 'not valid before (ISO 8601)')
    .option('--content-type <type>', 'content type')
    .option('--tags <tags...>', 'replace the tags: key[=value] ...')
    .action(
      withCtx(async (o, c) => {
        const t = await target(c, o);
        const enabled = parseBool('--enabled', o.enabled);
        const exp = parseTime('--expires', o.expires);
        const nbf = parseTime('--not-before', o.notBefore);
        const tags = parseTags(o.tags);
        // No version: `PATCH /secrets/{name}/` updates the latest, as az does.
        const version = t.version ?? '';
        const attributes = {
          ...(enabled !== undefined ? { enabled } : {}),
          ...(exp !== undefined ? { exp } : {}),
          ...(nbf !== undefined ? { nbf } : {}),
        };
        const b = await vaultCall<SecretBundle>(c, t.ep, 'PATCH', `/secrets/${seg(t.name)}/${seg(version)}`, {
          ...(Object.keys(attributes).length ? { attributes } : {}),
          ...(o.contentType !== undefined ? { contentType: o.contentType } : {}),
          ...(tags ? { tags } : {}),
        });
        show(c, view(b), row);
      }),
    );

  lifecycleCommands(secret, SECRET, 'Show a deleted secret (without its value)');
  return secret;
}
