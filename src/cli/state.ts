import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from './errors.js';

/** Where the CLI keeps its state: LATCHKEY_CONFIG_DIR, default ~/.latchkey; files are 0600. */
export const configDir = (): string => process.env.LATCHKEY_CONFIG_DIR || join(homedir(), '.latchkey');

export interface CachedToken {
  accessToken: string;
  expiresOn: number;
}

export interface Profile {
  server: string;
  tenantId: string;
  caFile?: string;
  subscriptionId?: string;
  kind: 'user' | 'servicePrincipal';
  /** user name or app id */
  name: string;
  refreshToken?: string;
  /** Service principal: the client secret (kept like az keeps it, in a 0600 file) or a PEM path. */
  clientSecret?: string;
  certificatePath?: string;
  tokens: Record<string, CachedToken>;
}

/** Written by `latchkey up` so the CLI on the same machine finds the dev server and trusts its CA. */
export interface DevServerInfo {
  server: string;
  caCertPath: string;
  tenantId: string;
  subscriptionId: string;
  vaultUrlTemplate: string;
  identityEndpoint: string | null;
  dataDir: string;
  /** The `latchkey up` process: while it runs, another `up` does not take the CLI over. */
  pid?: number;
}

function readJson<T>(file: string): T | undefined {
  const p = join(configDir(), file);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function writeJson(file: string, value: unknown): void {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = join(dir, file);
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, p);
}

export const loadProfile = (): Profile | undefined => readJson<Profile>('profile.json');
export const saveProfile = (p: Profile): void => writeJson('profile.json', p);
export const clearProfile = (): void => rmSync(join(configDir(), 'profile.json'), { force: true });
export const loadDevServer = (): DevServerInfo | undefined => readJson<DevServerInfo>('dev-server.json');
export const saveDevServer = (d: DevServerInfo): void => writeJson('dev-server.json', d);
export const devServerFile = (): string => join(configDir(), 'dev-server.json');

/** Whether process `pid` is alive (EPERM: alive, another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 20_000;

/**
 * Runs `fn` holding the config dir's lock file (created with O_EXCL), so
 * concurrent CLI processes renew tokens one at a time. A lock older than 30 s
 * is left over from a killed process and is broken.
 */
export async function withStateLock<T>(fn: () => Promise<T>): Promise<T> {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, 'state.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      if (age > LOCK_STALE_MS) rmSync(lock, { force: true });
      else if (Date.now() > deadline)
        throw new CliError(`another latchkey process holds ${lock}; delete it if none is running`);
      else await sleep(20 + Math.floor(Math.random() * 40));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
