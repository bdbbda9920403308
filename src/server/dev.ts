import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type Config,
  DEFAULT_LIMITS,
  DEFAULT_MANAGEMENT_RESOURCE,
  DEFAULT_TOKEN_POLICY,
  DEFAULT_VAULT_DOMAIN,
  type FederationSettings,
  freezeConfig,
  type ProxySettings,
  validExchangeAudience,
} from '../config/index.js';
import { loadOrCreateRootKeyFile } from '../crypto/root-key.js';
import { sqliteStoreProblems } from '../storage/sqlite.js';
import { ensureDevTls } from '../tls/dev-ca.js';

export interface DevOptions {
  dataDir: string;
  host: string;
  port: number;
  vaultDomain?: string;
  logLevel?: Config['logLevel'];
  limits?: Partial<Config['limits']>;
  token?: Partial<Config['token']>;
  storageUrl?: string;
  /** Proxies in front (tests and programmatic use; `latchkey up` serves one machine directly). */
  proxies?: ProxySettings;
  /** External OIDC issuers federated identity credentials may trust (docs/federation.md). */
  federation?: FederationSettings;
  /** Audiences besides `api://AzureADTokenExchange` a principal may get tokens for (docs/federation.md). */
  tokenExchangeAudiences?: readonly string[];
}

/**
 * `latchkey up`: everything in the data dir — SQLite database, a generated
 * root key, a dev CA and server certificate. Loud about each dev default.
 */
export async function loadDevConfig(
  o: DevOptions,
): Promise<{ config: Readonly<Config>; warnings: string[] }> {
  const dataDir = resolve(o.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const vaultDomain = o.vaultDomain ?? DEFAULT_VAULT_DOMAIN;
  for (const a of o.tokenExchangeAudiences ?? [])
    if (!validExchangeAudience(a))
      throw new Error(
        `tokenExchangeAudiences: '${a.slice(0, 80)}' is not an api://, https:// or urn: audience`,
      );
  const warnings: string[] = [];
  const rootKeyPath = join(dataDir, 'root.key');
  const storageUrl = o.storageUrl ?? `sqlite:${join(dataDir, 'latchkey.db')}`;
  // A store with data but no root key: a new key could not read it, and left behind it would
  // make the next start fail differently. Refuse before anything is written.
  const sqlitePath =
    storageUrl.startsWith('sqlite:') && storageUrl !== 'sqlite::memory:'
      ? resolve(storageUrl.slice('sqlite:'.length))
      : undefined;
  if (!existsSync(rootKeyPath) && sqlitePath && existsSync(sqlitePath) && statSync(sqlitePath).size > 0)
    throw new Error(
      `the root key ${rootKeyPath} is missing but ${sqlitePath} holds data sealed with it: restore root.key from a backup (a new key cannot read that data), or start on an empty --data-dir`,
    );
  const { key: rootKey, created } = loadOrCreateRootKeyFile(rootKeyPath);
  warnings.push(
    `${created ? 'generated a' : 'using the'} development root key ${rootKeyPath} — it sits next to the data it protects; production needs \`latchkey server\` with --root-key-file or LATCHKEY_ROOT_KEY`,
  );
  // `latchkey server` refuses these; in development they are said loudly.
  if ((statSync(rootKeyPath).mode & 0o077) !== 0)
    warnings.push(`the root key ${rootKeyPath} is readable by group or others (chmod 600)`);
  const publicHost = o.host === '0.0.0.0' || o.host === '::' || o.host === '127.0.0.1' ? 'localhost' : o.host;
  const tls = await ensureDevTls(dataDir, vaultDomain, publicHost === 'localhost' ? [] : [publicHost]);
  warnings.push(`TLS uses the development CA ${tls.caCertPath}; trust it only on this machine`);
  if (sqlitePath) warnings.push(...sqliteStoreProblems(sqlitePath));
  const config: Config = {
    mode: 'dev',
    dataDir,
    storageUrl,
    bindHost: o.host,
    port: o.port,
    publicHost,
    issuerHostAliases: ['localhost', '127.0.0.1', '::1'].filter((h) => h !== publicHost),
    vaultDomain,
    managementResource: DEFAULT_MANAGEMENT_RESOURCE,
    tls: { cert: tls.cert, key: tls.key, caCertPath: tls.caCertPath },
    rootKey,
    token: { ...DEFAULT_TOKEN_POLICY, ...o.token },
    limits: { ...DEFAULT_LIMITS, ...o.limits },
    logLevel: o.logLevel ?? 'warn',
    // The ranges are checked when the listener starts (createClientAddresses).
    ...(o.proxies ? { proxies: { ...o.proxies, trusted: [...o.proxies.trusted] } } : {}),
    ...(o.federation
      ? { federation: { ...o.federation, allowedIssuers: [...o.federation.allowedIssuers] } }
      : {}),
    ...(o.tokenExchangeAudiences ? { tokenExchangeAudiences: [...o.tokenExchangeAudiences] } : {}),
  };
  return { config: freezeConfig(config), warnings };
}
