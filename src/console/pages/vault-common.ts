import { LatchkeyError } from '../../errors/index.js';
import type { Vault } from '../../vault/model.js';
import type { SecretCallContext } from '../../vault/secrets.js';
import { errorStateOf, postForm, seg } from '../components.js';
import { type ConsoleContext, params } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { breadcrumbs, errorAlert, tabs } from '../layout.js';
import { subscription } from './shared.js';

export const VAULTS = '/console/vaults';
export const vaultBase = (v: Pick<Vault, 'resourceGroup' | 'name'>) =>
  `${VAULTS}/${seg(v.resourceGroup)}/${seg(v.name)}`;

export type VaultTab = 'overview' | 'secrets' | 'keys' | 'certificates' | 'policies' | 'iam';

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
  { label: 'Certificates', href: `${b}/certificates`, current: current === 'certificates' },
  { label: 'Access policies', href: `${b}/access-policies`, current: current === 'policies' },
  { label: 'Access control (IAM)', href: `${b}/iam`, current: current === 'iam' },
])}`;
}

/** The role a user refused on a vault's secrets (or keys) tab needs, by its id and name. */
export const OFFICER_ROLES = {
  secrets: { id: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7', name: 'Key Vault Secrets Officer' },
  keys: { id: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603', name: 'Key Vault Crypto Officer' },
  certificates: { id: 'a4417e6f-fecd-4de8-b567-7b0420556985', name: 'Key Vault Certificates Officer' },
} as const;
/** A vault tab whose refusals offer its Officer role. */
export type DataTab = keyof typeof OFFICER_ROLES;

/**
 * Where "Grant yourself …" returns to: a vault's secrets, keys or certificates tab, or one
 * object's page (its versions), by name. Anything else goes to the vault's IAM page.
 */
export const GRANT_BACK = /^(?:secrets|keys|certificates)(?:\/[0-9A-Za-z-]{1,127})?$/;

/**
 * A section of a vault's secrets or keys tab, or of one secret's or key's page: a 403 for the
 * signed-in user on an RBAC vault adds, under the error, a form to grant themself the Officer role
 * when they may write role assignments at the vault (posting to the vault's IAM action, with its
 * CSRF token, back to `back`), else which role to ask an Owner for. `only403`: other errors fail
 * the page as a whole (an object page of a missing secret stays a 404).
 */
export async function vaultDataSection(
  ctx: ConsoleContext,
  vault: Vault,
  tab: DataTab,
  load: () => Promise<SafeHtml>,
  opts: { back?: string; only403?: boolean } = {},
): Promise<SafeHtml> {
  try {
    return await load();
  } catch (e) {
    if (!(e instanceof LatchkeyError)) throw e;
    if (opts.only403 && e.status !== 403) throw e;
    const alert = errorAlert(errorStateOf(e));
    if (e.status !== 403) return alert;
    return html`${alert}${await grantOffer(ctx, vault, tab, opts.back ?? tab)}`;
  }
}

/**
 * On an RBAC vault, a form to grant the signed-in user the tab's Officer role when they may write
 * role assignments at the vault (posting to the vault's IAM action, back to `back`), else which
 * role to ask an Owner for; nothing on an access-policy vault.
 */
async function grantOffer(
  ctx: ConsoleContext,
  vault: Vault,
  tab: DataTab,
  back: string,
): Promise<SafeHtml | string> {
  if (!vault.enableRbacAuthorization) return '';
  const role = OFFICER_ROLES[tab];
  const mayGrant = await ctx.s.access.allows(
    ctx.caller,
    'Microsoft.Authorization/roleAssignments/write',
    vault.armId,
  );
  return mayGrant
    ? postForm(
        ctx,
        `${vaultBase(vault)}/iam`,
        html`<input type="hidden" name="role" value="${role.id}"><input type="hidden" name="assignee" value="${ctx.caller.oid}"><input type="hidden" name="back" value="${back}"><button type="submit" class="btn-primary" id="grant-yourself">Grant yourself ${role.name} on this vault</button>`,
      )
    : html`<p id="ask-owner">Ask an Owner of ${vault.name} for ${role.name} on this vault.</p>`;
}

/**
 * A button action on a secret's or key's page (Show value, Enable, …) refused with 403: the page
 * is shown again with the error (by the router) and, under it, the same offer as a refused section.
 */
export async function refusedActionOffer(
  ctx: ConsoleContext,
  vault: Vault,
  tab: DataTab,
  back: string,
): Promise<SafeHtml | string> {
  return ctx.failedStatus === 403 ? grantOffer(ctx, vault, tab, back) : '';
}
