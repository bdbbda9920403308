import { LatchkeyError } from '../../errors/index.js';
import type { Vault } from '../../vault/model.js';
import type { SecretCallContext } from '../../vault/secrets.js';
import { seg } from '../components.js';
import { type ConsoleContext, params } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { breadcrumbs, tabs } from '../layout.js';
import { subscription } from './shared.js';

export const VAULTS = '/console/vaults';
export const vaultBase = (v: Pick<Vault, 'resourceGroup' | 'name'>) =>
  `${VAULTS}/${seg(v.resourceGroup)}/${seg(v.name)}`;

export type VaultTab = 'overview' | 'secrets' | 'keys' | 'policies' | 'iam';

/** The vault of the URL through the control plane (needs `vaults/read`, as the management API does). */
export async function controlVault(ctx: ConsoleContext): Promise<Vault> {
  const p = params(ctx);
  return ctx.s.vaults.get(ctx.caller, {
    subscriptionId: subscription(ctx),
    resourceGroup: p.rg!,
    name: p.name!,
  });
}

/**
 * The vault of the URL as the data plane sees it: any active vault of the
 * caller's tenant (the data operation itself is then authorized by RBAC or the
 * access policies, exactly as at `https://{vault}.vault...`).
 */
export async function dataVault(ctx: ConsoleContext): Promise<{ vault: Vault; call: SecretCallContext }> {
  const p = params(ctx);
  const v = await ctx.s.vaults.byName((p.name ?? '').toLowerCase().slice(0, 64));
  if (
    !v ||
    v.deletedAt !== null ||
    v.tenantId !== ctx.caller.tenantId ||
    v.subscriptionId !== ctx.subscriptionId.toLowerCase() ||
    v.resourceGroup.toLowerCase() !== (p.rg ?? '').toLowerCase()
  )
    throw new LatchkeyError('VaultNotFound', `Vault '${(p.name ?? '').slice(0, 64)}' was not found.`);
  return {
    vault: v,
    call: { caller: ctx.caller, meta: ctx.meta, vault: v, baseUrl: ctx.s.vaultBaseUrl(v.nameLower) },
  };
}

export function vaultHeader(
  v: Pick<Vault, 'resourceGroup' | 'name'>,
  current: VaultTab,
  extra: { label: string }[] = [],
): SafeHtml {
  const b = vaultBase(v);
  return html`${breadcrumbs([{ label: 'Key vaults', href: VAULTS }, { label: v.name, href: b }, ...extra])}
<h1>${v.name}</h1>
${tabs([
  { label: 'Overview', href: b, current: current === 'overview' },
  { label: 'Secrets', href: `${b}/secrets`, current: current === 'secrets' },
  { label: 'Keys', href: `${b}/keys`, current: current === 'keys' },
  { label: 'Access policies', href: `${b}/access-policies`, current: current === 'policies' },
  { label: 'Access control (IAM)', href: `${b}/iam`, current: current === 'iam' },
])}`;
}
