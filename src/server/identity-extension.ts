import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdentityEndpoint } from '../identity-endpoint/server.js';
import type { UpExtension } from './up.js';

/** Default port of `latchkey up`'s identity endpoint (Azure Arc's well-known port). */
export const DEFAULT_IDENTITY_PORT = 40342;

/**
 * `latchkey up`'s identity endpoint: the built-in `local` host (created on
 * first start), its key in `{dataDir}/identity/`, the same endpoint code as
 * `latchkey agent`. In-process, app and principal changes reach it at once.
 */
export const identityEndpointExtension: UpExtension = async ({ services, logger, options, info }) => {
  if (options.identityPort === null) return undefined;
  const host = await services.hosts.ensureLocal(info.tenantId);
  const endpoint = await startIdentityEndpoint({
    ...options.identityEndpoint,
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
    port: options.identityPort ?? DEFAULT_IDENTITY_PORT,
    ca: readFileSync(info.caCertPath, 'utf8'),
    caFile: info.caCertPath,
    managementResource: services.config.managementResource,
    // The local host has no enrolment step: its first certificate is registered in-process.
    bootstrapHostCertificate: (pem) =>
      services.db.transaction(async (tx) => {
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
