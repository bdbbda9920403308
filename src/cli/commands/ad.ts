import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';
import { api, resolveServer } from '../session.js';

interface CreateResult {
  servicePrincipal: { id: string; appId: string; displayName: string; appOwnerOrganizationId: string };
  credential: { keyId: string; secretText?: string; endDateTime: string } | null;
}

const readPem = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError(`cannot read certificate file: ${path}`);
  }
};

const years = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 2)
    throw new CliError('--years must be a number between 0 and 2', 2);
  return n;
};

/** `latchkey ad sp ...`: service principals and their credentials (az ad sp). */
export function adCommand(): Command {
  const ad = new Command('ad').description('Directory objects');
  const sp = ad.command('sp').description('Service principals');
  const path = (id: string) => `/api/directory/servicePrincipals/${encodeURIComponent(id)}`;

  sp.command('create')
    .description('Create a service principal with a client secret (or a certificate); prints the secret once')
    .requiredOption('-n, --name <name>', 'display name')
    .option('--cert <pem>', 'register this public certificate (PEM) instead of creating a secret')
    .option(
      '--identifier-uri <uri>',
      'application ID URI (api://...) so others can request tokens for this app',
    )
    .option('--years <n>', 'secret lifetime in years (max 2)', years)
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const credential = o.cert
        ? { type: 'AsymmetricX509Cert', certificate: readPem(o.cert) }
        : { type: 'Password', ...(o.years ? { years: o.years } : {}) };
      const r = await api<CreateResult>(c, 'POST', '/api/directory/servicePrincipals', {
        displayName: o.name,
        ...(o.identifierUri ? { identifierUri: o.identifierUri } : {}),
        credential,
      });
      print(c, {
        appId: r.servicePrincipal.appId,
        displayName: r.servicePrincipal.displayName,
        objectId: r.servicePrincipal.id,
        password: r.credential?.secretText ?? null,
        tenant: r.servicePrincipal.appOwnerOrganizationId,
        authority: resolveServer(c).server,
      });
      if (r.credential?.secretText)
        process.stderr.write('The password is shown only once: store it safely.\n');
    });

  sp.command('list')
    .description('List service principals (applications and managed identities)')
    .action(async (_o, cmd: Command) => {
      const c = ctx(cmd);
      print(c, (await api<{ value: unknown[] }>(c, 'GET', '/api/directory/servicePrincipals')).value);
    });

  sp.command('show')
    .description('Show a service principal')
    .requiredOption('--id <id>', 'object id or app id')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      print(c, await api(c, 'GET', path(o.id)));
    });

  sp.command('update')
    .description('Enable or disable a service principal (disabling stops its tokens at once)')
    .requiredOption('--id <id>', 'object id or app id')
    .requiredOption('--enabled <bool>', 'true or false')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      if (o.enabled !== 'true' && o.enabled !== 'false')
        throw new CliError('--enabled must be true or false', 2);
      print(c, await api(c, 'PATCH', path(o.id), { accountEnabled: o.enabled === 'true' }));
    });

  sp.command('delete')
    .description('Delete a service principal')
    .requiredOption('--id <id>', 'object id or app id')
    .action(async (o, cmd: Command) => {
      await api(ctx(cmd), 'DELETE', path(o.id));
    });

  const cred = sp.command('credential').description('Client secrets and certificates of a service principal');
  cred
    .command('reset')
    .description('Create a new secret (or register a certificate), removing the others unless --append')
    .requiredOption('--id <id>', 'object id or app id')
    .option('--append', 'keep the existing credentials')
    .option('--cert <pem>', 'register this public certificate (PEM) instead of a secret')
    .option('--years <n>', 'secret lifetime in years (max 2)', years)
    .option('--display-name <name>', 'a name for the credential')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const body = o.cert
        ? { type: 'AsymmetricX509Cert', certificate: readPem(o.cert) }
        : { type: 'Password', ...(o.years ? { years: o.years } : {}) };
      const r = await api<{ keyId: string; secretText?: string; endDateTime: string }>(
        c,
        'POST',
        `${path(o.id)}/credentials`,
        {
          ...body,
          ...(o.append ? { append: true } : {}),
          ...(o.displayName ? { displayName: o.displayName } : {}),
        },
      );
      const sp = await api<{ appId: string; appOwnerOrganizationId: string }>(c, 'GET', path(o.id));
      print(c, {
        appId: sp.appId,
        keyId: r.keyId,
        password: r.secretText ?? null,
        endDateTime: r.endDateTime,
        tenant: sp.appOwnerOrganizationId,
      });
    });
  cred
    .command('list')
    .description('List credentials (never their values)')
    .requiredOption('--id <id>', 'object id or app id')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      print(c, (await api<{ value: unknown[] }>(c, 'GET', `${path(o.id)}/credentials`)).value);
    });
  cred
    .command('delete')
    .description('Delete one credential')
    .requiredOption('--id <id>', 'object id or app id')
    .requiredOption('--key-id <keyId>', 'the credential’s key id')
    .action(async (o, cmd: Command) => {
      await api(ctx(cmd), 'DELETE', `${path(o.id)}/credentials/${encodeURIComponent(o.keyId)}`);
    });
  return ad;
}
