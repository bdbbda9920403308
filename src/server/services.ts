import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createScopeResolver, keyVaultResolver } from '../access/arm-scope.js';
import { createRoleAssignments } from '../access/assignments-service.js';
import { createAuditQueries } from '../access/audit-queries.js';
import type { Access } from '../access/decision.js';
import { createAccess } from '../access/decision.js';
import { createAuditLog } from '../audit/log.js';
import { createAuthorizationCodes } from '../authority/authorization-codes.js';
import { createAssertionVerifier } from '../authority/client-assertion.js';
import { createCredentials } from '../authority/credentials.js';
import { createDeviceCodes } from '../authority/device-codes.js';
import { createFederation } from '../authority/federation.js';
import { createPrincipals } from '../authority/principals.js';
import { createResourceResolver, issuerBasesFor } from '../authority/resources.js';
import { signingKeyRotationJob } from '../authority/signing-key-rotation.js';
import { createSigningKeys } from '../authority/signing-keys.js';
import { createTenantIssuers } from '../authority/tenant-issuers.js';
import { createTenants } from '../authority/tenants.js';
import { createAuthThrottle } from '../authority/throttle.js';
import { createTokenEndpoint } from '../authority/token-endpoint.js';
import { createTokenIssuer, createTokenVerifier } from '../authority/tokens.js';
import { type Config, exchangeAudiences } from '../config/index.js';
import { createSealer } from '../crypto/envelope.js';
import { createSecretHasher } from '../crypto/hashing.js';
import { createJobs } from '../jobs/runner.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { createChangeBus } from '../lib/events.js';
import { createRateLimiter } from '../lib/rate-limit.js';
import { createDirectory } from '../management/directory.js';
import {
  createAppFederatedCredentials,
  createFederatedCredentials,
} from '../management/federated-credentials.js';
import { createIdentityDomain } from '../management/identity-domain.js';
import { createReadableScopes } from '../management/readable-scopes.js';
import { createScopes } from '../management/scopes.js';
import { createTenantSettings } from '../management/tenant-settings.js';
import { createProvisioningKeys } from '../provisioning/keys.js';
import { dataKeyStore } from '../storage/crypto/data-key-store.js';
import type { ChangeRelay } from '../storage/notify.js';
import { openDatabase } from '../storage/open.js';
import type { Database } from '../storage/port.js';
import { installationStore } from '../storage/server/installation-store.js';
import { createWriteHealth } from '../storage/write-health.js';
import { createVaultAudiences } from '../vault/audiences.js';
import { createCertificates } from '../vault/certificates.js';
import { createKeyDomain } from '../vault/key-domain.js';
import { vaultUrl } from '../vault/model.js';
import { vaultPurgeJob } from '../vault/purge-job.js';
import { createSecrets } from '../vault/secrets.js';
import { createVaults } from '../vault/vaults.js';
import { createMetrics } from './metrics.js';

/** Where the change relay reports reconnections (a pino logger fits). */
export interface ServicesLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** The default answer to a failed sync of the store's log: say why on stderr, exit 70 (EX_SOFTWARE). */
export function exitOnStoreSyncFailure(error: unknown): void {
  const why = error instanceof Error ? error.message : String(error);
  process.stderr.write(
    `FATAL: the store's write-ahead log could not be synced to disk (${why}); exiting so that the node restarts and recovers it\n`,
  );
  process.exit(70);
}

/**
 * The composition root of the domain: opens storage, unseals keys and builds
 * every service with only the dependencies it needs. HTTP wiring lives in
 * src/server/main-app.ts; binaries (src/cli) call this and then src/server/listen.ts.
 */
export async function createServices(
  config: Readonly<Config>,
  opts: {
    clock?: Clock;
    db?: Database;
    log?: ServicesLog;
    nodeId?: string;
    /**
     * A failed sync of SQLite's write-ahead log (the file's state unknown): by default the process
     * says so on stderr and exits with 70, so that its supervisor (systemd's `Restart=on-failure`,
     * a container's restart policy) restarts it and SQLite recovers the log from disk; nothing
     * acknowledged is lost (docs/storage.md). Until it exits the store refuses every transaction.
     */
    onStoreSyncFailure?: (error: unknown) => void;
  } = {},
) {
  const clock = opts.clock ?? systemClock;
  // Names this process among the nodes sharing a database (pg_stat_activity, relay payloads).
  const nodeId = opts.nodeId ?? `${hostname().slice(0, 32)}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const db =
    opts.db ??
    (await openDatabase(config.storageUrl, {
      applicationName: `latchkey ${nodeId}`,
      onWait: ({ attempt, delayMs, reason }) =>
        opts.log?.warn({ attempt, delayMs, reason }, 'the database is not reachable yet; waiting for it'),
      onSyncFailure: opts.onStoreSyncFailure ?? exitOnStoreSyncFailure,
    }));
  const metrics = createMetrics();
  const check = await installationStore.rootKeyCheck(db);
  if (check !== undefined && check !== config.rootKey.checkValue()) {
    await db.close();
    throw new Error(
      'the root key does not match this database (wrong --root-key-file or LATCHKEY_ROOT_KEY?)',
    );
  }
  const bus = createChangeBus();
  let sealer: Awaited<ReturnType<typeof createSealer>>;
  try {
    sealer = await createSealer(dataKeyStore(db), config.rootKey);
  } catch (e) {
    await db.close();
    throw e;
  }
  // Recorded only once the key has proven itself by unwrapping the data keys: a failed start
  // with a wrong key must not lock out the right one.
  if (check === undefined) await installationStore.recordRootKeyCheck(db, config.rootKey.checkValue());
  const hasher = createSecretHasher(config.rootKey.derive('secret-hash'));
  const tenants = createTenants({ db, clock, bus, stats: metrics.caches.tenant });
  const principals = createPrincipals({
    db,
    clock,
    bus,
    stats: metrics.caches.principal,
    clientStats: metrics.caches.client,
    // Called per registration, after everything below is set up.
    builtInResource: (uri) => builtInResource(uri),
  });
  // duplicate-ok: the composition root hands each service its dependencies by name; the lists look alike
  // because the services share platform pieces (db, clock, bus, sealer), not logic.
  const credentials = createCredentials({ db, clock, hasher, bus, stats: metrics.caches.credential });
  const signingKeys = createSigningKeys({
    db,
    sealer,
    clock,
    bus,
    alg: config.token.signingAlg,
    overlapSeconds: Math.max(config.token.rotationOverlapSeconds, config.token.maxSeconds + 300),
    minRotationIntervalMs: config.limits.signingKeyRotationIntervalSeconds * 1000,
    maxPublished: config.limits.signingKeyMaxPublished,
  });
  await signingKeys.init();
  // The port is known only after listening (port 0 in tests); the issuer follows it.
  // Behind a load balancer the public port (in issuers and vault URLs) is the balancer's.
  let boundPort = config.publicPort ?? config.port;
  // Asked on every request (token endpoint, vault challenge): computed once per bound port.
  let bases: { port: number; list: readonly string[] } | undefined;
  const issuerBases = (): readonly string[] => {
    if (bases?.port !== boundPort)
      bases = { port: boundPort, list: Object.freeze(issuerBasesFor({ ...config, port: boundPort })) };
    return bases.list;
  };
  const issuer = createTokenIssuer({ keys: signingKeys, clock, policy: config.token });
  const verifier = createTokenVerifier({ keys: signingKeys, clock, issuerBases });
  const audit = createAuditLog({
    db,
    clock,
    macKey: config.rootKey.derive('audit-mac'),
    headKey: config.rootKey.derive('audit-head'),
  });
  // First start after migration 0012: seal the head written by an older version. The head is
  // logged so the operator log holds a copy the database cannot roll back.
  const sealed = await audit.sealLegacyHead();
  if (sealed)
    opts.log?.warn(
      { auditHead: sealed },
      'sealed the existing audit chain head with the root key (first start after upgrade)',
    );
  const auditHead = sealed ?? (await audit.head());
  if (auditHead) opts.log?.info({ auditHead }, 'audit chain head at start');
  const access: Access = createAccess({ db, clock, bus, stats: metrics.caches.access });
  const throttle = createAuthThrottle({
    clock,
    limits: config.limits,
    db,
    ...(opts.log ? { log: opts.log } : {}),
  });
  // One per-principal request budget shared by every plane (management, vault).
  const principalLimiter = createRateLimiter({
    ratePerSecond: config.limits.perPrincipalRate,
    burst: config.limits.perPrincipalBurst,
    clock,
  });
  const assertions = createAssertionVerifier({ db, clock, credentials });
  // The server's federation issuers, narrowed per tenant by its admin (cached; the bus tells every node).
  const serverIssuers = config.federation?.allowedIssuers ?? [];
  const tenantIssuers = createTenantIssuers({
    db,
    clock,
    bus,
    serverIssuers,
    stats: metrics.caches.tenantSettings,
  });
  const federation = createFederation({
    db,
    clock,
    audit: (e) => audit.record(e),
    settings: config.federation,
    issuers: tenantIssuers,
    onFetch: (f) => metrics.issuerFetch(f),
  });

  const vaultAudiences = createVaultAudiences(config.vaultDomain, () => boundPort);
  const vaultResource = vaultAudiences.resource;
  const { builtInResource, resolveResource, replayResourceOf } = createResourceResolver({
    principals,
    vaultResource,
    managementResource: config.managementResource,
    vaultAudiences: vaultAudiences.list,
    issuerBases,
    exchangeAudiences: exchangeAudiences(config),
  });
  const authorizationCodes = createAuthorizationCodes({ db, clock, hasher });
  const deviceCodes = createDeviceCodes({ db, clock, hasher });
  // duplicate-ok: dependency lists by name again (see above): shared platform pieces, not logic.
  const tokenEndpoint = createTokenEndpoint({
    db,
    clock,
    tenants,
    principals,
    credentials,
    assertions,
    federation,
    issuer,
    throttle,
    hasher,
    codes: authorizationCodes,
    deviceCodes,
    resolveResource,
    replayResourceOf,
  });
  const scopes = createScopes({ db, clock });
  const provisioningKeys = createProvisioningKeys({
    db,
    clock,
    hasher,
    access,
    audit,
    bus,
    maxLifetimeSeconds: config.limits.provisioningKeyMaxSeconds,
  });
  const directory = createDirectory({ db, tenants, principals, credentials, access, audit, tokenEndpoint });
  const scopeResolver = createScopeResolver({ scopes });
  const readableScopes = createReadableScopes({ scopes, access });
  const roleAssignments = createRoleAssignments({
    db,
    access,
    principals,
    scopes: scopeResolver,
    audit,
    bus,
  });
  const auditQueries = createAuditQueries({ audit, access, principals });
  // Managed identities: hosts, user-assigned identities, apps (src/management/identity-domain.ts).
  const identity = createIdentityDomain({
    db,
    clock,
    bus,
    sealer,
    principals,
    credentials,
    scopes,
    access,
    audit,
    scopeResolver,
    vaultResource,
    vaultUrlTemplate: () => vaultUrl('{name}', config.vaultDomain, boundPort),
  });
  // Workload identity federation: federated identity credentials of user-assigned identities.
  const federatedCredentials = createFederatedCredentials({
    db,
    clock,
    access,
    audit,
    userIdentities: identity.userIdentities,
    issuers: tenantIssuers,
  });
  // …and of application registrations (Graph).
  const appFederatedCredentials = createAppFederatedCredentials({
    db,
    clock,
    access,
    audit,
    issuers: tenantIssuers,
  });
  // Latchkey-specific tenant settings (the tenant admin's): the tenant's federation issuers.
  const tenantSettings = createTenantSettings({ db, clock, access, audit, tenants, issuers: tenantIssuers });
  // Key vaults (control plane) and the secrets data plane; background jobs (purge).
  const vaultBaseUrl = (nameLower: string) => vaultUrl(nameLower, config.vaultDomain, boundPort);
  const vaults = createVaults({ db, clock, bus, access, audit, scopes, stats: metrics.caches.vault });
  scopeResolver.registerResourceType('Microsoft.KeyVault/vaults', keyVaultResolver(vaults.findActive));
  const secrets = createSecrets({
    db,
    clock,
    sealer,
    access,
    audit,
    baseUrlOf: vaultBaseUrl,
    bus,
    cacheStats: metrics.caches.secret,
  });
  const jobs = createJobs({ db, clock });
  jobs.add(vaultPurgeJob({ vaults, secrets }));
  // Authority housekeeping: audit provisioning keys as they expire; forget spent client-assertion ids.
  jobs.every('provisioning-key-expiry', 30_000, () => provisioningKeys.auditExpired());
  jobs.every('assertion-jti-prune', 300_000, () => assertions.prune());
  const rotation = signingKeyRotationJob({
    signingKeys,
    audit,
    maxAgeSeconds: config.limits.signingKeyMaxAgeSeconds,
  });
  if (rotation) jobs.add(rotation);
  jobs.every('authorization-code-prune', 300_000, () => authorizationCodes.prune());
  jobs.every('auth-failure-prune', 60_000, () => throttle.prune());
  jobs.every('refresh-token-prune', 3_600_000, () => tokenEndpoint.pruneRefreshTokens());
  jobs.every('device-code-prune', 300_000, () => deviceCodes.prune());
  // Keys and crypto operations (src/vault/key-*.ts), with their rotation and purge jobs.
  const keyDomain = createKeyDomain({
    db,
    clock,
    sealer,
    access,
    audit,
    jobs,
    baseUrlOf: vaultBaseUrl,
    bus,
    cacheStats: metrics.caches.key,
  });
  // Certificates (src/vault/certificate*.ts): their keys and secrets live with the keys and secrets.
  const certificates = createCertificates({
    db,
    clock,
    sealer,
    access,
    audit,
    baseUrlOf: vaultBaseUrl,
    onKeyAndSecretChanged: (vaultId, nameLower) => {
      keyDomain.keyChanged(vaultId, nameLower);
      secrets.changed(vaultId, nameLower);
    },
    publicBase: () => issuerBases()[0]!,
  });
  jobs.every('certificate-purge', 60_000, (now) => certificates.purgeDue(now));
  jobs.every('certificate-lifetime', 60_000, (now) => certificates.runLifetimeActions(now));

  // Several nodes on one PostgreSQL: every cache hears the other nodes' changes (src/storage/notify.ts).
  let relay: ChangeRelay | undefined;
  if (db.dialect === 'postgres' && /^postgres(ql)?:\/\//.test(config.storageUrl)) {
    try {
      // Loaded only here: `pg` stays out of a SQLite node's start-up.
      const { startChangeRelay } = await import('../storage/notify.js');
      relay = await startChangeRelay({
        url: config.storageUrl,
        db,
        bus,
        nodeId,
        ...(opts.log ? { log: opts.log } : {}),
      });
    } catch (e) {
      await db.close();
      throw new Error(
        `cannot LISTEN for change notifications on the PostgreSQL database: ${(e as Error).message}`,
        { cause: e },
      );
    }
    metrics.attachRelay(relay);
  }
  /** `draining` is set on shutdown: /readyz answers 503 while in-flight requests finish. */
  const lifecycle = { draining: false };
  /** Readiness of the store for writes: turns false on a full disk, back by itself (src/storage/write-health.ts). */
  const writeHealth = createWriteHealth({ db, clock });

  return {
    config,
    clock,
    db,
    bus,
    nodeId,
    metrics,
    relay,
    lifecycle,
    writeHealth,
    sealer,
    hasher,
    tenants,
    principals,
    credentials,
    signingKeys,
    issuer,
    verifier,
    audit,
    access,
    throttle,
    principalLimiter,
    assertions,
    tokenEndpoint,
    authorizationCodes,
    deviceCodes,
    directory,
    scopes,
    scopeResolver,
    readableScopes,
    roleAssignments,
    auditQueries,
    ...identity,
    federation,
    tenantIssuers,
    tenantSettings,
    federatedCredentials,
    appFederatedCredentials,
    provisioningKeys,
    vaults,
    secrets,
    ...keyDomain,
    certificates,
    jobs,
    vaultBaseUrl,
    vaultResource,
    /** The resource the vault's challenge names (`https://{vaultDomain}[:{public port}]`). */
    vaultChallengeResource: vaultAudiences.challengeResource,
    /** The audiences the vault accepts: `https://{vaultDomain}`, and with the public port. */
    vaultAudiences: vaultAudiences.list,
    resolveResource,
    issuerBases,
    setBoundPort(port: number) {
      boundPort = config.publicPort ?? port;
    },
    get boundPort() {
      return boundPort;
    },
    async close() {
      await relay?.close();
      await audit.drain();
      await db.close();
    },
  };
}
export type Services = Awaited<ReturnType<typeof createServices>>;
