import type { Command } from 'commander';
import { ctx } from '../context.js';
import { CliError } from '../errors.js';
import { show } from './arm.js';
import { seg, type Target, target, versioned } from './keyvault-key-target.js';
import { vaultCall } from './vault-client.js';

const b64 = (flag: string, v: string): string => {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) throw new CliError(`${flag} must be base64`, 2);
  return Buffer.from(v.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, ''), 'base64url').toString(
    'base64url',
  );
};
const std64 = (v: string) => Buffer.from(v, 'base64url').toString('base64');
/** The path of a crypto operation: an empty version means the key's latest, as the SDK's key-id form does. */
const opPath = (t: Target, op: string) => `/keys/${seg(t.name)}/${seg(t.version ?? '')}/${op}`;

/** `keyvault key encrypt|decrypt|sign|verify`: base64 in and out, as az. */
export function cryptoCommands(key: Command) {
  const op = (name: string, description: string) =>
    versioned(key.command(name).description(description)).requiredOption(
      '-a, --algorithm <alg>',
      'algorithm',
    );

  op('encrypt', 'Encrypt a small value with an RSA key (RSA1_5, RSA-OAEP, RSA-OAEP-256)')
    .requiredOption('--value <data>', 'the value (base64, or text with --data-type plaintext)')
    .option('--data-type <type>', 'base64 or plaintext', 'base64')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const value =
        o.dataType === 'plaintext'
          ? Buffer.from(o.value, 'utf8').toString('base64url')
          : o.dataType === 'base64'
            ? b64('--value', o.value)
            : undefined;
      if (value === undefined) throw new CliError('--data-type must be base64 or plaintext', 2);
      const t = await target(c, o);
      const r = await vaultCall<{ kid: string; value: string }>(c, t.ep, 'POST', opPath(t, 'encrypt'), {
        alg: o.algorithm,
        value,
      });
      show(c, { algorithm: o.algorithm, kid: r.kid, result: std64(r.value) });
    });

  op('decrypt', 'Decrypt a value encrypted with an RSA key')
    .requiredOption('--value <base64>', 'the ciphertext (base64)')
    .option('--data-type <type>', 'how to print the result: base64 or plaintext', 'base64')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      if (o.dataType !== 'base64' && o.dataType !== 'plaintext')
        throw new CliError('--data-type must be base64 or plaintext', 2);
      const t = await target(c, o);
      const r = await vaultCall<{ kid: string; value: string }>(c, t.ep, 'POST', opPath(t, 'decrypt'), {
        alg: o.algorithm,
        value: b64('--value', o.value),
      });
      const bytes = Buffer.from(r.value, 'base64url');
      show(c, {
        algorithm: o.algorithm,
        kid: r.kid,
        result: o.dataType === 'plaintext' ? bytes.toString('utf8') : bytes.toString('base64'),
      });
    });

  op('sign', 'Sign a digest (the hash of the message, base64)')
    .requiredOption('--digest <base64>', 'the digest to sign (base64)')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const t = await target(c, o);
      const r = await vaultCall<{ kid: string; value: string }>(c, t.ep, 'POST', opPath(t, 'sign'), {
        alg: o.algorithm,
        value: b64('--digest', o.digest),
      });
      show(c, { algorithm: o.algorithm, keyId: r.kid, signature: std64(r.value) });
    });

  op('verify', 'Verify the signature of a digest')
    .requiredOption('--digest <base64>', 'the digest (base64)')
    .requiredOption('--signature <base64>', 'the signature (base64)')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const t = await target(c, o);
      const r = await vaultCall<{ value: boolean }>(c, t.ep, 'POST', opPath(t, 'verify'), {
        alg: o.algorithm,
        digest: b64('--digest', o.digest),
        value: b64('--signature', o.signature),
      });
      const kid = `${t.ep.url}/keys/${t.name}${t.version ? `/${t.version}` : ''}`;
      show(c, { algorithm: o.algorithm, isValid: r.value === true, keyId: kid });
    });
}
