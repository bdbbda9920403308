// What the CLI prints of text it did not write (a server's error description, a tag another user
// set) cannot drive the terminal: control characters are shown as \xNN in ERROR lines and table
// cells, and in tsv cells on a terminal (piped tsv stays as it is, for scripts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { render, visible } from '../src/cli/output.js';
import { runCli } from './helpers/cli.js';
import { issueServerCert, makeTestCa } from './helpers/tls-ca.js';

const EVIL = 'k=\u001b]0;PWNED\u0007\u001b[2Ahidden\u009b31m';
/** Whether `s` holds a control character (C0, DEL, C1) other than those in `except`. */
const hasControl = (s: string, except = '') =>
  [...s].some((ch) => {
    const n = ch.charCodeAt(0);
    return (n < 0x20 || (n >= 0x7f && n <= 0x9f)) && !except.includes(ch);
  });

describe('CLI output: control characters from elsewhere are shown, not obeyed', () => {
  test('visible: C0, DEL and C1 as \\xNN; everything else as it is', () => {
    assert.equal(visible(EVIL), 'k=\\x1b]0;PWNED\\x07\\x1b[2Ahidden\\x9b31m');
    assert.equal(visible('plain text, ümlaut, €, 😀'), 'plain text, ümlaut, €, 😀');
    assert.equal(visible('a\tb\nc\rd'), 'a\\x09b\\x0ac\\x0dd');
  });

  test('table always, tsv on a terminal; json and piped tsv unchanged', () => {
    const data = [{ name: 's1', tag: EVIL }];
    const table = render(data, 'table');
    assert.ok(!hasControl(table, '\n'), table);
    assert.ok(table.includes('k=\\x1b]0;PWNED'), table);
    assert.equal(render(data, 'tsv', true), `s1\t${visible(EVIL)}`);
    assert.equal(render(data, 'tsv', false), `s1\t${EVIL}`);
    assert.deepEqual(JSON.parse(render(data, 'json')), data);
  });

  test("a server's error description with escape sequences: one ERROR line, escapes shown", async () => {
    const ca = await makeTestCa();
    const leaf = await issueServerCert(ca, ['localhost']);
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-output-'));
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'BadRequest', message: `bad\n${EVIL}\u001b[31m` } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = await runCli(['group', 'list'], {
        configDir: dir,
        env: {
          LATCHKEY_SERVER: `https://localhost:${(server.address() as AddressInfo).port}`,
          LATCHKEY_CA_FILE: join(dir, 'ca.pem'),
          LATCHKEY_PROVISIONING_KEY: 'lkp_test',
        },
      });
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.ok(!hasControl(r.stderr, '\n'), JSON.stringify(r.stderr));
      assert.match(r.stderr, /^ERROR: .*bad\\x0ak=\\x1b\]0;PWNED\\x07/);
    } finally {
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
