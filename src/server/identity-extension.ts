import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type IdentityEndpointOptions, startIdentityEndpoint } from '../identity-endpoint/server.js';
import type { Services } from './services.js';
import type { ReadyInfo, UpExtension } from './up.js';

/** Default port of `latchkey up`'s identity endpoint (Azure Arc's well-known port). */
export const DEFAULT_IDENTITY_PORT = 40342;

/**
 * What an identity endpoint for `up`'s built-in `local` host is started with (created on first
 * start): its host, its state dir in `{dataDir}/identity/`, the CA, and the in-process registration
 * of its first certificate (the local host has no enrolment step). The port, tuning and log are
 * the caller's.
 */
export async function localHostEndpointOptions(
  services: Services,
  info: Pick<ReadyInfo, 'tenantId' | 'authority' | 'caCertPath'>,
): Promise<Omit<IdentityEndpointOptions, 'port'>> {
  const host = await services.hosts.ensureLocal(info.tenantId);
  return {
    stateDir: join(services.config.dataDir, 'identity'),
    host: {
      hostId: host.id,
      hostName: host.name,
      tenantId: host.tenantId,
      principalId: host.principalId,
      clientId: host.clientId,
      server: info.authority,
      caFile: info.caCertPath,
    },
    ca: readFileSync(info.caCertPath, 'utf8'),
    caFile: info.caCertPath,
    managementResource: services.config.managementResource,
    bootstrapHostCertificate: (pem) =>
      services.db.transaction(async (tx) => {
        await services.audit.hold(tx); // lock order (audit/log.ts)
        const c = await services.hosts.addCertificate(host, pem, tx);
        await services.audit.append(tx, {
          tenantId: host.tenantId,
          operation: 'HostCertificateAdd',
          target: host.armId,
          status: 200,
          details: { keyId: c.keyId, bootstrap: true },
        });
        return c.keyId;
      }),
  };
}

/**
 * `latchkey up`'s identity endpoint: the built-in `local` host (see localHostEndpointOptions), the
 * same endpoint code as `latchkey agent`. In-process, app and principal changes reach it at once.
 */
export const identityEndpointExtension: UpExtension = async ({ services, logger, options, info }) => {
  if (options.identityPort === null) return undefined;
  const endpoint = await startIdentityEndpoint({
    ...options.identityEndpoint,
    ...(await localHostEndpointOptions(services, info)),
    port: options.identityPort ?? DEFAULT_IDENTITY_PORT,
    log: { warn: (msg, err) => logger.warn({ err }, msg) },
  });
  const unsubscribe = [
    services.bus.subscribe('app', () => endpoint.invalidate()),
    services.bus.subscribe('principal', () => endpoint.invalidate()),
  ];
  return {
    info: { identityEndpoint: endpoint.url },
    async close() {
      for (const u of unsubscribe) u();
      await endpoint.close();
    },
  };
};
