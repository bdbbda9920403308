import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Writes `text` to `path` atomically and durably: a 0600 temp file beside it,
 * fsync'd, renamed over the target, then the directory fsync'd — a crash
 * leaves the old file or the new one, never a torn or empty one.
 */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    const buf = Buffer.from(text, 'utf8');
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** What a host knows about itself after enrolment (`host.json`). */
export interface HostState {
  hostId: string;
  hostName: string;
  tenantId: string;
  principalId: string;
  /** The host principal's app (client) id: the endpoint authenticates with it. */
  clientId: string;
  /** The Latchkey server (authority and management API), https. */
  server: string;
  /** A CA certificate file to trust for the server (the dev CA), if any. */
  caFile?: string;
}

/** Where the endpoint listens, for `latchkey run` (`endpoint.json`). */
export interface EndpointState {
  url: string;
  pid: number;
  hostName: string;
  caFile?: string;
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,80}$/;

/**
 * The endpoint's host store: a 0700 directory of 0600 files that only the
 * endpoint reads — the host's and the identities' private keys, the control
 * secret that `latchkey run` presents, the sessions of running workloads.
 * Writes are atomic and durable (temp file + fsync + rename + directory fsync).
 */
export function openStateStore(dir: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  mkdirSync(join(dir, 'credentials'), { recursive: true, mode: 0o700 });
  chmodSync(join(dir, 'credentials'), 0o700);

  const path = (name: string) => {
    if (!name.split('/').every((p) => NAME_RE.test(p) && p !== '..' && p !== '.'))
      throw new Error(`invalid state file name: ${name}`);
    return join(dir, name);
  };
  const readJson = <T>(name: string): T | undefined => {
    const p = path(name);
    if (!existsSync(p)) return undefined;
    try {
      return JSON.parse(readFileSync(p, 'utf8')) as T;
    } catch {
      return undefined;
    }
  };
  const writeFile = (name: string, text: string) => writeFileAtomic(path(name), text);
  const writeJson = (name: string, value: unknown) => writeFile(name, `${JSON.stringify(value, null, 2)}\n`);

  return {
    dir,
    readJson,
    writeJson,
    /** Writes a text file (0600, atomically) and returns its path. */
    writeText(name: string, text: string): string {
      writeFile(name, text);
      return path(name);
    },
    /** The path of a file in the store (the name checked). */
    pathOf: (name: string): string => path(name),
    remove(name: string) {
      rmSync(path(name), { force: true });
    },
    list(sub: string): string[] {
      const p = path(sub);
      return existsSync(p) && statSync(p).isDirectory()
        ? readdirSync(p).filter((f) => !f.endsWith('.tmp'))
        : [];
    },
    host: () => readJson<HostState>('host.json'),
    saveHost: (h: HostState) => writeJson('host.json', h),
    /** The control secret (created once): `latchkey run` must read it to register a session. */
    controlSecret(): string {
      const p = path('control.secret');
      if (existsSync(p)) {
        const s = readFileSync(p, 'utf8').trim();
        if (s.length >= 32) return s;
      }
      const s = randomBytes(32).toString('base64url');
      writeFile('control.secret', `${s}\n`);
      return s;
    },
    saveEndpoint: (e: EndpointState) => writeJson('endpoint.json', e),
    endpoint: () => readJson<EndpointState>('endpoint.json'),
    clearEndpoint: () => rmSync(path('endpoint.json'), { force: true }),
  };
}
export type StateStore = ReturnType<typeof openStateStore>;

/** Reads what `latchkey run` needs from a state dir (without creating anything). */
export function readRunState(dir: string): { endpoint: EndpointState; secret: string } | undefined {
  const e = join(dir, 'endpoint.json');
  const s = join(dir, 'control.secret');
  if (!existsSync(e) || !existsSync(s)) return undefined;
  try {
    return {
      endpoint: JSON.parse(readFileSync(e, 'utf8')) as EndpointState,
      secret: readFileSync(s, 'utf8').trim(),
    };
  } catch {
    return undefined;
  }
}
