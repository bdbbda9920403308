import { spawn } from 'node:child_process';
import http from 'node:http';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { parseDuration } from '../../config/index.js';
import { readRunState } from '../../identity-endpoint/state-store.js';
import { packagePath } from '../../lib/package-root.js';
import { CliError } from '../errors.js';
import { loadDevServer } from '../state.js';
import { defaultAgentStateDir } from './agent.js';

interface SessionJson {
  sessionId: string;
  identityHeader: string;
  identityEndpoint: string;
  imdsAuthorityHost: string;
  caFile: string | null;
  /** System roots + the CA, for tools that take a single CA file. */
  caBundle: string | null;
  env: Record<string, string>;
}

/** One JSON call to the endpoint's control channel (loopback HTTP, authenticated by the 0600 secret). */
function control(
  base: string,
  secret: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 60_000,
): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const u = new URL(path, base);
  if (u.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname))
    return Promise.reject(new CliError(`refusing a non-loopback identity endpoint: ${u.origin}`));
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolvePromise, reject) => {
    const req = http.request(
      u,
      {
        method,
        headers: {
          authorization: `Bearer ${secret}`,
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': String(payload.length) }
            : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> | undefined;
          try {
            json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
          } catch {}
          resolvePromise({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('the identity endpoint did not answer')));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new CliError(
          e.code === 'ECONNREFUSED'
            ? `the identity endpoint at ${u.origin} is not running (start \`latchkey up\` or \`latchkey agent\`)`
            : `identity endpoint: ${e.message}`,
        ),
      ),
    );
    if (payload) req.write(payload);
    req.end();
  });
}

/** Which endpoint: `--state-dir`, LATCHKEY_IDENTITY_STATE_DIR, the dev server's `{dataDir}/identity`, or the agent's default. */
function stateDirOf(explicit: string | undefined): string {
  if (explicit) return resolve(explicit);
  if (process.env.LATCHKEY_IDENTITY_STATE_DIR) return resolve(process.env.LATCHKEY_IDENTITY_STATE_DIR);
  const dev = loadDevServer();
  if (dev?.dataDir && readRunState(join(dev.dataDir, 'identity'))) return join(dev.dataDir, 'identity');
  return defaultAgentStateDir();
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The preload that resolves `*.localhost` to loopback in Node workloads (shipped: `preload/` of the package). */
export const LOCALHOST_DNS_PRELOAD = packagePath('preload', 'localhost-dns.cjs');

/**
 * NODE_OPTIONS with the localhost preload added (once), keeping what was there. The path is
 * quoted, with `\` and `"` escaped, as Node's NODE_OPTIONS parser reads it.
 */
export function withLocalhostPreload(nodeOptions: string | undefined): string {
  const current = nodeOptions?.trim() ?? '';
  if (current.includes(LOCALHOST_DNS_PRELOAD)) return current;
  const quoted = `"${LOCALHOST_DNS_PRELOAD.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return `${current} --require ${quoted}`.trim();
}
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** `run`'s exit code when it stopped its command because the endpoint lost the session (EX_TEMPFAIL: start it again). */
export const SESSION_LOST_EXIT = 75;

/**
 * Asks the endpoint every `intervalMs` whether it still knows the session, and
 * calls `onLost` once when it definitely does not: a 404 `unknown_session`
 * (the session file was lost, or the session was ended). A control secret that
 * no longer works means the state dir was made anew: the current one is read
 * and the question asked again. An endpoint that is down or restarting (no
 * answer, 5xx) is not a loss: its sessions come back with it.
 */
function watchSession(o: {
  dir: string;
  base: string;
  secret: string;
  sessionId: string;
  intervalMs: number;
  onLost(): void;
}): () => void {
  let secret = o.secret;
  let busy = false;
  let done = false;
  const ask = (s: string) => control(o.base, s, 'GET', `/control/sessions/${o.sessionId}`, undefined, 5_000);
  const check = async () => {
    let r = await ask(secret);
    if (r.status === 401) {
      const now = readRunState(o.dir);
      if (!now || now.secret === secret) return;
      secret = now.secret;
      r = await ask(secret);
    }
    if (r.status === 404 && r.json?.error === 'unknown_session' && !done) {
      stop();
      o.onLost();
    }
  };
  const timer = setInterval(() => {
    if (busy || done) return;
    busy = true;
    check()
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, o.intervalMs);
  const stop = () => {
    done = true;
    clearInterval(timer);
  };
  return stop;
}

/**
 * `latchkey run --app NAME [--env K=V]... -- COMMAND...`: starts a workload as
 * an app on this host, the way App Service does: the identity endpoint's
 * variables (a fresh per-run IDENTITY_HEADER, and a per-run IMDS prefix), the
 * dev CA, and the app's settings with Key Vault references resolved through
 * the app's identity. Exit code and signals pass through.
 */
export function runCommand(): Command {
  return new Command('run')
    .description(
      'Run a command as an app: managed identity endpoint, CA trust and resolved app settings in its environment',
    )
    .requiredOption('--app <name>', 'the app to run as (placed on this host)')
    .option(
      '--env <KEY=VALUE>',
      'an extra environment variable (repeatable; overrides an app setting)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option(
      '--state-dir <dir>',
      'the identity endpoint’s state dir (default: latchkey up’s, else the agent’s)',
    )
    .option(
      '--check-interval <duration>',
      'how often to check that the identity endpoint still knows this run’s session, e.g. 10s',
      (v: string) => {
        try {
          const ms = parseDuration(v);
          if (ms < 1000 || ms > 3_600_000) throw new Error('between 1s and 1h');
          return ms;
        } catch (e) {
          throw new CliError(`--check-interval: ${(e as Error).message}`, 2);
        }
      },
      10_000,
    )
    .addOption(
      new Option(
        '--on-session-lost <action>',
        'when the endpoint no longer knows the session: stop the command (exit 75) or only warn',
      )
        .choices(['stop', 'warn'])
        .default('stop'),
    )
    .option(
      '--no-localhost-dns',
      'do not preload the resolver that sends *.localhost (vault hosts) to loopback in Node workloads',
    )
    .argument('<command...>', 'the command to run (after --)')
    .action(
      async (
        command: string[],
        o: {
          app: string;
          env?: string[];
          stateDir?: string;
          localhostDns: boolean;
          checkInterval: number;
          onSessionLost: 'stop' | 'warn';
        },
      ) => {
        const extra: Record<string, string> = {};
        for (const kv of o.env ?? []) {
          const i = kv.indexOf('=');
          if (i < 1 || !ENV_NAME_RE.test(kv.slice(0, i)))
            throw new CliError(`invalid --env '${kv.slice(0, 40)}': use KEY=VALUE`, 2);
          extra[kv.slice(0, i)] = kv.slice(i + 1);
        }
        const dir = stateDirOf(o.stateDir);
        const state = readRunState(dir);
        if (!state)
          throw new CliError(
            `no identity endpoint in ${dir}: start \`latchkey up\` or \`latchkey agent\` (or pass --state-dir)`,
          );
        const base = state.endpoint.url;
        const r = await control(base, state.secret, 'POST', '/control/sessions', {
          app: o.app,
          pid: process.pid,
        });
        if (r.status !== 201 || !r.json) {
          const d = (r.json?.error_description as string | undefined) ?? `HTTP ${r.status}`;
          throw new CliError(`cannot start app '${o.app}': ${d}`);
        }
        const s = r.json as unknown as SessionJson;
        const ca = s.caFile ?? state.endpoint.caFile;
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          ...s.env,
          ...extra,
          IDENTITY_ENDPOINT: s.identityEndpoint,
          IDENTITY_HEADER: s.identityHeader,
          AZURE_POD_IDENTITY_AUTHORITY_HOST: s.imdsAuthorityHost,
          // The Cloud Shell protocol (POST, `Metadata: true`), for clients that know only MSI_ENDPOINT,
          // such as `az login --identity`. Current SDKs take IDENTITY_ENDPOINT first.
          MSI_ENDPOINT: `${s.imdsAuthorityHost}/metadata/identity/oauth2/token`,
          // Node adds NODE_EXTRA_CA_CERTS to its roots; the others replace the roots, so they get the bundle.
          ...(ca ? { NODE_EXTRA_CA_CERTS: ca } : {}),
          ...(ca || s.caBundle
            ? {
                REQUESTS_CA_BUNDLE: s.caBundle ?? ca,
                SSL_CERT_FILE: s.caBundle ?? ca,
                CURL_CA_BUNDLE: s.caBundle ?? ca,
              }
            : {}),
        };
        // Node workloads: `*.localhost` resolves to loopback (RFC 6761) even where the system resolver
        // does not, so `https://{vault}.vault.localhost:8443` works with no /etc/hosts line.
        if (o.localhostDns) env.NODE_OPTIONS = withLocalhostPreload(env.NODE_OPTIONS);
        const deregister = () =>
          control(base, state.secret, 'DELETE', `/control/sessions/${s.sessionId}`).catch(() => undefined);

        const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
        const forward = (sig: NodeJS.Signals) => () => {
          if (child.exitCode === null && child.signalCode === null) child.kill(sig);
        };
        const handlers = SIGNALS.map((sig) => [sig, forward(sig)] as const);
        for (const [sig, h] of handlers) process.on(sig, h);
        // A workload whose session the endpoint lost would only see 401s: say so, and stop it
        // (a supervisor starts it again, with a new session) unless told to only warn.
        let lost = false;
        let killTimer: NodeJS.Timeout | undefined;
        const unwatch = watchSession({
          dir,
          base,
          secret: state.secret,
          sessionId: s.sessionId,
          intervalMs: o.checkInterval,
          onLost() {
            const stopping = o.onSessionLost === 'stop';
            process.stderr.write(
              `latchkey run: the identity endpoint (${base}) no longer knows the session of app '${o.app}': ` +
                "the workload's token requests are refused (401). Its state was lost (sessions.json in " +
                `${dir} removed, or the state dir made anew) or the session was ended. ` +
                (stopping
                  ? `Stopping the command (exit ${SESSION_LOST_EXIT}); start it again with \`latchkey run\`.\n`
                  : 'The command keeps running without tokens (--on-session-lost warn); restart it to get a new session.\n'),
            );
            if (!stopping || child.exitCode !== null || child.signalCode !== null) return;
            lost = true;
            child.kill('SIGTERM');
            killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          },
        });
        const outcome = await new Promise<{
          code: number | null;
          signal: NodeJS.Signals | null;
          error?: Error;
        }>((done) => {
          child.once('error', (error) => done({ code: null, signal: null, error }));
          child.once('exit', (code, signal) => done({ code, signal }));
        });
        unwatch();
        clearTimeout(killTimer);
        await deregister();
        for (const [sig, h] of handlers) process.off(sig, h);
        if (lost) process.exit(SESSION_LOST_EXIT);
        if (outcome.error) {
          const e = outcome.error as NodeJS.ErrnoException;
          throw new CliError(
            e.code === 'ENOENT'
              ? `command not found: ${command[0]}`
              : `cannot run ${command[0]}: ${e.message}`,
            e.code === 'ENOENT' ? 127 : 126,
          );
        }
        if (outcome.signal) {
          // Die of the same signal, as a shell would report it.
          process.kill(process.pid, outcome.signal);
          await new Promise((r) => setTimeout(r, 1000));
          process.exit(128 + (constants.signals[outcome.signal] ?? 1));
        }
        process.exit(outcome.code ?? 1);
      },
    );
}
