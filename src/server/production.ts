import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DOMAIN_RE } from '../authority/tenants.js';
import {
  type Config,
  DEFAULT_LIMITS,
  DEFAULT_MANAGEMENT_RESOURCE,
  DEFAULT_TOKEN_POLICY,
  freezeConfig,
  type ProxySettings,
  validExchangeAudience,
} from '../config/index.js';
import { parseRootKey, type RootKey } from '../crypto/root-key.js';
import { cidrList } from '../lib/ip.js';
import { sqliteStoreProblems } from '../storage/sqlite.js';

export interface ProductionOptions {
  tlsCert?: string;
  tlsKey?: string;
  rootKeyFile?: string;
  storage?: string;
  host: string;
  port: number;
  publicHost?: string;
  /** The port clients (and the load balancer) use, when it differs from `port`. */
  publicPort?: number;
  vaultDomain?: string;
  managementResource?: string;
  logLevel?: Config['logLevel'];
  allowDevCertificate?: boolean;
  /** Overrides of the protective limits (`--limit name=value`). */
  limits?: Partial<Config['limits']>;
  /** A file holding the bearer token `GET /metrics` requires (mode 0600). */
  metricsTokenFile?: string;
  /** Addresses or CIDR ranges of the load balancers in front (`--trusted-proxy`). */
  trustedProxies?: string[];
  /** The trusted proxies send a PROXY protocol header (`--proxy-protocol`), else `X-Forwarded-For`. */
  proxyProtocol?: boolean;
}

/**
 * `latchkey server`: every security-relevant setting is explicit, and dev
 * defaults are refused (no generated root key, no dev CA certificate, no
 * implicit storage). Errors name the fix.
 */
export function loadProductionConfig(o: ProductionOptions, env: NodeJS.ProcessEnv): Readonly<Config> {
  const problems: string[] = [];
  const storage = o.storage ?? env.LATCHKEY_STORAGE_URL;
  if (!storage)
    problems.push(
      '--storage (or LATCHKEY_STORAGE_URL) is required: sqlite:/path/latchkey.db or postgres://...',
    );
  // As for the root key: a store others can read (password hashes, wrapped keys) is refused.
  else if (storage.startsWith('sqlite:') && storage !== 'sqlite::memory:')
    problems.push(...sqliteStoreProblems(resolve(storage.slice('sqlite:'.length))));
  let rootKey: RootKey | undefined;
  const keyText = o.rootKeyFile ? readSecretFile(o.rootKeyFile, problems) : env.LATCHKEY_ROOT_KEY;
  if (!keyText)
    problems.push(
      'a root key is required: --root-key-file FILE or LATCHKEY_ROOT_KEY (base64 of 32 random bytes)',
    );
  else {
    try {
      rootKey = parseRootKey(keyText);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (o.rootKeyFile && isDevRootKeyFile(o.rootKeyFile))
    problems.push(
      'the root key file is the development key of `latchkey up`; create a production key (latchkey root-key generate --out FILE)',
    );
  const certPath = o.tlsCert ?? env.LATCHKEY_TLS_CERT;
  const keyPath = o.tlsKey ?? env.LATCHKEY_TLS_KEY;
  let cert = '';
  let key = '';
  if (!certPath || !keyPath) problems.push('--tls-cert and --tls-key (PEM files) are required');
  else {
    cert = readSecretFile(certPath, problems, false) ?? '';
    key = readSecretFile(keyPath, problems) ?? '';
    if (cert) {
      try {
        const x = new X509Certificate(cert);
        if (/Latchkey Dev CA/.test(x.issuer) && !o.allowDevCertificate) {
          problems.push(
            'the TLS certificate was issued by the Latchkey development CA; use a real certificate',
          );
        }
      } catch {
        problems.push('--tls-cert is not a PEM certificate');
      }
    }
  }
  const vaultDomain = (o.vaultDomain ?? env.LATCHKEY_VAULT_DOMAIN ?? '').toLowerCase();
  if (!vaultDomain) problems.push('--vault-domain is required (vault hosts are {name}.{vault-domain})');
  else if (!DOMAIN_RE.test(vaultDomain)) problems.push('--vault-domain must be a DNS name');
  const metricsToken = (
    o.metricsTokenFile ? readSecretFile(o.metricsTokenFile, problems) : env.LATCHKEY_METRICS_TOKEN
  )?.trim();
  if (metricsToken !== undefined && !/^[A-Za-z0-9._~+/=-]{16,256}$/.test(metricsToken))
    problems.push('the metrics token must be 16–256 characters of A–Z, a–z, 0–9 and ._~+/=-');
  const proxies = proxySettings(o, env, problems);
  // Workload identity federation: the external issuers an operator allows (docs/federation.md).
  const allowedIssuers = (env.LATCHKEY_FEDERATION_ALLOWED_ISSUERS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const i of allowedIssuers)
    if (!/^https:\/\/[^\s/?#@]+(\/[^\s?#]*)?$/.test(i) || i.length > 600)
      problems.push(`LATCHKEY_FEDERATION_ALLOWED_ISSUERS: '${i.slice(0, 80)}' is not an https issuer URL`);
  const tokenExchangeAudiences = (env.LATCHKEY_TOKEN_EXCHANGE_AUDIENCES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const a of tokenExchangeAudiences)
    if (!validExchangeAudience(a))
      problems.push(
        `LATCHKEY_TOKEN_EXCHANGE_AUDIENCES: '${a.slice(0, 80)}' is not an api://, https:// or urn: audience (at most 200 characters, no trailing slash)`,
      );
  const publicHost = o.publicHost ?? env.LATCHKEY_PUBLIC_HOST;
  if (!publicHost) problems.push('--public-host is required (the host name clients use for the authority)');
  if (problems.length) throw new Error(`latchkey server cannot start:\n  - ${problems.join('\n  - ')}`);
  return freezeConfig({
    mode: 'production',
    dataDir: '',
    storageUrl: storage!,
    bindHost: o.host,
    port: o.port,
    publicHost: publicHost!,
    issuerHostAliases: [],
    vaultDomain,
    managementResource:
      o.managementResource ?? env.LATCHKEY_MANAGEMENT_RESOURCE ?? DEFAULT_MANAGEMENT_RESOURCE,
    tls: { cert, key },
    rootKey: rootKey!,
    token: { ...DEFAULT_TOKEN_POLICY },
    limits: { ...DEFAULT_LIMITS, ...o.limits },
    logLevel: o.logLevel ?? 'info',
    ...(o.publicPort !== undefined ? { publicPort: o.publicPort } : {}),
    ...(metricsToken ? { metricsToken } : {}),
    ...(proxies ? { proxies } : {}),
    ...(allowedIssuers.length ? { federation: { allowedIssuers } } : {}),
    ...(tokenExchangeAudiences.length ? { tokenExchangeAudiences } : {}),
  } satisfies Config);
}

/** `--trusted-proxy` (repeatable) or LATCHKEY_TRUSTED_PROXIES (comma-separated), and `--proxy-protocol`. */
function proxySettings(
  o: ProductionOptions,
  env: NodeJS.ProcessEnv,
  problems: string[],
): ProxySettings | undefined {
  const trusted = (
    o.trustedProxies?.length ? o.trustedProxies : (env.LATCHKEY_TRUSTED_PROXIES ?? '').split(',')
  )
    .map((s) => s.trim())
    .filter(Boolean);
  if (trusted.length === 0) {
    if (o.proxyProtocol)
      problems.push('--proxy-protocol needs --trusted-proxy: the addresses of the balancers that send it');
    return undefined;
  }
  try {
    cidrList(trusted);
  } catch (e) {
    problems.push(`--trusted-proxy: ${(e as Error).message}`);
    return undefined;
  }
  return { trusted, via: o.proxyProtocol ? 'proxy-protocol' : 'x-forwarded-for' };
}

function readSecretFile(path: string, problems: string[], secret = true): string | undefined {
  if (!existsSync(path)) {
    problems.push(`file not found: ${path}`);
    return undefined;
  }
  if (secret && (statSync(path).mode & 0o077) !== 0)
    problems.push(`${path} must not be readable by group or others (chmod 600)`);
  return readFileSync(path, 'utf8');
}

/** A root key inside a `latchkey up` data dir (next to its dev CA or admin credentials) is a dev key. */
function isDevRootKeyFile(path: string): boolean {
  // `latchkey up` writes its key as root.key at the top of its data dir, next to tls/ and the
  // admin's sign-in file. A key made by `root-key generate` under another name (or in a directory
  // without up's files) is not called the development key for sitting beside a CA key.
  const full = resolve(path);
  const dir = dirname(full);
  if (basename(full) !== 'root.key') return false;
  return (
    /(^|[\\/])\.latchkey-data$/.test(dir) ||
    (existsSync(join(dir, 'tls', 'ca.key')) &&
      (existsSync(join(dir, 'admin-credentials.json')) || existsSync(join(dir, 'latchkey.db'))))
  );
}
