import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEVICE_CODE_GRANT } from '../../authority/token-endpoint.js';
import { LatchkeyError } from '../../errors/index.js';
import type { Services } from '../../server/services.js';
import { sendOAuthError } from '../errors.js';
import { clientIp, hostOf, issuerBaseOf } from '../request.js';

/**
 * The Entra ID work-alike endpoints (PROTOCOLS.md §1): OIDC discovery, JWKS,
 * instance discovery and the OAuth 2.0 token endpoint. Errors are OAuth-shaped.
 */
export async function authorityRoutes(
  app: FastifyInstance,
  opts: { services: Pick<Services, 'config' | 'issuerBases' | 'signingKeys' | 'tenants' | 'tokenEndpoint'> },
): Promise<void> {
  const s = opts.services;
  app.setErrorHandler((err, req, reply) => sendOAuthError(err, req, reply));

  const tenantSegment = (req: FastifyRequest) => (req.params as { tenant: string }).tenant;

  const discovery = async (req: FastifyRequest, reply: FastifyReply) => {
    const seg = tenantSegment(req);
    const tenant = await s.tenants.find(seg);
    if (!tenant) {
      throw new LatchkeyError('invalid_request', `Tenant '${seg.slice(0, 64)}' not found.`, {
        aadCodes: [90002],
      });
    }
    const base = issuerBaseOf(req, s.issuerBases());
    const t = tenant.id;
    reply.header('cache-control', 'max-age=86400, private');
    return {
      token_endpoint: `${base}/${t}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'],
      jwks_uri: `${base}/${t}/discovery/v2.0/keys`,
      response_modes_supported: ['query'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: [s.config.token.signingAlg],
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${base}/${t}/v2.0`,
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/${t}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/${t}/oauth2/v2.0/devicecode`,
      claims_supported: [
        'sub',
        'iss',
        'aud',
        'exp',
        'iat',
        'nbf',
        'oid',
        'tid',
        'azp',
        'appid',
        'idtyp',
        'ver',
        'name',
        'preferred_username',
        'nonce',
        'auth_time',
      ],
      grant_types_supported: [
        'authorization_code',
        'client_credentials',
        'password',
        'refresh_token',
        DEVICE_CODE_GRANT,
      ],
      tenant_region_scope: null,
      cloud_instance_name: hostOf(req).replace(/:\d+$/, '') || 'localhost',
      cloud_graph_host_name: hostOf(req).replace(/:\d+$/, '') || 'localhost',
      msgraph_host: hostOf(req).replace(/:\d+$/, '') || 'localhost',
    };
  };
  app.get('/:tenant/v2.0/.well-known/openid-configuration', discovery);
  app.get('/:tenant/.well-known/openid-configuration', discovery);

  const jwks = async (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'max-age=300, public');
    return s.signingKeys.jwks();
  };
  app.get('/:tenant/discovery/v2.0/keys', jwks);
  app.get('/:tenant/discovery/keys', jwks);
  app.get('/common/discovery/keys', jwks);

  app.get('/common/discovery/instance', async (req) => {
    const base = issuerBaseOf(req, s.issuerBases());
    const host = new URL(base).host;
    const q = req.query as Record<string, string | undefined>;
    let tenant = 'common';
    const m = /^https:\/\/[^/]+\/([^/?#]{1,253})\//.exec(q.authorization_endpoint ?? '');
    if (m) tenant = m[1]!;
    return {
      tenant_discovery_endpoint: `${base}/${encodeURIComponent(tenant)}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    };
  });

  /** The request's form: form-encoded only (RFC 6749 §4), each parameter once; v1 `resource` as a scope. */
  const formOf = (req: FastifyRequest, v1: boolean): Record<string, string> => {
    const type = String(req.headers['content-type'] ?? '').toLowerCase();
    if (!type.startsWith('application/x-www-form-urlencoded')) {
      throw new LatchkeyError(
        'invalid_request',
        'The token endpoint accepts only application/x-www-form-urlencoded bodies.',
        { status: 415, aadCodes: [900144] },
      );
    }
    const raw = (req.body ?? {}) as Record<string, unknown>;
    const form: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v === 'string') form[k] = v;
      else {
        throw new LatchkeyError('invalid_request', `The parameter '${k.slice(0, 64)}' must appear once.`, {
          aadCodes: [90015],
        });
      }
    }
    if (v1 && !form.scope && form.resource) form.scope = `${form.resource}/.default`;
    return form;
  };

  // RFC 8628 §3.1: a public client starts a device sign-in; the user finishes it on /devicelogin.
  const deviceAuthorization = async (req: FastifyRequest, reply: FastifyReply) => {
    const form = formOf(req, req.url.includes('/oauth2/devicecode'));
    const base = issuerBaseOf(req, s.issuerBases());
    const res = await s.tokenEndpoint.startDeviceAuthorization({
      tenant: tenantSegment(req),
      form,
      verificationUri: `${base}/devicelogin`,
    });
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    return res;
  };
  app.post('/:tenant/oauth2/v2.0/devicecode', { bodyLimit: 64 * 1024 }, deviceAuthorization);
  app.post('/:tenant/oauth2/devicecode', { bodyLimit: 64 * 1024 }, deviceAuthorization);

  const token = async (req: FastifyRequest, reply: FastifyReply) => {
    const form = formOf(req, req.url.includes('/oauth2/token'));
    const res = await s.tokenEndpoint.token({
      tenant: tenantSegment(req),
      form,
      issuerBase: issuerBaseOf(req, s.issuerBases()),
      clientIp: clientIp(req),
    });
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    return res;
  };
  app.post('/:tenant/oauth2/v2.0/token', { bodyLimit: 64 * 1024 }, token);
  app.post('/:tenant/oauth2/token', { bodyLimit: 64 * 1024 }, token);
  const postOnly = async (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('allow', 'POST');
    throw new LatchkeyError('invalid_request', 'The token endpoint only accepts POST requests.', {
      status: 405,
      aadCodes: [900561],
    });
  };
  app.get('/:tenant/oauth2/v2.0/token', postOnly);
  app.get('/:tenant/oauth2/token', postOnly);
}
