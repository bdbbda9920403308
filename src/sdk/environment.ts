import { createHash, createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { createTokenCache, withRefresh } from './cache.js';
import { AuthenticationError, CredentialUnavailableError, describeBody } from './errors.js';
import { type SdkHttpOptions, send } from './http.js';
import { type AccessToken, type GetTokenOptions, type TokenCredential, toScope } from './types.js';

export interface EnvironmentCredentialOptions extends SdkHttpOptions {
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * A service principal from the environment, as Azure's EnvironmentCredential
 * reads it: AZURE_TENANT_ID, AZURE_CLIENT_ID, and AZURE_CLIENT_SECRET or
 * AZURE_CLIENT_CERTIFICATE_PATH (a PEM with the certificate and its key).
 * The authority is LATCHKEY_AUTHORITY or AZURE_AUTHORITY_HOST (https); there
 * is no default, so a secret is never sent anywhere by accident.
 */
export class EnvironmentLatchkeyCredential implements TokenCredential {
  private readonly cached: (scope: string) => Promise<AccessToken>;
  private readonly config:
    | { tenantId: string; clientId: string; authority: string; secret?: string; certificatePath?: string }
    | { missing: string };

  constructor(private readonly options: EnvironmentCredentialOptions = {}) {
    const env = options.env ?? process.env;
    const tenantId = env.AZURE_TENANT_ID;
    const clientId = env.AZURE_CLIENT_ID;
    const secret = env.AZURE_CLIENT_SECRET;
    const certificatePath = env.AZURE_CLIENT_CERTIFICATE_PATH;
    const authority = (env.LATCHKEY_AUTHORITY || env.AZURE_AUTHORITY_HOST || '').replace(/\/+$/, '');
    const missing = [
      !tenantId && 'AZURE_TENANT_ID',
      !clientId && 'AZURE_CLIENT_ID',
      !secret && !certificatePath && 'AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH',
      !authority && 'LATCHKEY_AUTHORITY (or AZURE_AUTHORITY_HOST)',
    ].filter(Boolean);
    if (missing.length) this.config = { missing: `environment variables not set: ${missing.join(', ')}` };
    else if (!authority.startsWith('https://'))
      this.config = { missing: 'LATCHKEY_AUTHORITY / AZURE_AUTHORITY_HOST must be an https URL' };
    else
      this.config = {
        tenantId: tenantId!,
        clientId: clientId!,
        authority,
        ...(secret ? { secret } : { certificatePath: certificatePath! }),
      };
    this.cached = createTokenCache((scope) => this.fetch(scope));
  }

  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    if ('missing' in this.config) throw new CredentialUnavailableError(this.config.missing);
    return this.cached(toScope(scopes));
  }

  private async fetch(scope: string): Promise<AccessToken> {
    const c = this.config as Exclude<typeof this.config, { missing: string }>;
    const tokenUrl = `${c.authority}/${encodeURIComponent(c.tenantId)}/oauth2/v2.0/token`;
    const form: Record<string, string> = { grant_type: 'client_credentials', client_id: c.clientId, scope };
    if (c.secret) form.client_secret = c.secret;
    else {
      form.client_assertion_type = ASSERTION_TYPE;
      form.client_assertion = await certificateAssertion(c.certificatePath!, c.clientId, tokenUrl);
    }
    const issuedAt = Date.now();
    let res: Awaited<ReturnType<typeof send>>;
    try {
      res = await send('POST', tokenUrl, { ...this.options, form });
    } catch (e) {
      throw new CredentialUnavailableError(
        `the authority ${c.authority} could not be reached: ${(e as Error).message}`,
      );
    }
    if (res.status !== 200) {
      const code = (res.body as { error?: string } | undefined)?.error;
      throw new AuthenticationError(
        `the authority refused: ${describeBody(res.status, res.body)}`,
        res.status,
        code,
      );
    }
    const b = res.body as { access_token: string; expires_in: number };
    return withRefresh(b.access_token, issuedAt + Number(b.expires_in) * 1000, issuedAt);
  }
}

/** A client assertion as ClientCertificateCredential signs it: PS256 (RSA) or ES256 (EC P-256), `x5t#S256`. */
async function certificateAssertion(path: string, clientId: string, tokenUrl: string): Promise<string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CredentialUnavailableError(`cannot read AZURE_CLIENT_CERTIFICATE_PATH (${path})`);
  }
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  const keyPem =
    /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/.exec(text)?.[0];
  if (!cert || !keyPem)
    throw new CredentialUnavailableError(
      'AZURE_CLIENT_CERTIFICATE_PATH must hold a PEM certificate and its private key',
    );
  const key = createPrivateKey(keyPem);
  const alg = key.asymmetricKeyType === 'ec' ? 'ES256' : 'PS256';
  const x5t = createHash('sha256').update(new X509Certificate(cert).raw).digest('base64url');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, typ: 'JWT', 'x5t#S256': x5t })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenUrl)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 600)
    .setJti(randomUUID())
    .sign(key);
}
