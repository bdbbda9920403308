import type { Command } from 'commander';
import { ctx } from '../context.js';
import { isoSeconds, parseBool, show } from './arm.js';
import { seg, vaultWideCommands } from './keyvault-object.js';
import { vaultCall, vaultEndpoint, vaultList } from './vault-client.js';

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
        adminDetails: (b.org_details.admin_details ?? []).map((a) => ({
          emailAddress: a.email ?? null,
          firstName: a.first_name ?? null,
          lastName: a.last_name ?? null,
          phone: a.phone ?? null,
        })),
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
    ...(o.organizationId !== undefined ? { org_details: { id: o.organizationId } } : {}),
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
  ).action(act((c, ep, o) => vaultCall<WireIssuer>(c, ep, 'PATCH', path(o.issuerName), issuerBody(o))));
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
}
