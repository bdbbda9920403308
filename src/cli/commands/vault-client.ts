import type { Ctx } from '../context.js';
import { CliError } from '../errors.js';
import { errorMessage, request } from '../http.js';
import { seg } from '../path.js';
import { api, getAccessToken, resolveServer } from '../session.js';
import { loadDevServer, loadProfile } from '../state.js';
import { subscriptionOf, VAULT_API } from './arm.js';

const DATA_API = 'api-version=7.5';

export interface VaultEndpoint {
  /** `https://{vault}.{vaultDomain}[:port]`, no trailing slash. */
  url: string;
  /** The token audience: `https://{vaultDomain}` (the vault host without its first label and port). */
  resource: string;
}

/** The endpoint of a vault URL or secret id (`https://shop.vault.localhost:8443/...`). */
export function endpointOf(vaultUri: string): VaultEndpoint {
  let u: URL;
  try {
    u = new URL(vaultUri);
  } catch {
    throw new CliError(`not a vault URL: ${vaultUri.slice(0, 200)}`, 2);
  }
  if (u.protocol !== 'https:') throw new CliError('a vault URL must be https', 2);
  const dot = u.hostname.indexOf('.');
  if (dot < 1) throw new CliError(`not a vault host: ${u.hostname}`, 2);
  return { url: u.origin, resource: `https://${u.hostname.slice(dot + 1)}` };
}

/**
 * Finds a vault's URL by name: from the management API (`properties.vaultUri`,
 * so any vault domain works), else — for a caller who may use the vault's
 * data but not read it through ARM — from the local dev server's template.
 */
export async function vaultEndpoint(c: Ctx, vaultName: string): Promise<VaultEndpoint> {
  let armError: string | undefined;
  try {
    const sub = await subscriptionOf(c);
    const list = await api<{ value: { name: string; properties: { vaultUri: string } }[] }>(
      c,
      'GET',
      `/subscriptions/${seg(sub)}/providers/Microsoft.KeyVault/vaults?${VAULT_API}`,
    );
    const hit = list.value.find((v) => v.name.toLowerCase() === vaultName.toLowerCase());
    if (hit) return endpointOf(hit.properties.vaultUri);
  } catch (e) {
    armError = e instanceof Error ? e.message : String(e);
  }
  const dev = loadDevServer();
  const server = resolveServer(c, loadProfile()).server;
  if (dev && dev.server === server && /^[a-zA-Z][a-zA-Z0-9-]{1,23}$/.test(vaultName))
    return endpointOf(dev.vaultUrlTemplate.replace('{name}', () => vaultName.toLowerCase()));
  throw new CliError(
    `vault '${vaultName}' not found${armError ? ` (${armError})` : ''}: check the name, or pass --id with the object's URL`,
  );
}

export interface DataResponse<T> {
  status: number;
  body: T;
}

/** A Key Vault data-plane call with a vault-audience token from the login; non-2xx → CliError. */
export async function vaultCall<T = unknown>(
  c: Ctx,
  ep: VaultEndpoint,
  method: string,
  pathOrUrl: string,
  json?: unknown,
): Promise<T> {
  const res = await vaultSend(c, ep, method, pathOrUrl, json);
  if (res.status >= 400) throw new CliError(errorMessage(res));
  return res.body as T;
}

/** As vaultCall, but a 404 answers undefined (a thing that may not be set, as certificate contacts). */
export async function vaultCallOrNone<T = unknown>(
  c: Ctx,
  ep: VaultEndpoint,
  method: string,
  path: string,
): Promise<T | undefined> {
  const res = await vaultSend(c, ep, method, path);
  if (res.status === 404) return undefined;
  if (res.status >= 400) throw new CliError(errorMessage(res));
  return res.body as T;
}

async function vaultSend(c: Ctx, ep: VaultEndpoint, method: string, pathOrUrl: string, json?: unknown) {
  const { token, profile } = await getAccessToken(c, ep.resource);
  const { ca } = resolveServer(c, profile);
  let url: string;
  if (pathOrUrl.startsWith('https://')) {
    if (new URL(pathOrUrl).origin !== ep.url) throw new CliError('the vault sent a link to another host');
    url = /[?&]api(-|%2D)version=/i.test(pathOrUrl)
      ? pathOrUrl
      : `${pathOrUrl}${pathOrUrl.includes('?') ? '&' : '?'}${DATA_API}`;
  } else url = `${ep.url}${pathOrUrl}${pathOrUrl.includes('?') ? '&' : '?'}${DATA_API}`;
  const res = await request(method, url, {
    ...(ca ? { ca } : {}),
    headers: { authorization: `Bearer ${token}` },
    ...(json !== undefined ? { json } : {}),
  });
  return res;
}

/** Follows `nextLink` pages until done or `max` items. */
export async function vaultList<T>(c: Ctx, ep: VaultEndpoint, path: string, max?: number): Promise<T[]> {
  const out: T[] = [];
  let next: string | null | undefined = path;
  while (next && (max === undefined || out.length < max)) {
    const page: { value?: T[]; nextLink?: string | null } = await vaultCall(c, ep, 'GET', next);
    out.push(...(page.value ?? []));
    next = page.nextLink;
  }
  return max === undefined ? out : out.slice(0, max);
}
