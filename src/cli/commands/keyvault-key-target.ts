import type { Command } from 'commander';
import type { Ctx } from '../context.js';
import { CliError } from '../errors.js';
import { endpointOf, type VaultEndpoint, vaultEndpoint } from './vault-client.js';

export const seg = (s: string) => encodeURIComponent(s);

export interface Target {
  ep: VaultEndpoint;
  name: string;
  version?: string;
}

/** `--vault-name` + `--name` [+ `--version`], or `--id https://{vault}/keys/{name}[/{version}]`. */
export async function target(
  c: Ctx,
  o: { vaultName?: string; name?: string; version?: string; id?: string },
): Promise<Target> {
  if (o.id) {
    const ep = endpointOf(o.id);
    const [, kind, name, version] = new URL(o.id).pathname.split('/');
    if (kind !== 'keys' || !name)
      throw new CliError('--id must be a key identifier: https://{vault}/keys/{name}[/{version}]', 2);
    return { ep, name, ...(version ? { version } : {}) };
  }
  if (!o.vaultName || !o.name) throw new CliError('give --vault-name and --name (or --id)', 2);
  return {
    ep: await vaultEndpoint(c, o.vaultName),
    name: o.name,
    ...(o.version ? { version: o.version } : {}),
  };
}

export const named = (c: Command, withId = true) => {
  c.option('--vault-name <name>', 'vault name').option('-n, --name <name>', 'key name');
  if (withId) c.option('--id <url>', 'key identifier (instead of --vault-name and --name)');
  return c;
};
export const versioned = (c: Command) =>
  named(c).option('--version <version>', 'a key version (default: the latest)');
