import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { ctx, print, printed } from '../context.js';
import { CliError } from '../errors.js';
import { errorMessage, request } from '../http.js';
import { seg } from '../path.js';
import { api, resolveServer } from '../session.js';
import { loadDevServer, loadProfile } from '../state.js';

const summary = (x: X509Certificate) => ({
  subject: x.subject.replace(/\n/g, ', '),
  notBefore: new Date(x.validFrom).toISOString(),
  notAfter: new Date(x.validTo).toISOString(),
  sha256: x.fingerprint256,
});

/**
 * `latchkey ca show`: the tenant's own certificate authority (issuer `Latchkey`), as the server
 * publishes it at `/{tenant}/pki/ca.pem` (public; no sign-in needed). Prints the current CA's
 * subject, validity and SHA-256 fingerprint, the URLs of the bundle and CRL, and `chain`: every
 * CA in the published bundle (after a rotation, the older ones too); `--pem` prints the bundle,
 * `--file` writes it (for `openssl verify -CAfile`). `latchkey ca rotate` rolls the CA (a tenant
 * Owner); `latchkey ca list` lists its generations (signed in).
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
      const chain = (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
        (p) => new X509Certificate(p),
      );
      if (!chain[0]) throw new CliError('the server published no CA certificate', 1);
      const base = `${server}/${seg(tenant)}/pki`;
      print(c, {
        ...summary(chain[0]),
        url: `${base}/ca.pem`,
        crl: `${base}/crl`,
        chain: chain.map((x, i) => ({ ...summary(x), current: i === 0 })),
      });
    });
  ca.command('list')
    .description("List the generations of the signed-in tenant's CA (current first), with their CRLs")
    .action(printed(async (_o, c) => (await api<{ value: unknown[] }>(c, 'GET', '/api/pki/ca')).value));
  ca.command('rotate')
    .description(
      "Roll the signed-in tenant's CA: a new key and CA certificate sign from now on; the old CA stays in the published bundle until the certificates it signed expire (tenant Owner)",
    )
    .action(printed((_o, c) => api(c, 'POST', '/api/pki/ca/rotate')));
  return ca;
}
