import type { Clock } from '../lib/clock.js';
import { describeError, type HttpsRequest } from '../lib/https-client.js';
import type { HostManifest } from '../management/host-agent.js';
import { signHostAssertion } from './certificates.js';
import type { CredentialRoller } from './credential-roller.js';
import type { HostState } from './state-store.js';

export const MANAGEMENT_RESOURCE = 'https://management.latchkey.localhost';

/** An error from the authority or the management API, with its status and wire error code. */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

export interface IssuedToken {
  accessToken: string;
  /** Epoch seconds. */
  expiresOn: number;
}

const upstream = (what: string, res: { status: number; body: unknown; text: string; headers: object }) => {
  const b = res.body as { error?: string | { code?: string } } | undefined;
  const code = typeof b?.error === 'string' ? b.error : (b?.error?.code ?? `http_${res.status}`);
  return new UpstreamError(
    `${what}: ${describeError(res as Parameters<typeof describeError>[0])}`,
    res.status,
    code,
  );
};

/**
 * How an endpoint talks to Latchkey: the OAuth token endpoint (client
 * credentials with a certificate assertion — for the host itself and for each
 * identity it serves) and, as the host, the host API of the management plane.
 */
export function createControlPlane(deps: {
  host: HostState;
  http: HttpsRequest;
  clock: Clock;
  roller: CredentialRoller;
  managementResource?: string;
}) {
  const { host, http, clock, roller } = deps;
  const resource = deps.managementResource ?? MANAGEMENT_RESOURCE;
  const server = host.server.replace(/\/+$/, '');
  const tokenUrl = `${server}/${host.tenantId}/oauth2/v2.0/token`;
  let hostToken: IssuedToken | undefined;
  let hostTokenPending: Promise<IssuedToken> | undefined;

  /** client_credentials with a certificate assertion; retries once with a fresh certificate if ours is unknown. */
  const clientToken = async (key: string, clientId: string, scope: string): Promise<IssuedToken> => {
    for (let attempt = 0; ; attempt++) {
      const cred = await roller.current(key);
      const assertion = await signHostAssertion(cred, clientId, tokenUrl, clock.now());
      const res = await http('POST', tokenUrl, {
        form: {
          grant_type: 'client_credentials',
          client_id: clientId,
          scope,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
        },
      });
      if (res.status === 200) {
        const b = res.body as { access_token: string; expires_in: number };
        return {
          accessToken: b.access_token,
          expiresOn: Math.floor(clock.now() / 1000) + Number(b.expires_in),
        };
      }
      const err = upstream('token request refused', res);
      // Our certificate is not (or no longer) registered: make and register a new one, once.
      if (attempt === 0 && err.code === 'invalid_client' && key !== 'host') {
        await roller.roll(key);
        continue;
      }
      throw err;
    }
  };

  const managementToken = async (): Promise<string> => {
    const now = clock.now() / 1000;
    if (hostToken && hostToken.expiresOn - 300 > now) return hostToken.accessToken;
    hostTokenPending ??= clientToken('host', host.clientId, `${resource}/.default`).finally(() => {
      hostTokenPending = undefined;
    });
    hostToken = await hostTokenPending;
    return hostToken.accessToken;
  };

  const api = async <T>(method: string, path: string, json?: unknown): Promise<T> => {
    const res = await http(method, `${server}/api/hosts/${host.hostId}${path}`, {
      headers: { authorization: `Bearer ${await managementToken()}` },
      ...(json !== undefined ? { json } : {}),
    });
    if (res.status === 401) hostToken = undefined;
    if (res.status >= 400) throw upstream(`${method} host API`, res);
    return res.body as T;
  };

  return {
    tokenUrl,
    /** A token for `resource` as the identity whose credentials are stored under its object id. */
    identityToken: (principalId: string, clientId: string, res: string) =>
      clientToken(principalId, clientId, `${res}/.default`),
    manifest: () => api<HostManifest>('GET', '/identities'),
    appSettings: async (app: string) =>
      (await api<{ settings: Record<string, string> }>('GET', `/apps/${encodeURIComponent(app)}/settings`))
        .settings,
    addIdentityCertificate: async (principalId: string, certificate: string) =>
      (await api<{ keyId: string }>('POST', `/identities/${principalId}/certificates`, { certificate }))
        .keyId,
    deleteIdentityCertificate: async (principalId: string, keyId: string) => {
      await api('DELETE', `/identities/${principalId}/certificates/${keyId}`).catch((e) => {
        if (!(e instanceof UpstreamError && e.status === 404)) throw e;
      });
    },
    addHostCertificate: async (certificate: string) =>
      (await api<{ keyId: string }>('POST', '/certificates', { certificate })).keyId,
    deleteHostCertificate: async (keyId: string) => {
      await api('DELETE', `/certificates/${keyId}`).catch((e) => {
        if (!(e instanceof UpstreamError && e.status === 404)) throw e;
      });
    },
    /** Any GET with an identity's token (Key Vault references). */
    async getWithToken(url: string, token: string) {
      return http('GET', url, { headers: { authorization: `Bearer ${token}` } });
    },
  };
}
export type ControlPlane = ReturnType<typeof createControlPlane>;
