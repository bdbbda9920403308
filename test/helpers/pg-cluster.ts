import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A private PostgreSQL cluster owned by one test: its own data dir and port, so the test
 * may stop, restart and kill it without touching the shared server other tests use.
 * Needs Debian's `postgresql` (initdb, pg_ctl). As root it runs as the `postgres` user.
 */
export interface PgCluster {
  url: string;
  port: number;
  /** `pg_ctl stop -m fast`: sessions are terminated (57P01), as in a restart or failover. No-op when stopped. */
  stop(): void;
  /** Starts the server (no-op when it runs). */
  start(): void;
  /** Stop and start again (what `pg_ctlcluster … restart` does). */
  restart(): void;
  /** Stops the server and removes its files. */
  destroy(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  throw new Error(
    'PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql: install postgresql',
  );
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

export async function createPgCluster(): Promise<PgCluster> {
  const bin = binDir();
  const root = mkdtempSync(join(tmpdir(), 'latchkey-pgc-'));
  const data = join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  // initdb and postgres refuse to run as root.
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]]
      : [join(bin, cmd), args];
    const r = spawnSync(file, argv, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) {
      let log = '';
      try {
        log = readFileSync(join(root, 'log'), 'utf8').split('\n').slice(-40).join('\n');
      } catch {}
      throw new Error(
        `${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error}\nserver log:\n${log}`,
      );
    }
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(root, uid, gid);
  }
  run('initdb', [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--no-sync',
    '--no-instructions',
  ]);
  const port = await freePort();
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=50`;
  // pg_ctl's own word decides whether the server runs (`status` exits 0 when it does).
  const running = () =>
    spawnSync(asRoot ? 'runuser' : join(bin, 'pg_ctl'), [
      ...(asRoot ? ['-u', 'postgres', '--', join(bin, 'pg_ctl')] : []),
      '-D',
      data,
      'status',
    ]).status === 0;
  const start = () => {
    if (running()) return;
    try {
      run('pg_ctl', ['-D', data, '-o', opts, '-l', join(root, 'log'), '-w', '-t', '60', 'start']);
    } catch (e) {
      // On a loaded machine pg_ctl's wait can report a failure for a server that came up all the same.
      if (!running()) throw e;
    }
  };
  const stop = () => {
    if (running()) run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
  };
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    restart() {
      stop();
      start();
    },
    destroy() {
      try {
        stop();
      } catch {}
      rmSync(root, { recursive: true, force: true });
    },
  };
}
