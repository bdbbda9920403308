import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyBaseLogger as Logger } from 'fastify';
import { LatchkeyError } from '../errors/index.js';
import type { Services } from '../server/services.js';
import { vaultEvent } from '../vault/audit.js';
import { isVaultName } from '../vault/model.js';
import { createAuthenticator } from './auth.js';
import { sendAzureError } from './errors.js';
import { hostOf, issuerBaseOf, queryParam, requestMeta } from './request.js';
import { certificateIssuerRoutes } from './routes/certificate-issuers.js';
import { certificateRoutes } from './routes/certificates.js';
import { keyRoutes } from './routes/keys.js';
import { secretRoutes } from './routes/secrets.js';
import { createServedApp, type ServedApp } from './served-app.js';
import { createCachingVerifier } from './token-cache.js';
import { SERVED_API_VERSION_HEADER, vaultApiVersion } from './vault-api-version.js';
import { setVaultContext } from './vault-context.js';

/**
 * The Key Vault data plane, served at `https://{vault}.{vaultDomain}`.
 *
 * Every request is authenticated in `onRequest`, before its body is read: the
 * Azure SDKs first send a request without a token and with the body stripped,
 * and expect a 401 challenge naming the authority, the vault's tenant and the
 * vault resource. An unauthenticated caller learns what Azure reveals (the
 * vault's tenant; an unknown vault answers with the installation's default
 * tenant, so it looks like a vault of that tenant). After authentication, an
 * unknown, soft-deleted or other-tenant vault is 404 VaultNotFound.
 */
export function createVaultApp(services: Services, logger: Logger): Promise<ServedApp> {
  return createServedApp(services, logger, 'vault', (app) => vaultRoutes(app, services));
}

/** The vault app's hooks and routes (see {@link createVaultApp}). */
async function vaultRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.setErrorHandler((err, req, reply) => sendAzureError(err, req, reply));
  app.setNotFoundHandler((_req, reply) =>
    reply
      .code(404)
      .send({ error: { code: 'NotFound', message: 'The requested operation is not supported.' } }),
  );
  // Tokens are reused across requests: verify each signature once (the principal is still checked every time).
  const verifier = createCachingVerifier({
    verifier: services.verifier,
    clock: services.clock,
    bus: services.bus,
    stats: services.metrics.caches.token,
  });
  // Off the change bus when the app closes, or when its build fails (served-app.ts closes it then).
  app.addHook('onClose', async () => verifier.close());
  const authenticate = createAuthenticator({
    verifier,
    principals: services.principals,
    limiter: services.principalLimiter,
  });
  const suffix = `.${services.config.vaultDomain}`;
  let defaultTenant: string | undefined;
  const fallbackTenant = async (): Promise<string> => {
    if (defaultTenant) return defaultTenant;
    const t = (await services.tenants.default())?.id;
    if (t) defaultTenant = t;
    return t ?? 'organizations';
  };

  const onRequest = async (req: FastifyRequest, reply: FastifyReply) => {
    const host = hostOf(req);
    const bare = host.replace(/:\d{1,5}$/, '');
    const name = bare.endsWith(suffix) ? bare.slice(0, -suffix.length) : '';
    const found = name ? await services.vaults.byName(name) : undefined;
    const vault = found && found.deletedAt === null ? found : undefined;
    const tenantId = vault?.tenantId ?? (await fallbackTenant());
    // The challenge is made only for a refusal (an accepted token, nearly every request, needs none).
    const caller = await authenticate(req, services.vaultAudiences(), () => ({
      authorization: `${issuerBaseOf(req, services.issuerBases())}/${tenantId}`,
      resource: services.vaultChallengeResource(),
    }));
    const meta = requestMeta(req);
    if (!vault || vault.tenantId !== caller.tenantId) {
      services.audit
        .record(
          vaultEvent(
            caller,
            meta,
            'VaultNotFound',
            `https://${host}${req.url.split('?')[0]!.slice(0, 200)}`,
            null,
            404,
          ),
        )
        .catch((err) => req.log.error({ err }, 'audit record failed'));
      throw new LatchkeyError(
        'VaultNotFound',
        `Vault not found: ${isVaultName(name) ? name : 'no vault at this host'}.`,
      );
    }
    // Known versions are served as themselves; a newer date form as the newest known (docs/vault.md).
    const version = vaultApiVersion(queryParam(req, 'api-version'));
    reply.header(SERVED_API_VERSION_HEADER, version.served);
    setVaultContext(req, {
      caller,
      meta,
      vault,
      baseUrl: services.vaultBaseUrl(vault.nameLower),
      responseBase: `https://${host}`,
      apiVersion: version.requested,
    });
  };
  app.addHook('onRequest', onRequest);
  await app.register(secretRoutes, { services });
  await app.register(keyRoutes, { services });
  await app.register(certificateRoutes, { services });
  await app.register(certificateIssuerRoutes, { services });
}
