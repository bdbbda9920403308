import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliUser, cliUser, REPO_ROOT, spawnServer } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { grant, putVault, secretClient, vaultPrincipal } from './helpers/vault.js';

const BIN = join(REPO_ROOT, 'bin', 'latchkey.js');
const CHILD = join(REPO_ROOT, 'test', 'fixtures', 'identity-child.mjs');
const DNS = join(REPO_ROOT, 'test', 'fixtures', 'localhost-dns.mjs');

describe('latchkey agent: the identity endpoint of a second host', () => {
  let s: TestServer;
  let cli: CliUser;
  let tmp: string;
  const run = async (...args: string[]) => {
    const r = await cli.run(...args);
    assert.equal(r.code, 0, `latchkey ${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  before(async () => {
    s = await startTestServer();
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-agent-'));
    cli = cliUser(join(tmp, 'cli'));
    const login = await cli.run(
      '--server',
      s.info.authority,
      '--ca-file',
      s.info.caCertPath,
      'login',
      '-u',
      s.admin.userName,
      '-p',
      s.admin.password,
      '--tenant',
      s.info.tenantId,
    );
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    await s?.stop();
    cli?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('agent: a non-loopback bind is refused before anything else', async () => {
    const r = await cli.run('agent', '--bind', '0.0.0.0', '--state-dir', join(tmp, 'never'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to bind the identity endpoint to 0\.0\.0\.0.*loopback/);
  });

  test('agent --enroll: a new host, its key kept locally, serving only its apps to `latchkey run`', async () => {
    const stateDir = join(tmp, 'agent-state');
    const agent = await spawnServer<{ identityEndpoint: string; hostId: string; hostName: string }>(
      ['agent', '--enroll', '--json', '--port', '0', '--state-dir', stateDir, '--host-name', 'edge-7'],
      { configDir: cli.configDir },
    );
    try {
      assert.match(agent.info.identityEndpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(agent.info.hostName, 'edge-7');
      assert.equal(statSync(stateDir).mode & 0o777, 0o700);
      assert.equal(statSync(join(stateDir, 'credentials', 'host.json')).mode & 0o777, 0o600);
      assert.equal(statSync(join(stateDir, 'control.secret')).mode & 0o777, 0o600);
      const hosts = (await run('host', 'list')).json.map((h: { name: string }) => h.name);
      assert.deepEqual(hosts.sort(), ['edge-7', 'local']);

      const vault = await putVault(s, 'agentvault');
      const officer = await vaultPrincipal(s, 'agent-officer');
      await grant(s, officer.id, 'Key Vault Secrets Officer', vault.id);
      await secretClient(s, 'agentvault', officer).setSecret('greeting', 'hello edge');
      const app = (await run('app', 'create', '-n', 'edge-app', '--host', 'edge-7', '--assign-identity'))
        .json;
      assert.equal(app.properties.hostName, 'edge-7');
      await grant(s, app.identity.principalId, 'Key Vault Secrets User', vault.id);
      // Placed on the edge host, then moved away: the agent no longer serves it.
      await run('app', 'create', '-n', 'not-on-edge', '--host', 'edge-7', '--assign-identity');
      const moved = (await run('app', 'update', '-n', 'not-on-edge', '--host', 'local')).json;
      assert.equal(moved.properties.hostName, 'local');

      const runAs = (name: string) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const c = spawn(
            process.execPath,
            [
              BIN,
              'run',
              '--app',
              name,
              '--state-dir',
              stateDir,
              '--',
              process.execPath,
              '--import',
              DNS,
              CHILD,
              'appservice',
              s.vaultUrl('agentvault'),
              s.info.vaultResource,
            ],
            {
              cwd: REPO_ROOT,
              env: { PATH: process.env.PATH ?? '', HOME: tmp },
              stdio: ['ignore', 'pipe', 'pipe'],
            },
          );
          let stdout = '';
          let stderr = '';
          c.stdout.on('data', (d: Buffer) => {
            stdout += d;
          });
          c.stderr.on('data', (d: Buffer) => {
            stderr += d;
          });
          c.on('close', (code) => resolve({ code, stdout, stderr }));
        });
      const ok = await runAs('edge-app');
      assert.equal(ok.code, 0, ok.stderr);
      const out = JSON.parse(ok.stdout.trim().split('\n').pop()!);
      assert.equal(out.managedIdentity.secret, 'hello edge', JSON.stringify(out));
      assert.equal(out.default.secret, 'hello edge');
      const other = await runAs('not-on-edge');
      assert.equal(other.code, 1);
      assert.match(other.stderr, /No app named 'not-on-edge' is placed on this host/);
    } finally {
      const stopped = await agent.stop();
      assert.equal(stopped.code, 0, agent.stderr());
    }
  });

  test('agent --enroll with a provisioning key (hosts:enroll): no login on the new host, then an app placed there gets tokens', async () => {
    const admin = { authorization: `Bearer ${await s.adminToken()}` };
    const mk = async (scopes: string[]) => {
      const r = await s.request('POST', '/api/provisioning/keys', {
        headers: admin,
        json: { scopes, expiresInSeconds: 600 },
      });
      assert.equal(r.status, 201, r.text);
      return r.json as { id: string; key: string };
    };
    const bare = cliUser(join(tmp, 'pk-cli')); // a fresh host: no login state at all
    const common = [
      '--server',
      s.info.authority,
      '--ca-file',
      s.info.caCertPath,
      'agent',
      '--enroll',
      '--json',
      '--port',
      '0',
    ];
    // A key without the scope is refused, naming the scope; nothing is enrolled.
    const weak = await mk(['apps:write']);
    const refused = await bare.runWith(
      { LATCHKEY_PROVISIONING_KEY: weak.key },
      ...common,
      '--state-dir',
      join(tmp, 'pk-weak'),
      '--host-name',
      'edge-weak',
      '--subscription',
      s.info.subscriptionId,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /hosts:enroll/);
    const key = await mk(['hosts:enroll']);
    const stateDir = join(tmp, 'pk-state');
    const agent = await spawnServer<{ identityEndpoint: string; hostId: string; hostName: string }>(
      [...common, '--state-dir', stateDir, '--host-name', 'edge-pk', '--subscription', s.info.subscriptionId],
      { configDir: bare.configDir, env: { LATCHKEY_PROVISIONING_KEY: key.key } },
    );
    try {
      assert.equal(agent.info.hostName, 'edge-pk');
      // The key was needed only to enrol: the host now authenticates with its own certificate.
      const revoke = await s.request('POST', `/api/provisioning/keys/${key.id}/revoke`, { headers: admin });
      assert.equal(revoke.status, 200);
      await s.services.audit.drain();
      const ops = (await s.services.audit.list({ tenantId: s.info.tenantId, provisioningKeyId: key.id })).map(
        (e) => e.operation,
      );
      assert.ok(
        ops.some((o) => /Host/i.test(o)),
        `the enrolment is audited with the key's id: ${ops.join(', ')}`,
      );

      const vault = await putVault(s, 'pkvault');
      const officer = await vaultPrincipal(s, 'pk-officer');
      await grant(s, officer.id, 'Key Vault Secrets Officer', vault.id);
      await secretClient(s, 'pkvault', officer).setSecret('greeting', 'hello pk edge');
      const app = (await run('app', 'create', '-n', 'pk-app', '--host', 'edge-pk', '--assign-identity')).json;
      await grant(s, app.identity.principalId, 'Key Vault Secrets User', vault.id);
      const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const c = spawn(
          process.execPath,
          [
            BIN,
            'run',
            '--app',
            'pk-app',
            '--state-dir',
            stateDir,
            '--',
            process.execPath,
            '--import',
            DNS,
            CHILD,
            'appservice',
            s.vaultUrl('pkvault'),
            s.info.vaultResource,
          ],
          {
            cwd: REPO_ROOT,
            env: { PATH: process.env.PATH ?? '', HOME: tmp },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d: Buffer) => {
          stdout += d;
        });
        c.stderr.on('data', (d: Buffer) => {
          stderr += d;
        });
        c.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      assert.equal(out.code, 0, out.stderr);
      const result = JSON.parse(out.stdout.trim().split('\n').pop()!);
      assert.equal(result.managedIdentity.secret, 'hello pk edge', JSON.stringify(result));
    } finally {
      const stopped = await agent.stop();
      assert.equal(stopped.code, 0, agent.stderr());
      bare.cleanup();
    }
  });
  test('agent restarted on the same port: a running workload keeps getting tokens; a lost session file stops `latchkey run` (exit 75)', async () => {
    const stateDir = join(tmp, 'restart-state');
    const start = (port: string, enroll: boolean) =>
      spawnServer<{ identityEndpoint: string }>(
        [
          'agent',
          ...(enroll ? ['--enroll', '--host-name', 'edge-restart'] : []),
          '--json',
          '--port',
          port,
          '--state-dir',
          stateDir,
        ],
        { configDir: cli.configDir },
      );
    /** `latchkey run` of the `tokens` workload: each ask() makes it request a token by both protocols. */
    const workload = (runArgs: string[]) => {
      const c = spawn(
        process.execPath,
        [
          BIN,
          'run',
          '--app',
          'restart-app',
          '--state-dir',
          stateDir,
          ...runArgs,
          '--',
          process.execPath,
          CHILD,
          'tokens',
          s.info.vaultResource,
        ],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: tmp }, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      let wake: (() => void)[] = [];
      const poke = () => {
        const w = wake;
        wake = [];
        for (const f of w) f();
      };
      c.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        poke();
      });
      c.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        poke();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
        c.on('close', (code, signal) => {
          poke();
          r({ code, signal });
        }),
      );
      /** Waits (on output events, with a deadline) until `ready()` holds. */
      const until = async (what: string, ready: () => boolean, ms = 30_000) => {
        const deadline = Date.now() + ms;
        while (!ready()) {
          if (c.exitCode !== null || c.signalCode !== null)
            throw new Error(`run exited before ${what}: ${err}`);
          if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}; stderr: ${err}`);
          await new Promise<void>((r) => {
            wake.push(r);
            setTimeout(r, 1000).unref();
          });
        }
      };
      let read = 0;
      const ask = async (): Promise<{ appservice: number; imds: number; token: boolean }> => {
        c.stdin.write('go\n');
        await until('an answer', () => out.split('\n').length - 1 > read);
        return JSON.parse(out.split('\n')[read++]!);
      };
      return { c, ask, until, exited, stdout: () => out, stderr: () => err };
    };

    let agent = await start('0', true);
    const port = new URL(agent.info.identityEndpoint).port;
    const workloads: ReturnType<typeof workload>[] = [];
    try {
      await run('app', 'create', '-n', 'restart-app', '--host', 'edge-restart', '--assign-identity');
      const w1 = workload([]);
      workloads.push(w1);
      assert.deepEqual(await w1.ask(), { appservice: 200, imds: 200, token: true });

      // The agent restarts on the same port (what a deploy or a crash and a supervisor do).
      assert.equal((await agent.stop()).code, 0, agent.stderr());
      assert.ok(existsSync(join(stateDir, 'sessions.json')), "existsSync(join(stateDir, 'sessions.json'))");
      assert.equal(statSync(join(stateDir, 'sessions.json')).mode & 0o777, 0o600);
      agent = await start(port, false);
      assert.equal(agent.info.identityEndpoint, `http://127.0.0.1:${port}`);
      assert.deepEqual(
        await w1.ask(),
        { appservice: 200, imds: 200, token: true },
        'a token after the restart',
      );
      w1.c.stdin.end();
      assert.deepEqual(await w1.exited, { code: 0, signal: null }, w1.stderr());
      const left = JSON.parse(readFileSync(join(stateDir, 'sessions.json'), 'utf8')) as {
        sessions: unknown[];
      };
      assert.equal(left.sessions.length, 0, 'the ended run left the file');

      // State lost while the agent is down: `run` notices, says so, and stops its command (or only warns).
      const w2 = workload(['--check-interval', '1s']);
      const w3 = workload(['--check-interval', '1s', '--on-session-lost', 'warn']);
      workloads.push(w2, w3);
      assert.deepEqual(await w2.ask(), { appservice: 200, imds: 200, token: true });
      assert.deepEqual(await w3.ask(), { appservice: 200, imds: 200, token: true });
      assert.equal((await agent.stop()).code, 0, agent.stderr());
      rmSync(join(stateDir, 'sessions.json'));
      agent = await start(port, false);

      await w2.until('the exit', () => w2.c.exitCode !== null || w2.c.signalCode !== null);
      assert.deepEqual(await w2.exited, { code: 75, signal: null }, w2.stderr());
      assert.match(w2.stderr(), /no longer knows the session of app 'restart-app'/);
      assert.match(w2.stderr(), /refused \(401\)/);
      assert.match(w2.stderr(), /Stopping the command \(exit 75\)/);
      assert.match(w2.stdout(), /"signal":"SIGTERM"/, 'the command was stopped with SIGTERM');

      await w3.until('the warning', () => /no longer knows the session/.test(w3.stderr()));
      assert.match(w3.stderr(), /keeps running without tokens \(--on-session-lost warn\)/);
      const after = await w3.ask();
      assert.equal(after.appservice, 401, 'the warning was true');
      assert.equal(after.imds, 401);
      w3.c.stdin.end();
      assert.deepEqual(await w3.exited, { code: 0, signal: null }, w3.stderr());

      // A session file that cannot be trusted stops the start, naming the file (nothing is served).
      writeFileSync(join(stateDir, 'sessions.json'), '{"version":1,', { mode: 0o600 });
      const refused = await cli.run('agent', '--json', '--port', '0', '--state-dir', stateDir);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /the session file .*sessions\.json is corrupt \(not JSON\)/);
    } finally {
      for (const w of workloads) if (w.c.exitCode === null && w.c.signalCode === null) w.c.kill('SIGKILL');
      const stopped = await agent.stop();
      assert.equal(stopped.code, 0, agent.stderr());
    }
  });
});
