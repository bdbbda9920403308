import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { IdentityEndpointTuning } from '../identity-endpoint/server.js';
import type { Clock } from '../lib/clock.js';
import { backgroundJobs } from './background-jobs.js';
import { bootstrapDefaults } from './bootstrap.js';
import { type DevOptions, loadDevConfig } from './dev.js';
import { hostsFileExtension } from './hosts-file.js';
import { identityEndpointExtension } from './identity-extension.js';
import { listenHttps, type RunningServer } from './listen.js';
import { createLogger } from './logger.js';
import { createServices, type Services } from './services.js';

/** What `latchkey up --json` prints when ready (one line). */
export interface ReadyInfo {
  authority: string;
  tenantId: string;
  tenantDomain: string;
  subscriptionId: string;
  managementUrl: string;
  managementResource: string;
  vaultUrlTemplate: string;
  vaultResource: string;
  identityEndpoint: string | null;
  caCertPath: string;
  adminCredentialsPath: string;
  dataDir: string;
  warnings: string[];
}

export interface UpOptions extends DevOptions {
  /** Port of the built-in identity endpoint on 127.0.0.1 (null: none). */
  identityPort?: number | null;
  /** Tuning of the identity endpoint (rate limit, certificate roll policy, token cache). */
  identityEndpoint?: IdentityEndpointTuning;
  /** Time source for every service (tests pass a fake clock). */
  clock?: Clock;
  /** Keep vault host names in this hosts file (`--hosts-file`; src/server/hosts-file.ts). */
  hostsFile?: string;
}

export interface UpHandle {
  info: ReadyInfo;
  services: Services;
  /** Resolves when work that changes set off in the background is done (the hosts file). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** A component that `up` starts after the HTTPS listener (identity endpoint, background jobs). */
export type UpExtension = (ctx: {
  services: Services;
  logger: FastifyBaseLogger;
  options: UpOptions;
  info: ReadyInfo;
}) => Promise<{ close(): Promise<void>; idle?(): Promise<void>; info?: Partial<ReadyInfo> } | undefined>;
/** The components `up` starts, in order (each returns how to stop it). */
const extensions: UpExtension[] = [backgroundJobs, identityEndpointExtension, hostsFileExtension];

/** Starts the all-in-one dev server: storage, authority, management, vault, identity endpoint. */
export async function startUp(options: UpOptions): Promise<UpHandle> {
  const { config, warnings } = await loadDevConfig(options);
  const logger = createLogger(config.logLevel) as unknown as FastifyBaseLogger;
  const services = await createServices(config, options.clock ? { clock: options.clock } : {});
  let server: RunningServer | undefined;
  const closers: { close(): Promise<void>; idle?(): Promise<void> }[] = [];
  try {
    const adminCredentialsPath = join(config.dataDir, 'admin-credentials.json');
    server = await listenHttps(services, logger, { host: config.bindHost, port: config.port });
    const authority = `https://${config.publicHost}:${server.port}`;
    const boot = await bootstrapDefaults(services, { adminCredentialsPath, authority });
    const tenant = await services.tenants.require(boot.tenantId);
    let info: ReadyInfo = {
      authority,
      tenantId: tenant.id,
      tenantDomain: tenant.domain ?? '',
      subscriptionId: boot.subscriptionId,
      managementUrl: authority,
      managementResource: config.managementResource,
      vaultUrlTemplate: `https://{name}.${config.vaultDomain}:${server.port}`,
      vaultResource: services.vaultResource,
      identityEndpoint: null,
      caCertPath: config.tls.caCertPath!,
      adminCredentialsPath,
      dataDir: config.dataDir,
      warnings,
    };
    for (const ext of extensions) {
      const r = await ext({ services, logger, options, info });
      if (r) {
        closers.push(r);
        if (r.info) info = { ...info, ...r.info };
      }
    }
    const running = server;
    return {
      info,
      services,
      async idle() {
        for (const c of closers) await c.idle?.();
      },
      async close() {
        for (const c of closers.reverse()) await c.close();
        await running.close();
        await services.close();
      },
    };
  } catch (e) {
    for (const c of closers.reverse()) await c.close().catch(() => {});
    await server?.close().catch(() => {});
    await services.close().catch(() => {});
    throw e;
  }
}
