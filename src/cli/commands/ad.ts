import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { type Ctx, listed, print, printed, withCtx } from '../context.js';
import { CliError } from '../errors.js';
import { warn } from '../log.js';
import { seg } from '../path.js';
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

const bool = (flag: string) => (v: string) => {
  if (v !== 'true' && v !== 'false') throw new CliError(`${flag} must be true or false`, 2);
  return v === 'true';
};

/** `latchkey ad user ...`: people who sign in with a password (az ad user). */
function userCommands(ad: Command): void {
  const user = ad.command('user').description('Users');
  const path = (id: string) => `/api/directory/users/${seg(id)}`;
  const shownOnce = () => warn('The password is shown only once: hand it over safely.');

  user
    .command('create')
    .description('Create a user; without --password one is generated and printed once')
    .requiredOption('--display-name <name>', 'display name')
    .requiredOption('--user-principal-name <name>', 'the sign-in name (e.g. alice@contoso.example)')
    .option('--password <password>', '12–256 characters (default: a generated one)')
    .action(
      withCtx(async (o, c) => {
        const r = await api<{ user: Record<string, unknown>; password?: string }>(
          c,
          'POST',
          '/api/directory/users',
          {
            userPrincipalName: o.userPrincipalName,
            displayName: o.displayName,
            ...(o.password !== undefined ? { password: o.password } : {}),
          },
        );
        print(c, { ...r.user, ...(r.password ? { password: r.password } : {}) });
        if (r.password) shownOnce();
      }),
    );

  user
    .command('list')
    .description('List users')
    .action(listed(() => '/api/directory/users'));

  user
    .command('show')
    .description('Show a user')
    .requiredOption('--id <id>', 'object id or user principal name')
    .action(printed((o: { id: string }, c) => api(c, 'GET', path(o.id))));

  user
    .command('update')
    .description('Enable or disable a user, or set a password (a new password ends their console sessions)')
    .requiredOption('--id <id>', 'object id or user principal name')
    .option(
      '--account-enabled <bool>',
      'true or false (disabling stops their tokens at once)',
      bool('--account-enabled'),
    )
    .option('--password <password>', 'a new password (12–256 characters)')
    .option('--generate-password', 'set a generated password and print it once')
    .action(
      withCtx(async (o, c) => {
        if (o.accountEnabled === undefined && o.password === undefined && !o.generatePassword)
          throw new CliError('give --account-enabled, --password or --generate-password', 2);
        if (o.password !== undefined && o.generatePassword)
          throw new CliError('--password and --generate-password exclude each other', 2);
        let generated: string | undefined;
        if (o.generatePassword)
          generated = (await api<{ password?: string }>(c, 'POST', `${path(o.id)}/resetPassword`)).password;
        const u =
          o.accountEnabled !== undefined || o.password !== undefined
            ? await api<Record<string, unknown>>(c, 'PATCH', path(o.id), {
                ...(o.accountEnabled !== undefined ? { accountEnabled: o.accountEnabled } : {}),
                ...(o.password !== undefined ? { password: o.password } : {}),
              })
            : await api<Record<string, unknown>>(c, 'GET', path(o.id));
        print(c, { ...u, ...(generated ? { password: generated } : {}) });
        if (generated) shownOnce();
      }),
    );

  user
    .command('revoke-sessions')
    .description(
      "End a user's sign-in sessions: refresh tokens (every CLI and app login) and console sessions",
    )
    .requiredOption('--id <id>', 'object id or user principal name')
    .action(printed((o: { id: string }, c) => api(c, 'POST', `${path(o.id)}/revokeSignInSessions`)));

  user
    .command('delete')
    .description('Delete a user (and their role assignments)')
    .requiredOption('--id <id>', 'object id or user principal name')
    .action(
      withCtx(async (o: { id: string }, c) => {
        await api(c, 'DELETE', path(o.id));
      }),
    );
}

/** `--parameters` as az takes it: JSON, or `@file` holding JSON. */
const jsonParameters = (v: string): Record<string, unknown> => {
  let raw = v;
  if (v.startsWith('@')) {
    try {
      raw = readFileSync(v.slice(1), 'utf8');
    } catch {
      throw new CliError(`cannot read parameters file: ${v.slice(1)}`, 2);
    }
  }
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {}
  throw new CliError('--parameters must be a JSON object (or @file holding one)', 2);
};

/** Graph calls (`/v1.0/...`) carry a token for the server itself. */
const GRAPH = { graph: true };

/** `latchkey ad app federated-credential ...` (az ad app federated-credential), over Graph. */
function appCommands(ad: Command): void {
  const app = ad.command('app').description('Application registrations');
  const fc = app
    .command('federated-credential')
    .description('Federated identity credentials of an application (docs/federation.md)');
  /** The application's object id: `--id` is its object id or its appId (client id), as in az. */
  const objectId = async (c: Ctx, id: string): Promise<string> => {
    const r = await api<{ value: { id: string }[] }>(
      c,
      'GET',
      `/v1.0/applications?$filter=${encodeURIComponent(`appId eq '${id.replace(/'/g, "''")}' or id eq '${id.replace(/'/g, "''")}'`)}`,
      undefined,
      GRAPH,
    );
    const found = r.value[0];
    if (!found) throw new CliError(`no application with id or appId '${id}'`);
    return found.id;
  };
  const base = async (c: Ctx, id: string) =>
    `/v1.0/applications/${seg(await objectId(c, id))}/federatedIdentityCredentials`;
  const strip = (v: Record<string, unknown>) => {
    const { '@odata.context': _ignored, ...rest } = v;
    return rest;
  };

  interface Target {
    id: string;
    federatedCredentialId: string;
  }
  const one = async (c: Ctx, o: Target) => `${await base(c, o.id)}/${seg(o.federatedCredentialId)}`;
  const appOption = (cmd: Command) =>
    cmd.requiredOption('--id <app>', "the application's object id or appId");
  const oneOptions = (cmd: Command) =>
    appOption(cmd).requiredOption('--federated-credential-id <id>', "the credential's id or name");

  appOption(fc.command('create').description('Create a federated identity credential'))
    .requiredOption('--parameters <json>', 'JSON {name, issuer, subject, audiences, description}, or @file')
    .action(
      printed(async (o: { id: string; parameters: string }, c) =>
        strip(
          await api<Record<string, unknown>>(
            c,
            'POST',
            await base(c, o.id),
            jsonParameters(o.parameters),
            GRAPH,
          ),
        ),
      ),
    );

  appOption(fc.command('list').description("List an application's federated identity credentials")).action(
    printed(
      async (o: { id: string }, c) =>
        (await api<{ value: unknown[] }>(c, 'GET', await base(c, o.id), undefined, GRAPH)).value,
    ),
  );

  oneOptions(fc.command('show').description('Show a federated identity credential')).action(
    printed(async (o: Target, c) =>
      strip(await api<Record<string, unknown>>(c, 'GET', await one(c, o), undefined, GRAPH)),
    ),
  );

  oneOptions(
    fc
      .command('delete')
      .description('Delete a federated identity credential (the next exchange with it is refused)'),
  ).action(
    withCtx(async (o: Target, c) => {
      await api(c, 'DELETE', await one(c, o), undefined, GRAPH);
    }),
  );
}

/** `latchkey ad sp ...`: service principals and their credentials (az ad sp). */
export function adCommand(): Command {
  const ad = new Command('ad').description('Directory objects');
  const sp = ad.command('sp').description('Service principals');
  const path = (id: string) => `/api/directory/servicePrincipals/${seg(id)}`;

  sp.command('create')
    .description('Create a service principal with a client secret (or a certificate); prints the secret once')
    .requiredOption('-n, --name <name>', 'display name')
    .option('--cert <pem>', 'register this public certificate (PEM) instead of creating a secret')
    .option(
      '--identifier-uri <uri>',
      'application ID URI (api://...) so others can request tokens for this app',
    )
    .option('--years <n>', 'secret lifetime in years (max 2)', years)
    .option(
      '--public-client',
      'a native app that signs users in through the browser (loopback redirect, PKCE); no secret',
    )
    .action(
      withCtx(async (o, c) => {
        if (o.publicClient && (o.cert || o.years))
          throw new CliError('--public-client takes no credential (--cert, --years)');
        const credential = o.publicClient
          ? null
          : o.cert
            ? { type: 'AsymmetricX509Cert', certificate: readPem(o.cert) }
            : { type: 'Password', ...(o.years ? { years: o.years } : {}) };
        const r = await api<CreateResult>(c, 'POST', '/api/directory/servicePrincipals', {
          displayName: o.name,
          ...(o.identifierUri ? { identifierUri: o.identifierUri } : {}),
          ...(o.publicClient ? { publicClient: true } : {}),
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
        if (r.credential?.secretText) warn('The password is shown only once: store it safely.');
      }),
    );

  sp.command('create-for-rbac')
    .description('Create a service principal with a secret and, with --role, assign it at --scopes (az)')
    .requiredOption('-n, --name <name>', 'display name')
    .option('--role <role>', 'role to assign, e.g. "Key Vault Secrets User"')
    .option('--scopes <scope...>', 'scopes for --role (ARM ids)')
    .option('--years <n>', 'secret lifetime in years (max 2)', years)
    .addHelpText(
      'after',
      `
Examples:
  latchkey ad sp create-for-rbac -n ci --role "Key Vault Secrets User" \\
    --scopes /subscriptions/SUB/resourceGroups/default/providers/Microsoft.KeyVault/vaults/shop`,
    )
    .action(
      withCtx(async (o, c) => {
        if (!!o.role !== !!o.scopes) throw new CliError('give --role and --scopes together', 2);
        const r = await api<CreateResult>(c, 'POST', '/api/directory/servicePrincipals', {
          displayName: o.name,
          credential: { type: 'Password', ...(o.years ? { years: o.years } : {}) },
        });
        const { assignRole } = await import('./role.js');
        for (const scope of (o.scopes as string[] | undefined) ?? [])
          await assignRole(c, r.servicePrincipal.id, o.role, scope);
        print(c, {
          appId: r.servicePrincipal.appId,
          displayName: r.servicePrincipal.displayName,
          password: r.credential?.secretText ?? null,
          tenant: r.servicePrincipal.appOwnerOrganizationId,
        });
        warn('The password is shown only once: store it safely.');
      }),
    );

  sp.command('list')
    .description('List service principals (applications and managed identities)')
    .action(listed(() => '/api/directory/servicePrincipals'));

  sp.command('show')
    .description('Show a service principal')
    .requiredOption('--id <id>', 'object id or app id')
    .action(printed((o: { id: string }, c) => api(c, 'GET', path(o.id))));

  sp.command('update')
    .description('Enable or disable a service principal (disabling stops its tokens at once)')
    .requiredOption('--id <id>', 'object id or app id')
    .requiredOption('--enabled <bool>', 'true or false')
    .action(
      printed(async (o: { id: string; enabled: string }, c) => {
        if (o.enabled !== 'true' && o.enabled !== 'false')
          throw new CliError('--enabled must be true or false', 2);
        return api(c, 'PATCH', path(o.id), { accountEnabled: o.enabled === 'true' });
      }),
    );

  sp.command('delete')
    .description('Delete a service principal')
    .requiredOption('--id <id>', 'object id or app id')
    .action(
      withCtx(async (o: { id: string }, c) => {
        await api(c, 'DELETE', path(o.id));
      }),
    );

  userCommands(ad);
  appCommands(ad);
  ad.command('signed-in-user')
    .description('The signed-in user')
    .command('show')
    .description('Show the signed-in user (az ad signed-in-user show)')
    .action(
      withCtx(async (_o, c) => {
        const a = await api<{
          objectId: string;
          displayName: string | null;
          user: { name: string; type: string };
        }>(c, 'GET', '/api/account');
        if (a.user.type !== 'user')
          throw new CliError(
            'signed in as a service principal, not a user: see `latchkey ad sp show --id APP_ID`',
          );
        print(c, { displayName: a.displayName, id: a.objectId, userPrincipalName: a.user.name });
      }),
    );

  const cred = sp.command('credential').description('Client secrets and certificates of a service principal');
  cred
    .command('reset')
    .description('Create a new secret (or register a certificate), removing the others unless --append')
    .requiredOption('--id <id>', 'object id or app id')
    .option('--append', 'keep the existing credentials')
    .option('--cert <pem>', 'register this public certificate (PEM) instead of a secret')
    .option('--years <n>', 'secret lifetime in years (max 2)', years)
    .option('--display-name <name>', 'a name for the credential')
    .action(
      withCtx(async (o, c) => {
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
      }),
    );
  cred
    .command('list')
    .description('List credentials (never their values)')
    .requiredOption('--id <id>', 'object id or app id')
    .action(listed((o: { id: string }) => `${path(o.id)}/credentials`));
  cred
    .command('delete')
    .description('Delete one credential')
    .requiredOption('--id <id>', 'object id or app id')
    .requiredOption('--key-id <keyId>', 'the credential’s key id')
    .action(
      withCtx(async (o: { id: string; keyId: string }, c) => {
        await api(c, 'DELETE', `${path(o.id)}/credentials/${seg(o.keyId)}`);
      }),
    );
  return ad;
}
