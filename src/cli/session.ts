import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { assertionAlg, signClientAssertion } from '../lib/client-assertion.js';
import { CliError } from './errors.js';
import { errorMessage, request } from './http.js';
import { seg } from './path.js';
import { loadDevServer, loadProfile, type Profile, saveProfile, withStateLock } from './state.js';

export const CLI_CLIENT_ID = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
export const DEFAULT_SERVER = 'https://localhost:8443';
export const MANAGEMENT_RESOURCE = 'https://management.latchkey.localhost';

export interface GlobalOptions {
  server?: string;
  caFile?: string;
}

const readCa = (path: string | undefined): string | undefined => {
  if (!path) return undefined;
  if (!existsSync(path)) throw new CliError(`CA file not found: ${path}`);
  return readFileSync(path, 'utf8');
};

/** Which server to talk to, and which CA to trust for it. */
export function resolveServer(
  g: GlobalOptions,
  profile = loadProfile(),
): { server: string; ca: string | undefined; caFile?: string } {
  const dev = loadDevServer();
  const server = (
    g.server ||
    process.env.LATCHKEY_SERVER ||
    profile?.server ||
    dev?.server ||
    DEFAULT_SERVER
  ).replace(/\/+$/, '');
  const caFile =
    g.caFile ||
    process.env.LATCHKEY_CA_FILE ||
    (profile?.server === server ? profile.caFile : undefined) ||
    (dev && dev.server === server && existsSync(dev.caCertPath) ? dev.caCertPath : undefined);
  return { server, ca: readCa(caFile), ...(caFile ? { caFile } : {}) };
}

/** Splits a PEM bundle into its certificate and private key (`az login --certificate` takes one file with both). */
export function readCertificateBundle(path: string): { certPem: string; keyPem: string; x5tS256: string } {
  if (!existsSync(path)) throw new CliError(`certificate file not found: ${path}`);
  const text = readFileSync(path, 'utf8');
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  const key = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/.exec(
    text,
  )?.[0];
  if (!cert || !key)
    throw new CliError('the certificate file must hold a PEM certificate and its private key');
  const x = new X509Certificate(cert);
  return { certPem: cert, keyPem: key, x5tS256: createHash('sha256').update(x.raw).digest('base64url') };
}

/** A signed client assertion (RFC 7523) for the token endpoint. */
export async function clientAssertion(
  bundle: { keyPem: string; x5tS256: string },
  clientId: string,
  tokenUrl: string,
): Promise<string> {
  const key = createPrivateKey(bundle.keyPem);
  const alg = assertionAlg(key);
  if (!alg) throw new CliError('the certificate key must be RSA, or EC on P-256 or P-384');
  return signClientAssertion({ key, alg, x5tS256: bundle.x5tS256 }, clientId, tokenUrl, Date.now());
}

export interface TokenResult {
  accessToken: string;
  expiresOn: number;
  refreshToken?: string;
}

/** Calls the token endpoint; throws a one-line CliError with the server's OAuth error. */
export async function tokenRequest(
  server: string,
  ca: string | undefined,
  tenant: string,
  form: Record<string, string>,
): Promise<TokenResult> {
  const res = await request('POST', `${server}/${seg(tenant)}/oauth2/v2.0/token`, {
    ca,
    form,
  });
  if (res.status !== 200) {
    // A refresh token that was revoked (password reset, disable, revoke-sessions, a replay) or expired.
    if (
      form.grant_type === 'refresh_token' &&
      (res.body as { error?: unknown } | undefined)?.error === 'invalid_grant'
    )
      throw new CliError(`the login is no longer valid (${errorMessage(res)}): run \`latchkey login\` again`);
    throw new CliError(`sign-in failed: ${errorMessage(res)}`);
  }
  const b = res.body as { access_token: string; expires_in: number; refresh_token?: string };
  return {
    accessToken: b.access_token,
    expiresOn: Math.floor(Date.now() / 1000) + b.expires_in,
    ...(b.refresh_token ? { refreshToken: b.refresh_token } : {}),
  };
}

/** A server URL as compared: scheme and host lower-cased, no trailing slash. */
const sameServer = (a: string, b: string): boolean => {
  const norm = (u: string) => {
    try {
      return new URL(u).href.replace(/\/+$/, '');
    } catch {
      return u.replace(/\/+$/, '');
    }
  };
  return norm(a) === norm(b);
};

/**
 * The login's credentials (its cached tokens, refresh token, client secret) belong to the server
 * it was made on, and go to no other: a `--server` or `LATCHKEY_SERVER` naming another server is
 * refused, not answered with this login's tokens (as `az` keeps a login per cloud).
 */
export function requireLoginServer(g: GlobalOptions, profile: Profile): void {
  const { server } = resolveServer(g, profile);
  if (!sameServer(server, profile.server))
    throw new CliError(
      `logged in to ${profile.server}, not to ${server}: run \`latchkey login --server ${server}\` to sign in there (the login's credentials go only to the server it was made on)`,
    );
}

/** An access token for `resource` from the login state, renewing it (refresh token or client credentials) when near expiry. */
export async function getAccessToken(
  g: GlobalOptions,
  resource: string,
): Promise<{ token: string; expiresOn: number; profile: Profile }> {
  const key = resource.replace(/\/+$/, '');
  const fresh = (p: Profile) => {
    const cached = p.tokens[key];
    return cached && cached.expiresOn - 300 > Date.now() / 1000 ? cached : undefined;
  };
  const first = loadProfile();
  if (!first) throw new CliError('not logged in: run `latchkey login`');
  requireLoginServer(g, first);
  const hit = fresh(first);
  if (hit) return { token: hit.accessToken, expiresOn: hit.expiresOn, profile: first };
  // Renewing spends the refresh token (one use each): one CLI process at a time, and re-read
  // the state under the lock, since another process may have renewed it meanwhile.
  return withStateLock(async () => {
    const profile = loadProfile();
    if (!profile) throw new CliError('not logged in: run `latchkey login`');
    requireLoginServer(g, profile);
    const again = fresh(profile);
    if (again) return { token: again.accessToken, expiresOn: again.expiresOn, profile };
    const t = await renew(g, profile, `${key}/.default`);
    profile.tokens[key] = { accessToken: t.accessToken, expiresOn: t.expiresOn };
    saveProfile(profile);
    return { token: t.accessToken, expiresOn: t.expiresOn, profile };
  });
}

/** A new access token for `scope` from the login (refresh token, client secret or certificate). */
async function renew(g: GlobalOptions, profile: Profile, scope: string): Promise<TokenResult> {
  // The login's own server (requireLoginServer has checked that it is the one in effect).
  const { ca } = resolveServer(g, profile);
  const server = profile.server.replace(/\/+$/, '');
  if (profile.kind === 'user') {
    if (!profile.refreshToken) throw new CliError('the login has expired: run `latchkey login`');
    const t = await tokenRequest(server, ca, profile.tenantId, {
      grant_type: 'refresh_token',
      client_id: CLI_CLIENT_ID,
      refresh_token: profile.refreshToken,
      scope: `${scope} offline_access`,
    });
    if (t.refreshToken) profile.refreshToken = t.refreshToken;
    return t;
  }
  if (profile.clientSecret) {
    return tokenRequest(server, ca, profile.tenantId, {
      grant_type: 'client_credentials',
      client_id: profile.name,
      client_secret: profile.clientSecret,
      scope,
    });
  }
  if (profile.certificatePath) {
    const tokenUrl = `${server}/${profile.tenantId}/oauth2/v2.0/token`;
    return tokenRequest(server, ca, profile.tenantId, {
      grant_type: 'client_credentials',
      client_id: profile.name,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await clientAssertion(
        readCertificateBundle(profile.certificatePath),
        profile.name,
        tokenUrl,
      ),
      scope,
    });
  }
  throw new CliError('the login state is incomplete: run `latchkey login`');
}

/**
 * A provisioning key for this invocation: `LATCHKEY_PROVISIONING_KEY`, or the file named by
 * `LATCHKEY_PROVISIONING_KEY_FILE`. Never a command-line argument (it would show in `ps` and shell history).
 */
export function provisioningKey(): string | undefined {
  const direct = process.env.LATCHKEY_PROVISIONING_KEY?.trim();
  if (direct) return direct;
  const file = process.env.LATCHKEY_PROVISIONING_KEY_FILE;
  if (!file) return undefined;
  if (!existsSync(file)) throw new CliError(`provisioning key file not found: ${file}`);
  const text = readFileSync(file, 'utf8').trim();
  if (!text) throw new CliError(`provisioning key file is empty: ${file}`);
  return text;
}

/** A management API call with the login's token (or a provisioning key); non-2xx becomes a one-line CliError. */
export async function api<T = unknown>(
  g: GlobalOptions,
  method: string,
  path: string,
  json?: unknown,
  /** `graph`: a Microsoft Graph path (`/v1.0/...`), called with a token for the server itself. */
  o: { graph?: boolean } = {},
): Promise<T> {
  const key = o.graph ? undefined : provisioningKey();
  let authorization: string;
  let profile: Profile | undefined;
  if (key) authorization = `ProvisioningKey ${key}`;
  else {
    // Graph's resource is the server's own URL (as az asks Graph tokens for the Graph endpoint).
    const resource = o.graph ? resolveServer(g, loadProfile()).server : MANAGEMENT_RESOURCE;
    const t = await getAccessToken(g, resource);
    authorization = `Bearer ${t.token}`;
    profile = t.profile;
  }
  const { server, ca } = resolveServer(g, profile ?? loadProfile());
  const res = await request(method, `${server}${path}`, {
    ca,
    headers: { authorization },
    ...(json !== undefined ? { json } : {}),
  });
  if (res.status >= 400) throw new CliError(errorMessage(res), 1, res.status);
  return res.body as T;
}
