import { LatchkeyError } from '../errors/index.js';
import { isGuid } from '../lib/ids.js';

/** A resource below a resource group, as a resolver sees it. */
export interface ResourceRef {
  tenantId: string;
  subscriptionId: string;
  /** The resource group's canonical name. */
  resourceGroup: string;
  /** `Namespace/type`, e.g. `Microsoft.KeyVault/vaults` (as the client spelled it). */
  type: string;
  name: string;
  /** Child segments after the name, in pairs: `['secrets', 'db-password']`. */
  children: readonly string[];
}

/**
 * Confirms a resource exists in the tenant and returns its canonical ARM id
 * (including any child segments it accepts), or undefined when it does not
 * exist. Throws BadParameter for child segments the type does not support.
 */
export type ResourceResolver = (ref: ResourceRef) => Promise<string | undefined>;

/** What a resolved scope is: its canonical id and, when inside a vault, the vault's name. */
export interface ResolvedScope {
  scope: string;
  subscriptionId: string | null;
  vault: string | null;
}

const SEGMENT_RE = /^[A-Za-z0-9._()~-]{1,128}$/;
const OBJECT_NAME_RE = /^[0-9A-Za-z-]{1,127}$/;

const notFound = (what: string) =>
  new LatchkeyError('ResourceNotFound', `The scope '${what.slice(0, 300)}' could not be found.`);
/** A missing subscription or group becomes "scope not found"; anything else propagates. */
const rethrow =
  (what: string) =>
  (e: unknown): never => {
    throw e instanceof LatchkeyError && e.status === 404 ? notFound(what) : e;
  };

/**
 * Resolves an ARM scope (tenant root `/`, a subscription, a resource group, a
 * resource, or a vault object such as `.../vaults/{v}/secrets/{name}`) in the
 * caller's tenant: it must exist there (404 otherwise, also for another
 * tenant's scope) and comes back in canonical spelling so assignments compare
 * and deduplicate reliably.
 */
/**
 * The lookups the resolver needs from the scopes service (src/management/scopes.ts), named by
 * shape: access sits below management and does not import it.
 */
export interface ScopeLookup {
  subscription(tenantId: string, subscriptionId: string): Promise<{ subscriptionId: string }>;
  resourceGroup(
    tenantId: string,
    subscriptionId: string,
    name: string,
  ): Promise<{ id: string; name: string }>;
}

/** A scope's segments, refused when too long or not shaped as ARM ids are. */
function segmentsOf(rawScope: string): string[] {
  if (rawScope.length > 1000) throw new LatchkeyError('BadParameter', 'The scope is too long.');
  const segs = rawScope.split('/').filter((s) => s.length > 0);
  if (segs.some((s) => !SEGMENT_RE.test(s)))
    throw new LatchkeyError('BadParameter', 'The scope is not a valid ARM resource id.');
  return segs;
}

export function createScopeResolver(deps: { scopes: ScopeLookup }) {
  const resolvers = new Map<string, ResourceResolver>();

  return {
    /** Lets a resource domain (vaults, apps, identities) make its resources valid scopes. */
    registerResourceType(type: string, resolver: ResourceResolver): void {
      resolvers.set(type.toLowerCase(), resolver);
    },

    /**
     * The scope as written, checked for its shape only (nothing is looked up): `/`, or its
     * segments. A caller's permission is checked here before `resolve` looks anything up, so one
     * who may not act at a scope hears the same 403 whether or not it exists (as ARM answers);
     * permissions compare scopes case-insensitively, so the spelling does not matter.
     */
    nominal(rawScope: string): string {
      const segs = segmentsOf(rawScope);
      return segs.length === 0 ? '/' : `/${segs.join('/')}`;
    },
    async resolve(tenantId: string, rawScope: string): Promise<ResolvedScope> {
      const segs = segmentsOf(rawScope);
      if (segs.length === 0) return { scope: '/', subscriptionId: null, vault: null };
      const [k0, sub, k1, rg, k2, ns, type, name, ...children] = segs;
      if (k0!.toLowerCase() !== 'subscriptions' || !sub)
        throw new LatchkeyError('BadParameter', 'A scope is "/", or starts with /subscriptions/{id}.');
      if (!isGuid(sub)) throw notFound(rawScope);
      const subscription = await deps.scopes.subscription(tenantId, sub).catch(rethrow(rawScope));
      const subId = subscription.subscriptionId;
      if (!k1) return { scope: `/subscriptions/${subId}`, subscriptionId: subId, vault: null };
      if (k1.toLowerCase() !== 'resourcegroups' || !rg)
        throw new LatchkeyError('BadParameter', 'Expected /resourceGroups/{name} after the subscription.');
      const group = await deps.scopes.resourceGroup(tenantId, subId, rg).catch(rethrow(rawScope));
      if (!k2) return { scope: group.id, subscriptionId: subId, vault: null };
      if (k2.toLowerCase() !== 'providers' || !ns || !type || !name || children.length % 2 !== 0)
        throw new LatchkeyError(
          'BadParameter',
          'Expected /providers/{namespace}/{type}/{name} after the resource group.',
        );
      const resolver = resolvers.get(`${ns}/${type}`.toLowerCase());
      if (!resolver) throw notFound(rawScope);
      const id = await resolver({
        tenantId,
        subscriptionId: subId,
        resourceGroup: group.name,
        type: `${ns}/${type}`,
        name,
        children,
      });
      if (!id) throw notFound(rawScope);
      const isVault = `${ns}/${type}`.toLowerCase() === 'microsoft.keyvault/vaults';
      return { scope: id, subscriptionId: subId, vault: isVault ? name.toLowerCase() : null };
    },
  };
}
export type ScopeResolver = ReturnType<typeof createScopeResolver>;

/**
 * The resolver for `Microsoft.KeyVault/vaults/{name}[/secrets|keys/{object}]`:
 * the vault must exist (not soft-deleted) in the resource group; an object
 * scope needs a valid object name (the object itself need not exist yet).
 */
export function keyVaultResolver(
  findVault: (ref: ResourceRef) => Promise<{ id: string } | undefined>,
): ResourceResolver {
  return async (ref) => {
    const vault = await findVault(ref);
    if (!vault) return undefined;
    if (ref.children.length === 0) return vault.id;
    const [kind, objectName, ...rest] = ref.children;
    const k = kind!.toLowerCase();
    if (rest.length > 0 || (k !== 'secrets' && k !== 'keys') || !OBJECT_NAME_RE.test(objectName ?? ''))
      throw new LatchkeyError(
        'BadParameter',
        'Below a vault, a scope is /secrets/{name} or /keys/{name} (names: 1–127 letters, digits and hyphens).',
      );
    return `${vault.id}/${k}/${objectName}`;
  };
}
