import { chmodSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { generateRootKeyText } from '../../crypto/root-key.js';
import { CliError } from '../errors.js';
import { rootKeyFrom } from './backup.js';

/** `latchkey root-key generate`: a production root key (base64 of 32 random bytes) for `latchkey server`. */
export function rootKeyCommand(): Command {
  const rk = new Command('root-key').description('The root key that protects all data at rest');
  rk.command('generate')
    .description('Generate a root key into a new 0600 file (or print it with --stdout)')
    .option('--out <file>', 'file to create (refuses to overwrite)')
    .option('--stdout', 'print the key instead (for a secret manager or LATCHKEY_ROOT_KEY)')
    .action((o: { out?: string; stdout?: boolean }) => {
      if (!o.out === !o.stdout) throw new CliError('give exactly one of --out FILE or --stdout', 2);
      const key = `${generateRootKeyText()}\n`;
      if (o.stdout) {
        process.stdout.write(key);
        return;
      }
      const out = o.out as string;
      try {
        writeFileSync(out, key, { mode: 0o600, flag: 'wx' });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new CliError(
          code === 'EEXIST'
            ? `${out} already exists; refusing to overwrite a root key`
            : `cannot write ${out}`,
        );
      }
      chmodSync(out, 0o600);
      process.stderr.write(
        `Wrote ${out} (mode 0600). Back it up: without it the data cannot be decrypted.\n`,
      );
    });
  rk.command('check-value')
    .description(
      "Print the key's check value (not secret): the name stores and backups record for the key they need",
    )
    .option('--root-key-file <file>', 'the root key file (mode 0600); or env LATCHKEY_ROOT_KEY')
    .action((o: { rootKeyFile?: string }) => {
      process.stdout.write(`${rootKeyFrom(o.rootKeyFile).checkValue()}\n`);
    });
  return rk;
}
