import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { parseDuration } from '../../config/index.js';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';
import { seg } from '../path.js';
import { api, resolveServer } from '../session.js';
import { configDir } from '../state.js';
import { show, subscriptionOf } from './arm.js';
import { waitForSignal } from './up.js';

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`invalid port: ${v}`, 2);
  return n;
};
const duration = (flag: string) => (v: string) => {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new CliError(`${flag}: ${(e as Error).message}`, 2);
  }
};
const positive = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100_000)
    throw new CliError(`${flag} must be a positive integer`, 2);
  return n;
};
/** The machine's name, as a valid host name (1–63 letters, digits, dots, hyphens, underscores). */
const defaultHostName = () =>
  hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63) || 'host';

export const defaultAgentStateDir = (): string => join(configDir(), 'agent');

/** `latchkey agent`: the managed-identity endpoint of a workload host. */
export function agentCommand(): Command {
  return new Command('agent')
    .description('Run the managed-identity endpoint for the apps placed on this host (loopback only)')
    .option(
      '--enroll',
      'register this machine as a host first, with your `latchkey login` (generates the host key here)',
    )
    .option('--state-dir <dir>', 'host store: keys and control secret, 0700 (default ~/.latchkey/agent)')
    .option('--port <port>', 'port on the loopback address', port, 40342)
    .option('--bind <address>', 'loopback address to listen on', '127.0.0.1')
    .option('--host-name <name>', 'the host’s name when enrolling (default: this machine’s name)')
    .option('-g, --resource-group <rg>', 'resource group of the host when enrolling', 'default')
    .option('--subscription <id>', 'subscription id when enrolling (default: the login’s)')
    .option(
      '--cert-lifetime <duration>',
      'lifetime of the injected certificates, e.g. 30d',
      duration('--cert-lifetime'),
    )
    .option(
      '--renew-ahead <duration>',
      'renew certificates this long before they expire, e.g. 10d',
      duration('--renew-ahead'),
    )
    .option(
      '--overlap <duration>',
      'keep a replaced certificate registered this long, e.g. 1h',
      duration('--overlap'),
    )
    .option('--rate-limit <n>', 'requests per second before 429 (default 20)', positive('--rate-limit'))
    .option(
      '--max-concurrent <n>',
      'requests in progress before 429 (default 5)',
      positive('--max-concurrent'),
    )
    .option('--json', 'print one JSON line on stdout when ready')
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const { isLoopback, startIdentityEndpoint } = await import('../../identity-endpoint/server.js');
      const { openStateStore } = await import('../../identity-endpoint/state-store.js');
      if (!isLoopback(o.bind))
        throw new CliError(
          `refusing to bind the identity endpoint to ${o.bind}: it hands out tokens to whoever reaches it; use a loopback address (127.0.0.1 or ::1)`,
        );
      const stateDir = resolve(o.stateDir ?? defaultAgentStateDir());
      const roll = {
        ...(o.certLifetime ? { lifetimeMs: o.certLifetime } : {}),
        ...(o.renewAhead ? { renewAheadMs: o.renewAhead } : {}),
        ...(o.overlap ? { overlapMs: o.overlap } : {}),
      };
      if (o.enroll) {
        const { enrollHost } = await import('../../identity-endpoint/enroll.js');
        const target = resolveServer(c);
        const h = await enrollHost(
          { server: target.server, call: (method, path, body) => api(c, method, path, body) },
          {
            stateDir,
            hostName: o.hostName ?? defaultHostName(),
            subscriptionId: await subscriptionOf(c, o.subscription),
            resourceGroup: o.resourceGroup,
            ...(target.caFile ? { caFile: resolve(target.caFile) } : {}),
            ...(roll.lifetimeMs ? { lifetimeMs: roll.lifetimeMs } : {}),
          },
        );
        process.stderr.write(`enrolled host '${h.hostName}' (${h.hostId}); its key stays in ${stateDir}\n`);
      }
      const host = openStateStore(stateDir).host();
      if (!host)
        throw new CliError(`this machine is not enrolled (${stateDir}): run \`latchkey agent --enroll\``);
      let ca: string | undefined;
      if (host.caFile) {
        try {
          ca = readFileSync(host.caFile, 'utf8');
        } catch {
          throw new CliError(`cannot read the CA file ${host.caFile}`);
        }
      }
      const endpoint = await startIdentityEndpoint({
        stateDir,
        host,
        port: o.port,
        bindHost: o.bind,
        ...(ca ? { ca } : {}),
        ...(host.caFile ? { caFile: host.caFile } : {}),
        roll,
        rateLimit: {
          ...(o.rateLimit ? { perSecond: o.rateLimit } : {}),
          ...(o.maxConcurrent ? { concurrent: o.maxConcurrent } : {}),
        },
        log: {
          warn: (msg, err) =>
            process.stderr.write(
              `WARNING: ${msg}${err instanceof Error ? `: ${err.message.split('\n')[0]}` : ''}\n`,
            ),
        },
      }).catch((e: Error) => {
        throw new CliError(e.message.split('\n')[0]!);
      });
      const ready = {
        identityEndpoint: endpoint.url,
        hostId: host.hostId,
        hostName: host.hostName,
        stateDir,
      };
      const signalled = waitForSignal(); // before announcing readiness (see `up`)
      if (o.json) process.stdout.write(`${JSON.stringify(ready)}\n`);
      else
        process.stderr.write(
          `Latchkey agent for host '${host.hostName}' listening on ${endpoint.url}\nStart workloads with: latchkey run --app NAME --state-dir ${stateDir} -- COMMAND\n`,
        );
      await signalled;
      await endpoint.close();
    });
}

interface HostJson {
  id: string;
  name: string;
  properties: { builtIn: boolean; createdTime: string; clientId: string };
}

/** `latchkey host list|show|delete`: the hosts workloads run on (Microsoft.Latchkey/hosts). */
export function hostCommand(): Command {
  const API = 'api-version=2024-01-01';
  const cmd = new Command('host').description(
    'Hosts that run apps (each runs `latchkey up` or `latchkey agent`)',
  );
  const path = (sub: string, rg?: string, name?: string) =>
    rg
      ? `/subscriptions/${seg(sub)}/resourceGroups/${seg(rg)}/providers/Microsoft.Latchkey/hosts${name ? `/${seg(name)}` : ''}`
      : `/subscriptions/${seg(sub)}/providers/Microsoft.Latchkey/hosts`;
  cmd
    .command('list')
    .description('List hosts')
    .option('-g, --resource-group <rg>', 'resource group')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(async (o, c0: Command) => {
      const c = ctx(c0);
      const sub = await subscriptionOf(c, o.subscription);
      const hosts = (await api<{ value: HostJson[] }>(c, 'GET', `${path(sub, o.resourceGroup)}?${API}`))
        .value;
      show(c, hosts, (h) => ({
        Name: h.name,
        ResourceGroup: /\/resourceGroups\/([^/]+)/i.exec(h.id)?.[1] ?? null,
        BuiltIn: h.properties.builtIn,
        Created: h.properties.createdTime,
        ClientId: h.properties.clientId,
      }));
    });
  for (const [verb, method, description] of [
    ['show', 'GET', 'Show a host'],
    ['delete', 'DELETE', 'Delete a host (no app may be placed on it)'],
  ] as const) {
    cmd
      .command(verb)
      .description(description)
      .requiredOption('-n, --name <name>', 'host name')
      .option('-g, --resource-group <rg>', 'resource group', 'default')
      .option('--subscription <id>', 'subscription id (default: the login’s)')
      .action(async (o, c0: Command) => {
        const c = ctx(c0);
        const sub = await subscriptionOf(c, o.subscription);
        const r = await api(c, method, `${path(sub, o.resourceGroup, o.name)}?${API}`);
        if (method === 'GET') print(c, r);
      });
  }
  return cmd;
}
