import type { Command } from 'commander';
import { type Ctx, ctx } from '../context.js';
import { CliError } from '../errors.js';
import { isoSeconds, parseBool, show } from './arm.js';
import { seg, vaultWideCommands } from './keyvault-object.js';
import { type VaultEndpoint, vaultCall, vaultEndpoint, vaultList } from './vault-client.js';

/** A certificate issuer on the wire (Azure's IssuerBundle; the password is never answered). */
interface WireIssuer {
  id: string;
  provider?: string;
  credentials?: { account_id?: string | null };
  org_details?: {
    id?: string | null;
    admin_details?: { first_name?: string; last_name?: string; email?: string; phone?: string }[] | null;
  };
  attributes?: { enabled?: boolean; created?: number; updated?: number };
}

type WireAdmin = NonNullable<NonNullable<WireIssuer['org_details']>['admin_details']>[number];

/** As az prints its track-1 `AdministratorDetails`. */
const adminView = (a: WireAdmin) => ({
  emailAddress: a.email ?? null,
  firstName: a.first_name ?? null,
  lastName: a.last_name ?? null,
  phone: a.phone ?? null,
});

/** As az prints its track-1 `IssuerBundle`: camelCase, times ISO, `password` always null. */
const issuerView = (b: WireIssuer) => ({
  attributes: {
    created: isoSeconds(b.attributes?.created),
    enabled: b.attributes?.enabled ?? null,
    updated: isoSeconds(b.attributes?.updated),
  },
  credentials:
    b.credentials !== undefined ? { accountId: b.credentials.account_id ?? null, password: null } : null,
  id: b.id,
  organizationDetails: b.org_details
    ? {
        adminDetails: (b.org_details.admin_details ?? []).map(adminView),
        id: b.org_details.id ?? null,
      }
    : null,
  provider: b.provider ?? null,
});

interface IssuerOptions {
  vaultName: string;
  issuerName: string;
  providerName?: string;
  accountId?: string;
  password?: string;
  organizationId?: string;
  disabled?: string;
  email?: string;
  firstName?: string;
  lastName?: string;
  phone?: string;
}

/** The body of a set (PUT) or update (PATCH): only what was given. */
const issuerBody = (o: IssuerOptions) => {
  const disabled = parseBool('--disabled', o.disabled);
  return {
    ...(o.providerName !== undefined ? { provider: o.providerName } : {}),
    ...(o.accountId !== undefined || o.password !== undefined
      ? {
          credentials: {
            ...(o.accountId !== undefined ? { account_id: o.accountId } : {}),
            ...(o.password !== undefined ? { pwd: o.password } : {}),
          },
        }
      : {}),
    ...(o.organizationId !== undefined
      ? { org_details: { id: o.organizationId } as { id: string; admin_details?: WireAdmin[] } }
      : {}),
    ...(disabled !== undefined ? { attributes: { enabled: !disabled } } : {}),
  };
};

/**
 * `latchkey keyvault certificate issuer create|show|list|update|delete` (az keyvault certificate
 * issuer): a vault's certificate issuers. Latchkey's one provider is `Latchkey`, the tenant's CA.
 */
export function issuerCommands(cert: Command): void {
  const issuer = cert.command('issuer').description("A vault's certificate issuers (provider Latchkey)");
  const path = (name: string) => `/certificates/issuers/${seg(name)}`;
  const group = vaultWideCommands<IssuerOptions, WireIssuer>(issuer, issuerView);
  const sub = (name: string, description: string, named = true) => {
    const cmd = group.sub(name, description);
    return named ? cmd.requiredOption('--issuer-name <name>', 'issuer name') : cmd;
  };
  const act = group.act;
  const writeOptions = (cmd: Command) =>
    cmd
      .option('--account-id <id>', "the issuer's account id (kept and shown)")
      .option('--password <password>', "the issuer's account password (never stored by Latchkey)")
      .option('--organization-id <id>', "the issuer's organization id")
      .option('--disabled <bool>', 'true: the issuer cannot issue');

  writeOptions(
    sub('create', 'Create (or replace) a certificate issuer').requiredOption(
      '--provider-name <name>',
      'the provider: Latchkey (the tenant CA)',
    ),
  ).action(act((c, ep, o) => vaultCall<WireIssuer>(c, ep, 'PUT', path(o.issuerName), issuerBody(o))));
  writeOptions(
    sub('update', 'Update a certificate issuer (the fields given)').option(
      '--provider-name <name>',
      'the provider: Latchkey',
    ),
  ).action(
    act(async (c, ep, o) => {
      const body = issuerBody(o);
      // A new organization id keeps the issuer's administrators (a PATCH of org_details replaces both).
      if (body.org_details) {
        const cur = await vaultCall<WireIssuer>(c, ep, 'GET', path(o.issuerName));
        const admins = cur.org_details?.admin_details;
        if (admins?.length) body.org_details = { ...body.org_details, admin_details: admins };
      }
      return vaultCall<WireIssuer>(c, ep, 'PATCH', path(o.issuerName), body);
    }),
  );
  sub('show', 'Show a certificate issuer').action(
    act((c, ep, o) => vaultCall<WireIssuer>(c, ep, 'GET', path(o.issuerName))),
  );
  sub('delete', 'Delete a certificate issuer').action(
    act((c, ep, o) => vaultCall<WireIssuer>(c, ep, 'DELETE', path(o.issuerName))),
  );
  sub('list', "List a vault's certificate issuers", false).action(async (o: IssuerOptions, cmd: Command) => {
    const c = ctx(cmd);
    const items = await vaultList<WireIssuer>(
      c,
      await vaultEndpoint(c, o.vaultName),
      '/certificates/issuers',
    );
    show(
      c,
      items.map((i) => ({ id: i.id, provider: i.provider ?? null })),
    );
  });
  adminCommands(issuer, path);
}

/** Runs `fn` with the CLI context and the endpoint of `--vault-name`. */
const onVault =
  (fn: (c: Ctx, ep: VaultEndpoint, o: IssuerOptions) => Promise<void>) =>
  async (o: IssuerOptions, cmd: Command) => {
    const c = ctx(cmd);
    await fn(c, await vaultEndpoint(c, o.vaultName), o);
  };

/**
 * `latchkey keyvault certificate issuer admin add|list|delete` (az keyvault certificate issuer
 * admin): an issuer's administrators (`org_details.admin_details`). As az, the issuer is read,
 * its list changed and written back; Latchkey writes it with a PATCH of `org_details` (its id kept),
 * so the issuer's provider, account id and state are left as they are.
 */
function adminCommands(issuer: Command, path: (name: string) => string): void {
  const admin = issuer.command('admin').description("A certificate issuer's administrators");
  const sub = (name: string, description: string) =>
    admin
      .command(name)
      .description(description)
      .requiredOption('--vault-name <name>', 'vault name')
      .requiredOption('--issuer-name <name>', 'issuer name');
  const get = (c: Ctx, ep: VaultEndpoint, o: IssuerOptions) =>
    vaultCall<WireIssuer>(c, ep, 'GET', path(o.issuerName));
  const write = (c: Ctx, ep: VaultEndpoint, o: IssuerOptions, was: WireIssuer, admins: WireAdmin[]) => {
    const id = was.org_details?.id;
    return vaultCall<WireIssuer>(c, ep, 'PATCH', path(o.issuerName), {
      org_details: { ...(id ? { id } : {}), admin_details: admins },
    });
  };
  const adminsOf = (b: WireIssuer) => b.org_details?.admin_details ?? [];

  sub('list', "List a certificate issuer's administrators").action(
    onVault(async (c, ep, o) => show(c, adminsOf(await get(c, ep, o)).map(adminView))),
  );
  sub('add', 'Add an administrator to a certificate issuer')
    .requiredOption('--email <email>', "the administrator's email address")
    .option('--first-name <name>', "the administrator's first name")
    .option('--last-name <name>', "the administrator's last name")
    .option('--phone <phone>', "the administrator's phone number")
    .action(
      onVault(async (c, ep, o) => {
        const was = await get(c, ep, o);
        const admins = adminsOf(was);
        if (admins.some((a) => a.email === o.email)) throw new CliError(`admin '${o.email}' already exists`);
        const added: WireAdmin = {
          email: o.email ?? '',
          ...(o.firstName !== undefined ? { first_name: o.firstName } : {}),
          ...(o.lastName !== undefined ? { last_name: o.lastName } : {}),
          ...(o.phone !== undefined ? { phone: o.phone } : {}),
        };
        const now = await write(c, ep, o, was, [...admins, added]);
        show(c, adminView(adminsOf(now).find((a) => a.email === o.email) ?? added));
      }),
    );
  sub('delete', "Remove an administrator from a certificate issuer, by email (az's delete)")
    .alias('remove')
    .requiredOption('--email <email>', "the administrator's email address")
    .action(
      onVault(async (c, ep, o) => {
        const was = await get(c, ep, o);
        const admins = adminsOf(was);
        const rest = admins.filter((a) => a.email !== o.email);
        if (rest.length === admins.length)
          throw new CliError(`admin '${o.email}' not found for issuer '${o.issuerName}'`);
        await write(c, ep, o, was, rest);
      }),
    );
}
