import type { Command } from 'commander';
import { type Ctx, print, withCtx } from '../context.js';
import { CliError } from '../errors.js';
import { seg } from '../path.js';
import { api } from '../session.js';
import { loadProfile } from '../state.js';

/** Shared by the keyvault, role and audit commands: ARM paths, flag parsing, az-style output helpers. */

export const VAULT_API = 'api-version=2023-07-01';
export const AUTHZ_API = 'api-version=2022-04-01';

export interface SubscriptionJson {
  subscriptionId: string;
  displayName: string;
  state?: string;
}

/** The subscriptions the signed-in principal can see. */
export const listSubscriptions = async (c: Ctx): Promise<SubscriptionJson[]> =>
  (await api<{ value: SubscriptionJson[] }>(c, 'GET', '/subscriptions?api-version=2022-12-01')).value;

/** The subscription to work in: `--subscription`, else the login's default, else the first one listed. */
export async function subscriptionOf(c: Ctx, explicit?: string): Promise<string> {
  if (explicit) return explicit;
  const p = loadProfile();
  if (p?.subscriptionId) return p.subscriptionId;
  const first = (await listSubscriptions(c))[0]?.subscriptionId;
  if (!first) throw new CliError('no subscription found: pass --subscription');
  return first;
}

/** An action in a subscription: `sub` is `--subscription`, else the login's (see `subscriptionOf`). */
export function inSubscription<O extends { subscription?: string }>(
  act: (o: O, c: Ctx, sub: string) => Promise<void>,
): (o: O, cmd: Command) => Promise<void> {
  return withCtx<O>(async (o, c) => act(o, c, await subscriptionOf(c, o.subscription)));
}

/** `--subscription <id>`, the option of every command that works in a subscription. */
export const withSubscription = (c: Command): Command =>
  c.option('--subscription <id>', 'subscription id (default: the login’s)');

/** `-n NAME [-g GROUP] [--subscription ID]`: one resource, in resource group `default` unless `-g`. */
export const oneResource =
  (noun: string) =>
  (c: Command): Command =>
    withSubscription(
      c
        .requiredOption('-n, --name <name>', `${noun} name`)
        .option('-g, --resource-group <rg>', 'resource group', 'default'),
    );

/** `[-g GROUP] [--subscription ID]`: a list, in one resource group or the whole subscription. */
export const listScope = (c: Command): Command =>
  withSubscription(c.option('-g, --resource-group <rg>', 'resource group'));

/** The action of `delete` of one resource (`oneResource`): DELETE at its ARM path (with api-version). */
export const deleteAction = (pathOf: (sub: string, rg: string, name: string) => string) =>
  inSubscription<{ subscription?: string; resourceGroup: string; name: string }>(async (o, c, sub) => {
    await api(c, 'DELETE', pathOf(sub, o.resourceGroup, o.name));
  });

/**
 * The ARM path of a provider's resources of one type (`Microsoft.Web/sites`): those of resource
 * group `rg`, or of the whole subscription without one; with `name`, one of them.
 */
export const armPath = (sub: string, type: string, rg?: string, name?: string): string =>
  `/subscriptions/${seg(sub)}${rg === undefined ? '' : `/resourceGroups/${seg(rg)}`}/providers/${type}${name === undefined ? '' : `/${seg(name)}`}`;

export const VAULTS = 'Microsoft.KeyVault/vaults';
export const vaultPath = (sub: string, rg: string, name: string): string => armPath(sub, VAULTS, rg, name);

/**
 * An ARM id for a table cell: at most `max` characters, cut from the left so the resource's
 * own name (the end) stays visible: `…/vaults/shop`.
 */
export function shortId(id: string | null | undefined, max = 48): string | null {
  if (!id) return id ?? null;
  return id.length <= max ? id : `…${id.slice(id.length - max + 1)}`;
}

/** `true`/`false` flags as az spells them. */
export function parseBool(flag: string, v: string | boolean | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new CliError(`${flag} must be true or false`, 2);
}

/** `--tags k=v k2=v2` (a bare `k` means an empty value; `--tags ""` clears). */
export function parseTags(list: string[] | undefined): Record<string, string> | undefined {
  if (list === undefined) return undefined;
  const tags: Record<string, string> = {};
  for (const t of list) {
    if (t === '') continue;
    const i = t.indexOf('=');
    const k = i < 0 ? t : t.slice(0, i);
    if (!k) throw new CliError(`invalid tag '${t}': use key=value`, 2);
    tags[k] = i < 0 ? '' : t.slice(i + 1);
  }
  return tags;
}

/** ISO 8601 (or epoch seconds) → epoch seconds, for Key Vault attributes. */
export function parseTime(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = /^\d{1,12}$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (!Number.isFinite(ms))
    throw new CliError(`${flag} must be an ISO 8601 date-time, e.g. 2030-01-31T00:00:00Z`, 2);
  return Math.floor(ms / 1000);
}

/** ISO 8601 → epoch ms, for the audit API. */
export function parseTimeMs(flag: string, v: string | undefined): number | undefined {
  const s = parseTime(flag, v);
  return s === undefined ? undefined : s * 1000;
}

/** az prints Key Vault times as `2030-01-31T00:00:00+00:00`. */
export const isoSeconds = (s: number | null | undefined): string | null =>
  s === null || s === undefined ? null : new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, '+00:00');

/** A positive integer option. */
export function positiveInt(flag: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new CliError(`${flag} must be an integer 1–${max}`, 2);
    return n;
  };
}

/** Collects repeated or space-separated values: `--tags a=1 b=2`, `--secret-permissions get list`. */
export const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isGuid = (s: string): boolean => GUID_RE.test(s);

export interface PrincipalSummary {
  id: string;
  type: 'User' | 'ServicePrincipal';
  displayName: string;
  appId: string | null;
  userName: string | null;
}

/** Object id, app id or user name → the principal (needs directory read). */
export const resolvePrincipal = (c: Ctx, assignee: string): Promise<PrincipalSummary> =>
  api<PrincipalSummary>(c, 'GET', `/api/access/principals/${seg(assignee)}`);

/** Prints like `print`, but `--output table` shows only the columns az's table view would (a projection per row). */
export function show<T>(c: Ctx, data: T | T[], table?: (row: T) => Record<string, unknown>): void {
  // With --query the query picks the columns, from the JSON (as az).
  if (c.output !== 'table' || !table || c.query) print(c, data);
  else print(c, Array.isArray(data) ? data.map(table) : table(data));
}
