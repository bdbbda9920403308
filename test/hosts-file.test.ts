import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hostsAddress, renderHostsFile } from '../src/server/hosts-file.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { putVault, vaultPath } from './helpers/vault.js';

const ORIGINAL = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n# a comment\n';

describe('latchkey up --hosts-file', () => {
  let s: TestServer;
  let dir: string;
  let file: string;
  const block = () => {
    const text = readFileSync(file, 'utf8');
    assert.ok(text.startsWith(ORIGINAL), 'the lines outside the block are kept');
    return text.slice(ORIGINAL.length);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-hosts-'));
    file = join(dir, 'hosts');
    writeFileSync(file, ORIGINAL);
    s = await startTestServer({ hostsFile: file });
  });
  let stopped = false;
  after(async () => {
    if (!stopped) await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a line per active vault, in step with create, delete and recover; removed on close', async () => {
    assert.equal(block(), '', 'no vaults: no block');
    await putVault(s, 'hosts-b');
    await putVault(s, 'hosts-a');
    await s.idle();
    assert.equal(
      block(),
      [
        '# BEGIN latchkey vaults (kept by `latchkey up --hosts-file`; edits here are lost)',
        '127.0.0.1 hosts-a.vault.localhost',
        '127.0.0.1 hosts-b.vault.localhost',
        '# END latchkey vaults',
        '',
      ].join('\n'),
    );
    const arm = async (method: string, path: string, json?: unknown) =>
      s.request(method, `${path}?api-version=2023-07-01`, {
        headers: { authorization: `Bearer ${await s.adminToken()}` },
        ...(json ? { json } : {}),
      });
    assert.equal((await arm('DELETE', vaultPath(s, 'hosts-b'))).status, 200);
    await s.idle();
    assert.doesNotMatch(block(), /hosts-b/);
    assert.match(block(), /^127\.0\.0\.1 hosts-a\.vault\.localhost$/m);
    const recovered = await arm('PUT', vaultPath(s, 'hosts-b'), {
      location: 'local',
      properties: { createMode: 'recover' },
    });
    assert.equal(recovered.status, 200, recovered.text);
    await s.idle();
    assert.match(block(), /^127\.0\.0\.1 hosts-b\.vault\.localhost$/m);

    stopped = true;
    await s.stop();
    assert.equal(readFileSync(file, 'utf8'), ORIGINAL);
  });

  test('a file it cannot write stops the server from starting', async () => {
    await assert.rejects(
      startTestServer({ hostsFile: dir, dataDir: join(dir, 'data') }),
      (e: Error) => e.message === `--hosts-file: ${dir} is not a file`,
    );
    // Found out at start, even with no vault to write yet.
    await assert.rejects(
      startTestServer({ hostsFile: join(dir, 'missing', 'hosts'), dataDir: join(dir, 'data2') }),
      (e: Error) => e.message.startsWith('--hosts-file: ENOENT'),
    );
  });

  test('rendering: the block is replaced, never duplicated; text outside is kept as it was', () => {
    const once = renderHostsFile('a b', ['127.0.0.1 x.vault.localhost']);
    assert.equal(
      once,
      'a b\n# BEGIN latchkey vaults (kept by `latchkey up --hosts-file`; edits here are lost)\n127.0.0.1 x.vault.localhost\n# END latchkey vaults\n',
    );
    const twice = renderHostsFile(`${once}tail\n`, ['127.0.0.1 y.vault.localhost']);
    assert.equal(twice.match(/# BEGIN/g)?.length, 1);
    assert.ok(twice.startsWith('a b\ntail\n'), "twice.startsWith('a b\\ntail\\n')");
    assert.match(twice, /y\.vault\.localhost/);
    assert.doesNotMatch(twice, /x\.vault\.localhost/);
    assert.equal(renderHostsFile(twice, []), 'a b\ntail\n');
    assert.equal(hostsAddress('127.0.0.1'), '127.0.0.1');
    assert.equal(hostsAddress('0.0.0.0'), '127.0.0.1');
    assert.equal(hostsAddress('::'), '127.0.0.1');
    assert.equal(hostsAddress('::1'), '::1');
    assert.equal(hostsAddress('10.1.2.3'), '10.1.2.3');
    assert.equal(hostsAddress('localhost'), '127.0.0.1');
  });
});
