import type { FastifyRequest } from 'fastify';
import type { Caller, RequestMeta } from '../access/caller.js';
import type { Principal } from '../authority/principals.js';
import type { Tenant } from '../authority/tenants.js';
import type { Services } from '../server/services.js';
import type { SafeHtml } from './html.js';
import type { Flash, NavKey } from './layout.js';

/**
 * The services console pages and actions use — only those that take the signed-in caller and
 * check its access (plus configuration and URL helpers). Sign-in and session machinery lives in
 * login.ts / routes.ts, which take their own narrow set.
 */
export type ConsoleServices = Pick<
  Services,
  | 'access'
  | 'appFederatedCredentials'
  | 'apps'
  | 'auditQueries'
  | 'certificates'
  | 'config'
  | 'directory'
  | 'federatedCredentials'
  | 'hosts'
  | 'keys'
  | 'provisioningKeys'
  | 'readableScopes'
  | 'roleAssignments'
  | 'scopeResolver'
  | 'scopes'
  | 'secrets'
  | 'tenantSettings'
  | 'userIdentities'
  | 'vaultBaseUrl'
  | 'vaults'
>;

/**
 * Everything a console page or action needs: the services, and the signed-in
 * user as a {@link Caller} — the same shape the management API and the vault
 * build from a token, so every call goes through the same access decision and
 * is audited under the same identity.
 */
export interface ConsoleContext {
  s: ConsoleServices;
  req: FastifyRequest;
  caller: Caller;
  meta: RequestMeta;
  user: Principal;
  tenant: Tenant;
  /** The subscription the console works in (the tenant's first). */
  subscriptionId: string;
  /** The CSRF token for a form posting to `action` (a path under /console). */
  csrf(action: string): string;
  /**
   * The form of a failed action, when its page is shown again with the error:
   * a page may put back what was typed (names and choices; never a secret value).
   */
  failedForm?: FormInput;
  /** The HTTP status a failed action was refused with (a page may offer a way out of a 403). */
  failedStatus?: number;
}

/** What was typed into field `name` of the failed form (bounded), or `fallback`. */
export function typed(ctx: ConsoleContext, name: string, max: number, fallback = ''): string {
  const v = ctx.failedForm?.[name];
  return typeof v === 'string' ? v.slice(0, max) : fallback;
}

export interface PageResult {
  title: string;
  nav: NavKey | null;
  body: SafeHtml;
  status?: number;
}

/** After a change: redirect (Post/Redirect/Get) with a message, or show a page once (a revealed value). */
export type ActionResult = { redirect: string; flash?: Flash } | { page: PageResult };

/** A change made: back to `redirect` (Post/Redirect/Get) with the success message `text`. */
export const done = (redirect: string, text: string): ActionResult => ({
  redirect,
  flash: { kind: 'success', text },
});

export type View = (ctx: ConsoleContext) => Promise<PageResult>;
export type Action = (ctx: ConsoleContext, form: FormInput) => Promise<ActionResult>;

/** A submitted form's fields (single values or repeated ones). */
export type FormInput = Record<string, string | string[] | undefined>;

/** Route parameters of the current request. */
export const params = (ctx: ConsoleContext): Record<string, string> =>
  (ctx.req.params ?? {}) as Record<string, string>;

/** Query parameters of the current request (first value of each). */
export function query(ctx: ConsoleContext): Record<string, string> {
  const q = (ctx.req.query ?? {}) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) {
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v) && typeof v[0] === 'string') out[k] = v[0];
  }
  return out;
}
