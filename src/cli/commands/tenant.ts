import { Command } from 'commander';
import { printed } from '../context.js';
import { CliError } from '../errors.js';
import { seg } from '../path.js';
import { api, type GlobalOptions } from '../session.js';

/** The tenant to address: `--tenant`, else the signed-in caller's own. */
async function tenantOf(c: GlobalOptions, tenant: string | undefined): Promise<string> {
  return seg(tenant ?? (await api<{ tenantId: string }>(c, 'GET', '/api/account')).tenantId);
}

/** `latchkey tenant ...`: Latchkey-specific settings of the caller's tenant (no az counterpart). */
export function tenantCommand(): Command {
  const tenant = new Command('tenant').description("Latchkey settings of your tenant (the tenant admin's)");
  const fi = tenant
    .command('federation-issuers')
    .description(
      "The tenant's allow-list of federation issuers: narrows the server's federation.allowedIssuers (docs/federation.md)",
    );
  fi.command('show')
    .description("Show the tenant's list, the server's list and the issuers in effect")
    .option('--tenant <id>', 'tenant id or domain (default: yours)')
    .action(
      printed(async (o: { tenant?: string }, c) =>
        api(c, 'GET', `/api/tenants/${await tenantOf(c, o.tenant)}/settings/federation`),
      ),
    );
  fi.command('set')
    .description(
      "Set the tenant's list (each issuer must be on the server's list); credentials naming an issuer taken off are refused at their next exchange",
    )
    .option('--issuers <url...>', "issuer URLs the tenant's federated credentials may name")
    .option('--none', 'allow no issuer at all (federation off for the tenant)')
    .option('--server-list', "follow the server's list as it is (clears the tenant's own list)")
    .option('--tenant <id>', 'tenant id or domain (default: yours)')
    .action(
      printed(async (o: { issuers?: string[]; none?: boolean; serverList?: boolean; tenant?: string }, c) => {
        const given = [o.issuers !== undefined, o.none === true, o.serverList === true].filter(Boolean);
        if (given.length !== 1)
          throw new CliError('give exactly one of --issuers, --none or --server-list', 2);
        const allowedIssuers = o.serverList ? null : (o.issuers ?? []);
        return api(c, 'PUT', `/api/tenants/${await tenantOf(c, o.tenant)}/settings/federation`, {
          allowedIssuers,
        });
      }),
    );
  return tenant;
}
