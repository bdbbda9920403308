import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';
import { errorMessage, request } from '../http.js';
import { seg } from '../path.js';
import { resolveServer } from '../session.js';
import { loadDevServer, loadProfile } from '../state.js';

/**
 * `latchkey ca show`: the tenant's own certificate authority (issuer `Latchkey`), as the server
 * publishes it at `/{tenant}/pki/ca.pem` (public; no sign-in needed). Prints its subject,
 * validity and SHA-256 fingerprint; `--pem` prints the PEM, `--file` writes it (for
 * `openssl verify -CAfile`).
 */
export function caCommand(): Command {
  const ca = new Command('ca').description(
    "The tenant's certificate authority (certificates with issuer Latchkey)",
  );
  ca.command('show')
    .description("Show the tenant's CA certificate (made when its first Latchkey certificate is created)")
    .option('--tenant <id>', 'tenant id or domain (default: the signed-in or dev server tenant)')
    .option('--pem', 'print the PEM instead of its summary')
    .option('--file <path>', 'also write the PEM to this file')
    .action(async (o: { tenant?: string; pem?: boolean; file?: string }, cmd: Command) => {
      const c = ctx(cmd);
      const profile = loadProfile();
      const tenant = o.tenant ?? profile?.tenantId ?? loadDevServer()?.tenantId;
      if (!tenant) throw new CliError('no tenant: pass --tenant, or sign in with `latchkey login`', 2);
      const { server, ca: caPem } = resolveServer(c, profile);
      const res = await request('GET', `${server}/${seg(tenant)}/pki/ca.pem`, {
        ...(caPem ? { ca: caPem } : {}),
      });
      if (res.status >= 400) throw new CliError(errorMessage(res), 1, res.status);
      const pem = res.text;
      if (o.file) writeFileSync(o.file, pem);
      if (o.pem) {
        process.stdout.write(pem);
        return;
      }
      const x = new X509Certificate(pem);
      print(c, {
        subject: x.subject,
        notBefore: new Date(x.validFrom).toISOString(),
        notAfter: new Date(x.validTo).toISOString(),
        sha256: x.fingerprint256,
        url: `${server}/${seg(tenant)}/pki/ca.pem`,
      });
    });
  return ca;
}
