import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type Ctx, ctx } from '../context.js';
import { CliError } from '../errors.js';
import { writePrivateFile } from '../files.js';
import { seg } from '../path.js';
import { isoSeconds, positiveInt, show } from './arm.js';
import { endpointOf, type VaultEndpoint, vaultCall, vaultEndpoint, vaultList } from './vault-client.js';

/**
 * What `keyvault secret` and `keyvault key` share: naming an object
 * (`--vault-name` + `--name`, or `--id`), and the commands that list, delete,
 * recover, purge, back up and restore, the same for both kinds.
 */

/** The attributes of a secret or certificate bundle on the wire (epoch seconds). */
export interface WireAttributes {
  enabled?: boolean;
  nbf?: number | null;
  exp?: number | null;
  created?: number;
  updated?: number;
  recoverableDays?: number;
  recoveryLevel?: string;
}

/** az's shape of a bundle's attributes: ISO times, `notBefore`/`expires`. */
export const attributesView = (a: WireAttributes = {}) => ({
  created: isoSeconds(a.created),
  enabled: a.enabled ?? true,
  expires: isoSeconds(a.exp),
  notBefore: isoSeconds(a.nbf),
  recoverableDays: a.recoverableDays ?? null,
  recoveryLevel: a.recoveryLevel ?? null,
  updated: isoSeconds(a.updated),
});

/** az's fields of a deleted bundle (none for one that is not deleted). */
export const deletedView = (b: { recoveryId?: string; deletedDate?: number; scheduledPurgeDate?: number }) =>
  b.recoveryId !== undefined
    ? {
        deletedDate: isoSeconds(b.deletedDate),
        recoveryId: b.recoveryId,
        scheduledPurgeDate: isoSeconds(b.scheduledPurgeDate),
      }
    : {};

export { seg };

/** The URL segment of a kind of object. */
export type Collection = 'secrets' | 'keys' | 'certificates';

export interface Target {
  ep: VaultEndpoint;
  name: string;
  version?: string;
}

export interface TargetOptions {
  vaultName?: string;
  name?: string;
  version?: string;
  id?: string;
}

/** `--vault-name` + `--name` [+ `--version`], or `--id https://{vault}/{collection}/{name}[/{version}]`. */
export async function target(c: Ctx, o: TargetOptions, collection: Collection): Promise<Target> {
  if (o.id) {
    const ep = endpointOf(o.id);
    const [, kind, name, version] = new URL(o.id).pathname.split('/');
    if (kind !== collection || !name) {
      const noun = collection.slice(0, -1);
      throw new CliError(
        `--id must be a ${noun} identifier: https://{vault}/${collection}/{name}[/{version}]`,
        2,
      );
    }
    return { ep, name, ...(version ? { version } : {}) };
  }
  if (!o.vaultName || !o.name) throw new CliError('give --vault-name and --name (or --id)', 2);
  return {
    ep: await vaultEndpoint(c, o.vaultName),
    name: o.name,
    ...(o.version ? { version: o.version } : {}),
  };
}

/** Adds `--vault-name`, `--name` and, `withId`, `--id` to a command. */
export const named = (c: Command, collection: Collection, withId: boolean) => {
  const noun = collection.slice(0, -1);
  c.option('--vault-name <name>', 'vault name').option('-n, --name <name>', `${noun} name`);
  if (withId) c.option('--id <url>', `${noun} identifier (instead of --vault-name and --name)`);
  return c;
};

/** A kind's CLI: its collection, whether its commands take `--id`, and its output (az's shape, table row). */
export interface ObjectCli<B, V> {
  collection: Collection;
  withId: boolean;
  view: (b: B) => V;
  row: (v: V) => Record<string, unknown>;
}

/** `list` and `list-versions`. */
export function listCommands<B, V>(parent: Command, k: ObjectCli<B, V>, listDescription: string): void {
  const { collection, view, row } = k;
  const noun = collection.slice(0, -1);
  parent
    .command('list')
    .description(listDescription)
    .requiredOption('--vault-name <name>', 'vault name')
    .option('--maxresults <n>', 'at most this many', positiveInt('--maxresults', 100_000))
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const ep = await vaultEndpoint(c, o.vaultName);
      const list = await vaultList<B>(c, ep, `/${collection}?maxresults=25`, o.maxresults);
      show(
        c,
        list.map((b) => view(b)),
        row,
      );
    });

  named(parent.command('list-versions').description(`List the versions of a ${noun}`), collection, k.withId)
    .option('--maxresults <n>', 'at most this many', positiveInt('--maxresults', 100_000))
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const t = await target(c, o, collection);
      const path = `/${collection}/${seg(t.name)}/versions?maxresults=25`;
      show(
        c,
        (await vaultList<B>(c, t.ep, path, o.maxresults)).map((b) => view(b)),
        row,
      );
    });
}

/** `delete`, `recover`, `purge`, `list-deleted`, `show-deleted`, `backup`, `restore`. */
export function lifecycleCommands<B, V>(
  parent: Command,
  k: ObjectCli<B, V>,
  showDeletedDescription: string,
): void {
  const { collection, view, row } = k;
  const noun = collection.slice(0, -1);
  const deleted = `/deleted${collection}`;
  const one = (name: string, description: string) =>
    named(parent.command(name).description(description), collection, k.withId);
  /** Calls the vault about the named object and shows the object it answers with. */
  const showCall =
    (method: string, path: (t: Target) => string) => async (o: TargetOptions, cmd: Command) => {
      const c = ctx(cmd);
      const t = await target(c, o, collection);
      show(c, view(await vaultCall<B>(c, t.ep, method, path(t))), row);
    };

  one('delete', `Delete a ${noun} (soft delete: recoverable until purged)`).action(
    showCall('DELETE', (t) => `/${collection}/${seg(t.name)}`),
  );
  one('recover', `Recover a deleted ${noun}`).action(
    showCall('POST', (t) => `${deleted}/${seg(t.name)}/recover`),
  );
  one('purge', `Permanently delete a deleted ${noun}`).action(async (o, cmd: Command) => {
    const c = ctx(cmd);
    const t = await target(c, o, collection);
    await vaultCall(c, t.ep, 'DELETE', `${deleted}/${seg(t.name)}`);
  });

  parent
    .command('list-deleted')
    .description(`List deleted ${collection}`)
    .requiredOption('--vault-name <name>', 'vault name')
    .option('--maxresults <n>', 'at most this many', positiveInt('--maxresults', 100_000))
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const ep = await vaultEndpoint(c, o.vaultName);
      const list = await vaultList<B>(c, ep, `${deleted}?maxresults=25`, o.maxresults);
      show(
        c,
        list.map((b) => view(b)),
        row,
      );
    });

  one('show-deleted', showDeletedDescription).action(showCall('GET', (t) => `${deleted}/${seg(t.name)}`));

  one('backup', `Back up a ${noun} (all versions) to a file: an encrypted blob`)
    .requiredOption('-f, --file <path>', 'file to write')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const t = await target(c, o, collection);
      const r = await vaultCall<{ value: string }>(c, t.ep, 'POST', `/${collection}/${seg(t.name)}/backup`);
      writePrivateFile(o.file, Buffer.from(r.value, 'base64url'));
    });

  parent
    .command('restore')
    .description(`Restore a backed-up ${noun} into a vault (same installation and tenant)`)
    .requiredOption('--vault-name <name>', 'vault name')
    .requiredOption('-f, --file <path>', 'backup file')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      if (!existsSync(o.file)) throw new CliError(`file not found: ${o.file}`);
      const ep = await vaultEndpoint(c, o.vaultName);
      const value = readFileSync(o.file).toString('base64url');
      show(c, view(await vaultCall<B>(c, ep, 'POST', `/${collection}/restore`, { value })), row);
    });
}

/**
 * A group of vault-wide subcommands (`certificate contact …`, `certificate issuer …`): `sub`
 * adds one taking `--vault-name`; `act` runs a call on the vault's endpoint and prints what it
 * answers through `view` (az's shape).
 */
export function vaultWideCommands<O extends { vaultName: string }, W>(
  group: Command,
  view: (w: W) => unknown,
) {
  return {
    sub: (name: string, description: string) =>
      group.command(name).description(description).requiredOption('--vault-name <name>', 'vault name'),
    act: (fn: (c: Ctx, ep: VaultEndpoint, o: O) => Promise<W>) => async (o: O, cmd: Command) => {
      const c = ctx(cmd);
      show(c, view(await fn(c, await vaultEndpoint(c, o.vaultName), o)));
    },
  };
}
