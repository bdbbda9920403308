import { AsyncResource } from 'node:async_hooks';
import { accessSync, constants, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isVaultName } from '../vault/model.js';
import type { UpExtension } from './up.js';

/** Where `latchkey up --hosts-file` writes when no path is given. */
export const DEFAULT_HOSTS_FILE = '/etc/hosts';
const BEGIN = '# BEGIN latchkey vaults (kept by `latchkey up --hosts-file`; edits here are lost)';
const END = '# END latchkey vaults';
const DOMAIN_RE = /^(?=.{1,200}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * The hosts file with Latchkey's block replaced by `lines` (removed when there
 * are none). Everything outside the block is kept byte for byte.
 */
export function renderHostsFile(current: string, lines: readonly string[]): string {
  const kept: string[] = [];
  let inside = false;
  for (const line of current.split('\n')) {
    if (line === BEGIN) inside = true;
    else if (line === END && inside) inside = false;
    else if (!inside) kept.push(line);
  }
  let text = kept.join('\n');
  if (lines.length === 0) return text;
  if (text !== '' && !text.endsWith('\n')) text += '\n';
  return `${text}${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

/** The address vault names should resolve to, for a server bound to `bindHost`. */
export function hostsAddress(bindHost: string): string {
  if (bindHost === '::1') return '::1';
  if (isIP(bindHost) && bindHost !== '0.0.0.0' && bindHost !== '::') return bindHost;
  return '127.0.0.1';
}

/**
 * Keeps `{address} {vault}.{vaultDomain}` lines for every active vault in a
 * hosts file. Writes are serialized and made in place (the file keeps its
 * inode, owner and mode, so a bind-mounted `/etc/hosts` works too).
 */
export function createHostsFileSync(o: {
  path: string;
  vaultDomain: string;
  address: string;
  names: () => Promise<string[]>;
  onError?: (err: unknown) => void;
}) {
  if (!DOMAIN_RE.test(o.vaultDomain))
    throw new Error(`--hosts-file: the vault domain '${o.vaultDomain.slice(0, 60)}' is not a DNS name`);
  if (existsSync(o.path) && !statSync(o.path).isFile())
    throw new Error(`--hosts-file: ${o.path} is not a file`);
  const write = (lines: readonly string[]) => {
    const current = existsSync(o.path) ? readFileSync(o.path, 'utf8') : '';
    const next = renderHostsFile(current, lines);
    if (next !== current) writeFileSync(o.path, next);
  };
  const sync = async () => {
    const names = (await o.names()).filter(isVaultName);
    write(names.map((n) => `${o.address} ${n}.${o.vaultDomain}`));
  };
  let tail: Promise<void> = Promise.resolve();
  let queued = false;
  let closed = false;
  let lastError: unknown;
  return {
    /** Schedules a sync (several changes before it runs make one). */
    kick(): Promise<void> {
      if (!queued && !closed) {
        queued = true;
        tail = tail.then(async () => {
          queued = false;
          if (closed) return;
          try {
            await sync();
            lastError = undefined;
          } catch (e) {
            lastError = e;
            o.onError?.(e);
          }
        });
      }
      return tail;
    },
    /** Resolves when every scheduled sync is done; rejects with the last one's error, if it failed. */
    async idle(): Promise<void> {
      await tail;
      if (lastError) throw lastError;
    },
    /** The first sync: errors (no permission) reach the caller, even when there is nothing to write yet. */
    async start(): Promise<void> {
      if (existsSync(o.path)) accessSync(o.path, constants.W_OK);
      else writeFileSync(o.path, '', { flag: 'wx' });
      await sync();
    },
    /** Removes the block. */
    async close(): Promise<void> {
      closed = true;
      await tail;
      try {
        write([]);
      } catch (e) {
        o.onError?.(e);
      }
    },
  };
}

/**
 * `latchkey up --hosts-file [path]`: vault host names in a hosts file, in step
 * with vault creation, deletion and recovery. For clients whose resolver does
 * not send `*.localhost` to loopback (Debian's glibc without nss-myhostname):
 * Python, Go, Java, curl. Writing `/etc/hosts` needs root.
 */
export const hostsFileExtension: UpExtension = async ({ services, options, logger }) => {
  if (!options.hostsFile) return undefined;
  const hosts = createHostsFileSync({
    path: options.hostsFile,
    vaultDomain: services.config.vaultDomain,
    address: hostsAddress(services.config.bindHost),
    names: () => services.vaults.activeNames(),
    onError: (err) => logger.warn({ err }, `could not update ${options.hostsFile}`),
  });
  try {
    await hosts.start();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? `--hosts-file: cannot write ${options.hostsFile} (${code}); run as root, or leave the option out`
        : `--hosts-file: ${(e as Error).message}`,
      { cause: e },
    );
  }
  // Changes are published inside their transaction: sync from this (outside) context, so the
  // listing waits for the commit instead of reading inside the transaction.
  const kick = AsyncResource.bind(() => void hosts.kick());
  const unsubscribe = [services.bus.subscribe('vault', kick), services.bus.onResync(kick)];
  return {
    idle: () => hosts.idle(),
    async close() {
      for (const u of unsubscribe) u();
      await hosts.close();
    },
  };
};
