import { LatchkeyError } from '../../errors/index.js';
import { select } from '../components.js';
import type { ConsoleContext } from '../context.js';
import type { SafeHtml } from '../html.js';

/** The subscription the console works in; a tenant without one cannot hold resources yet. */
export function subscription(ctx: ConsoleContext): string {
  if (!ctx.subscriptionId)
    throw new LatchkeyError('ResourceNotFound', 'This tenant has no subscription yet.');
  return ctx.subscriptionId;
}

/** A resource-group picker for create forms. */
export async function resourceGroupSelect(ctx: ConsoleContext, id: string): Promise<SafeHtml> {
  const groups = ctx.subscriptionId
    ? await ctx.s.scopes.listResourceGroups(ctx.tenant.id, ctx.subscriptionId)
    : [];
  return select({
    id,
    name: 'resourceGroup',
    label: 'Resource group',
    options: groups.map((g) => ({ value: g.name, label: g.name })),
    value: groups.find((g) => g.name.toLowerCase() === 'default')?.name ?? groups[0]?.name ?? '',
  });
}

/** A principal's readable name for tables (display name and user name or app id), by object id. */
export async function principalNames(
  ctx: ConsoleContext,
  ids: Iterable<string>,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of new Set(ids)) {
    if (out.size >= 200) break;
    const p = await ctx.s.principals.get(ctx.tenant.id, id);
    if (p)
      out.set(
        id,
        p.kind === 'user'
          ? `${p.displayName} (${p.userName ?? 'user'})`
          : p.kind === 'managedIdentity'
            ? `${p.displayName} (managed identity)`
            : `${p.displayName} (application)`,
      );
  }
  return out;
}
