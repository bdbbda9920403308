import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startUpProcess, type UpProcess } from './helpers/cli.js';

/** Issue 16 item 3: a taken port names the flag; a second `latchkey up` does not take the CLI over. */
describe('two dev servers side by side, and a port clash', () => {
  let first: UpProcess;
  let cfg: string;
  let tmp: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-devservers-'));
    cfg = join(tmp, 'cfg');
    first = await startUpProcess({ configDir: cfg, timeoutMs: 120_000 });
  });
  after(async () => {
    await first?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const devServer = () =>
    JSON.parse(readFileSync(join(cfg, 'dev-server.json'), 'utf8')) as { server: string; pid: number };

  test('a second `up` on another data dir warns and leaves the CLI pointed at the first', async () => {
    assert.equal(devServer().server, first.info.authority);
    const second = await startUpProcess({ configDir: cfg, dataDir: join(tmp, 'data2'), timeoutMs: 120_000 });
    try {
      assert.notEqual(second.info.authority, first.info.authority);
      assert.equal(devServer().server, first.info.authority, 'dev-server.json still names the first');
      assert.equal(devServer().pid, first.child.pid);
      assert.match(
        second.stderr(),
        /WARNING: the CLI stays pointed at the other `latchkey up` \(pid \d+, https:\/\/localhost:\d+, data dir .*\).*--server https:\/\/localhost:\d+ --ca-file .*LATCHKEY_CONFIG_DIR/,
      );
      // With its own config dir, the second server is the CLI's dev server there.
      const own = join(tmp, 'cfg2');
      const third = await startUpProcess({ configDir: own, dataDir: join(tmp, 'data3'), timeoutMs: 120_000 });
      try {
        const d = JSON.parse(readFileSync(join(own, 'dev-server.json'), 'utf8')) as { server: string };
        assert.equal(d.server, third.info.authority);
        assert.doesNotMatch(third.stderr(), /stays pointed/);
      } finally {
        await third.close();
      }
    } finally {
      await second.close();
    }
  });

  test('a taken HTTPS or identity port is one ERROR line naming --port / --identity-port and npm start', async () => {
    const identityPort = new URL(first.info.identityEndpoint ?? '').port;
    const httpsPort = new URL(first.info.authority).port;
    const [https, identity] = await Promise.all([
      runCli(['up', '--port', httpsPort, '--identity-port', '0', '--data-dir', join(tmp, 'd4')], {
        configDir: join(tmp, 'c4'),
        timeoutMs: 120_000,
      }),
      runCli(['up', '--port', '0', '--identity-port', identityPort, '--data-dir', join(tmp, 'd5')], {
        configDir: join(tmp, 'c5'),
        timeoutMs: 120_000,
      }),
    ]);
    for (const [r, flag, port] of [
      [https, '--port', httpsPort],
      [identity, '--identity-port', identityPort],
    ] as const) {
      assert.equal(r.code, 1, r.stderr);
      // (A component stopping after the failed start may still log a JSON line at warn level.)
      const lines = r.stderr
        .trimEnd()
        .split('\n')
        .filter((l) => !l.startsWith('{"level"'));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        new RegExp(
          `^ERROR: port ${port} is in use .*pick another with ${flag} <port>.*npm start -- ${flag} 9443`,
        ),
      );
    }
  });
});
