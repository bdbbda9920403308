import { Command } from 'commander';
import { parseDuration } from '../../config/index.js';
import { print, withCtx } from '../context.js';
import { CliError } from '../errors.js';
import { warn } from '../log.js';
import { seg } from '../path.js';
import { api } from '../session.js';
import { loadProfile } from '../state.js';

const seconds = (v: string): number => {
  try {
    return Math.round(parseDuration(v) / 1000);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
};

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(/[\s,]+/).filter(Boolean)];

/** `--resource-group NAME` (in the default subscription) or a full resource-group id. */
function resourceGroupId(rg: string | undefined): string | undefined {
  if (!rg) return undefined;
  if (rg.startsWith('/subscriptions/')) return rg;
  const sub = loadProfile()?.subscriptionId;
  if (!sub)
    throw new CliError(
      '--resource-group needs a login with a subscription, or a full /subscriptions/.../resourceGroups/... id',
      2,
    );
  return `/subscriptions/${sub}/resourceGroups/${rg}`;
}

/** `latchkey provisioning-key create|list|show|rotate|revoke`. */
export function provisioningCommand(): Command {
  const pk = new Command('provisioning-key').description(
    'Provisioning keys: short-lived, scoped bootstrap credentials for pipelines and new hosts',
  );
  const path = (id: string) => `/api/provisioning/keys/${seg(id)}`;

  pk.command('create')
    .description(
      'Create a key (its value is printed once); present it as LATCHKEY_PROVISIONING_KEY or a key file',
    )
    .requiredOption(
      '--scopes <scope...>',
      'hosts:enroll identities:write identities:assign apps:write vaults:write roleAssignments:write secrets:write applications:credentials audit:read',
      collect,
    )
    .requiredOption(
      '--expires-in <duration>',
      'lifetime, e.g. 30m, 12h, 7d (required; capped by the server)',
      seconds,
    )
    .option('-n, --name <name>', 'a display name')
    .option('--max-uses <n>', 'refuse after this many uses', (v) => Number(v))
    // duplicate-ok: alike in shape only with `ad sp create` (a parsed option, a long-help option, an
    // action): two commands with different flags and bodies.
    .option('--allowed-cidrs <cidr...>', 'only from these address ranges', collect)
    .option(
      '-g, --resource-group <rg>',
      'limit the key to one resource group (name in the default subscription, or an id)',
    )
    .action(
      withCtx(async (o, c) => {
        const r = await api<{ key: string }>(c, 'POST', '/api/provisioning/keys', {
          scopes: o.scopes,
          expiresInSeconds: o.expiresIn,
          ...(o.name ? { displayName: o.name } : {}),
          ...(o.maxUses !== undefined ? { maxUses: o.maxUses } : {}),
          ...(o.allowedCidrs ? { allowedCidrs: o.allowedCidrs } : {}),
          ...(o.resourceGroup ? { resourceGroup: resourceGroupId(o.resourceGroup) } : {}),
        });
        print(c, r);
        warn('The key is shown only once: hand it to the pipeline or host now.');
      }),
    );
  pk.command('list')
    .description('List keys (never their values)')
    .action(
      withCtx(async (_o, c) => {
        print(c, (await api<{ value: unknown[] }>(c, 'GET', '/api/provisioning/keys')).value);
      }),
    );
  pk.command('show')
    .description('Show one key, with its usage')
    .requiredOption('--id <id>', 'the key id (lkp_...)')
    .action(
      withCtx(async (o, c) => {
        print(c, await api(c, 'GET', path(o.id)));
      }),
    );
  pk.command('rotate')
    .description('Issue a successor; the old key keeps working only until the grace period ends')
    .requiredOption('--id <id>', 'the key id')
    .requiredOption(
      '--grace <duration>',
      'how long the old key stays valid, e.g. 10m (0s ends it now)',
      seconds,
    )
    .option(
      '--expires-in <duration>',
      'lifetime of the successor (default: the same as the old key)',
      seconds,
    )
    .action(
      withCtx(async (o, c) => {
        print(
          c,
          await api(c, 'POST', `${path(o.id)}/rotate`, {
            graceSeconds: o.grace,
            ...(o.expiresIn ? { expiresInSeconds: o.expiresIn } : {}),
          }),
        );
      }),
    );
  pk.command('revoke')
    .description('Revoke a key at once')
    .requiredOption('--id <id>', 'the key id')
    .action(
      withCtx(async (o, c) => {
        print(c, await api(c, 'POST', `${path(o.id)}/revoke`));
      }),
    );
  return pk;
}
