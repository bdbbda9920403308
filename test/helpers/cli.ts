import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReadyInfo } from '../../src/server/up.js';

/** The repository root (the CLI runs from here, as `npx latchkey` would). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(REPO_ROOT, 'bin', 'latchkey.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (undefined when it is not JSON). */
  // biome-ignore lint/suspicious/noExplicitAny: CLI output is arbitrary JSON, narrowed by the assertions that read it
  json: any;
}

/**
 * The environment of a child `latchkey`: the parent's, minus every LATCHKEY_*
 * variable and extra CA trust (so a test sees only what it sets), plus `env`.
 * LATCHKEY_TEST (the test runner's mark: test-cost password hashes, src/crypto/hashing.ts)
 * is kept, so a child server hashes and verifies as the in-process ones do.
 */
export function childEnv(configDir: string, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    const dropped =
      (k.startsWith('LATCHKEY_') && k !== 'LATCHKEY_TEST') ||
      k === 'NODE_EXTRA_CA_CERTS' ||
      k === 'NODE_OPTIONS';
    if (!dropped) base[k] = v;
  }
  return { ...base, LATCHKEY_CONFIG_DIR: configDir, ...env };
}

/**
 * Runs the real CLI (`node bin/latchkey.js ...args`) in a child process with
 * its state in `configDir` and stdin closed (no terminal: prompts fail fast).
 */
export function runCli(
  args: string[],
  opts: {
    configDir: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    /** Called with all stderr so far on every chunk (to act on a prompt while the command runs). */
    onStderr?: (soFar: string) => void;
    /** Written to the child's stdin (a pipe, then closed); without it stdin is empty. */
    input?: string | Buffer;
  },
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env: childEnv(opts.configDir, opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.on('error', () => {}); // EPIPE when the child exits without reading
    child.stdin.end(opts.input ?? '');
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => {
      err.push(c);
      opts.onStderr?.(Buffer.concat(err).toString('utf8'));
    });
    // A guard against a hung command, not a speed check: generous, so a loaded machine never trips it.
    const limitMs = opts.timeoutMs ?? 120_000;
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr =
        Buffer.concat(err).toString('utf8') +
        (killed ? `\n[test helper: killed after ${limitMs} ms without exiting]` : '');
      let json: unknown;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {}
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr, json });
    });
  });
}

/** A CLI user with their own temp config dir. */
export interface CliUser {
  configDir: string;
  run(...args: string[]): Promise<CliResult>;
  runWith(env: Record<string, string>, ...args: string[]): Promise<CliResult>;
  cleanup(): void;
}

export function cliUser(configDir = mkdtempSync(join(tmpdir(), 'latchkey-cli-'))): CliUser {
  return {
    configDir,
    run: (...args) => runCli(args, { configDir }),
    runWith: (env, ...args) => runCli(args, { configDir, env }),
    cleanup: () => rmSync(configDir, { recursive: true, force: true }),
  };
}

/** A long-running `latchkey` process (up or server) that printed its JSON ready line. */
export interface ServerProcess<T> {
  info: T;
  child: ChildProcess;
  /** Milliseconds from spawn to the ready line. */
  readyMs: number;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits for the exit (SIGKILL after `killAfterMs`). */
  stop(
    signal?: NodeJS.Signals,
    killAfterMs?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/**
 * Spawns `node bin/latchkey.js ...args` and waits for the first stdout line
 * that is a JSON object. Rejects (with the process's stderr) if it exits first.
 */
export function spawnServer<T>(
  args: string[],
  opts: {
    configDir: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    /** Called with everything the process wrote to stderr so far, on each write (before ready too). */
    onStderr?: (stderr: string) => void;
  },
): Promise<ServerProcess<T>> {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: childEnv(opts.configDir, opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
    opts.onStderr?.(err);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  const stop: ServerProcess<T>['stop'] = async (signal = 'SIGTERM', killAfterMs = 15_000) => {
    const t0 = Date.now();
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const kill = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    const r = await exited;
    clearTimeout(kill);
    return { ...r, ms: Date.now() - t0 };
  };
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`latchkey ${args[0]} was not ready in time; stderr:\n${err}`));
    }, opts.timeoutMs ?? 120_000);
    const onData = () => {
      for (const line of out.split('\n').slice(0, -1)) {
        if (!line.startsWith('{')) continue;
        try {
          const info = JSON.parse(line) as T;
          clearTimeout(timer);
          child.stdout.off('data', onData);
          resolvePromise({
            info,
            child,
            readyMs: Date.now() - started,
            stdout: () => out,
            stderr: () => err,
            exited,
            stop,
          });
          return;
        } catch {}
      }
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`latchkey ${args[0]} exited (${code ?? signal}) before ready; stderr:\n${err}`));
    });
  });
}

export interface UpProcess extends ServerProcess<ReadyInfo> {
  dataDir: string;
  configDir: string;
  /** Stops the process (SIGTERM) and removes the temp dirs this helper created. */
  close(): Promise<void>;
}

/**
 * Starts a real `latchkey up --json --port 0 --identity-port 0` process on a
 * (new or given) data dir; `configDir` receives its dev-server.json, so a CLI
 * using the same config dir finds the server and trusts its CA by itself.
 */
export async function startUpProcess(
  opts: {
    dataDir?: string;
    configDir?: string;
    args?: string[];
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<UpProcess> {
  const created: string[] = [];
  const mk = (prefix: string) => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    created.push(d);
    return d;
  };
  const dataDir = opts.dataDir ?? join(mk('latchkey-up-'), 'data');
  const configDir = opts.configDir ?? mk('latchkey-upcfg-');
  try {
    const p = await spawnServer<ReadyInfo>(
      ['up', '--json', '--port', '0', '--identity-port', '0', '--data-dir', dataDir, ...(opts.args ?? [])],
      {
        configDir,
        ...(opts.env ? { env: opts.env } : {}),
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      },
    );
    return {
      ...p,
      dataDir,
      configDir,
      async close() {
        await p.stop();
        for (const d of created) rmSync(d, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const d of created) rmSync(d, { recursive: true, force: true });
    throw e;
  }
}
